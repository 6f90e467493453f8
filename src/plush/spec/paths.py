"""Block paths, and the host paths a spec may name.

A :class:`BlockPath` names a block in the application tree like a file path (``/app/senders/join``); it
parses from and prints to the same text (``parse(str(p)) == p``). Every status message, log line and API
call names blocks by these paths.

:func:`host_path_problem` judges a path that a spec names *on a host*, relative to the host's working
directory (a package's ``dest``, a process's ``cwd`` and redirections, ``outputs`` globs). Invariant: a
text it accepts, joined to any directory ``root``, names ``root`` itself never, and something under
``root`` always, by text alone (no ``..``, not absolute, no ``~``, no empty, ``.``, NUL or backslash
segments). Symbolic links on the host are the agent's business. Pure, stdlib, Python 3.8.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Optional, Tuple

__all__ = ["MAX_HOST_PATH", "NAME_RE", "BlockPath", "BlockPathError", "check_name", "host_path_problem"]

#: a block, component, software or application name: no slash, no white space, not "." or ".."
NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.+@:-]*$")


class BlockPathError(ValueError):
    """A text is not a valid block path; ``fragment`` is the offending part."""

    def __init__(self, text: str, fragment: str, why: str) -> None:
        super().__init__("bad block path {!r}: {} ({!r})".format(text, why, fragment))
        self.text = text
        self.fragment = fragment


#: the longest host path a spec may name, in UTF-8 bytes (Linux PATH_MAX is 4096 with the NUL)
MAX_HOST_PATH = 4095
#: the longest segment of a host path, in UTF-8 bytes (NAME_MAX)
MAX_SEGMENT = 255


def host_path_problem(text: str) -> Optional[str]:
    """Why ``text`` is not a plain relative path inside a host's working directory, or ``None`` when it is.

    Accepted: segments separated by ``/``, none of them empty, ``.`` or ``..``; no NUL, backslash or other
    control character; the first segment does not start with ``~``; at most :data:`MAX_HOST_PATH` bytes in
    all and :data:`MAX_SEGMENT` per segment. Glob characters (``*``, ``?``, ``[``) are ordinary characters
    here, so ``outputs`` patterns are judged by the same rule. The reason names the offending fragment.
    """
    if not text:
        return "it is empty"
    bad = next((c for c in text if ord(c) < 0x20 or ord(c) == 0x7F), None)
    if bad is not None:
        return "it holds the control character {!r}".format(bad)
    if "\\" in text:
        return "it holds a backslash (separate directories with /)"
    try:
        size = len(text.encode("utf-8"))
    except UnicodeError:
        return "it is not valid text (a lone surrogate)"
    if size > MAX_HOST_PATH:
        return "it is {} bytes long (at most {})".format(size, MAX_HOST_PATH)
    if text.startswith("/"):
        return "it is absolute (starts with /)"
    if text.startswith("~"):
        return "it starts with ~ (a home directory is not expanded here)"
    for segment in text.split("/"):
        if segment == "..":
            return "it goes up with '..'"
        if segment == ".":
            return "it has a '.' segment"
        if not segment:
            return "it has an empty segment ('//' or a trailing '/')"
        if len(segment.encode("utf-8")) > MAX_SEGMENT:
            return "its segment {!r}… is over {} bytes".format(segment[:20], MAX_SEGMENT)
    return None


def check_name(name: str) -> bool:
    """True when ``name`` may be used as one segment of a block path."""
    return bool(NAME_RE.match(name))


@dataclass(frozen=True, order=True)
class BlockPath:
    """An absolute path in the block tree, e.g. ``/filedist/senders/serve``."""

    parts: Tuple[str, ...]

    def __post_init__(self) -> None:
        for part in self.parts:
            if not check_name(part):
                raise BlockPathError("/" + "/".join(self.parts), part, "invalid segment")

    @classmethod
    def parse(cls, text: str) -> BlockPath:
        if not text.startswith("/"):
            raise BlockPathError(text, text[:20], "a block path starts with '/'")
        if text == "/":
            return cls(())
        body = text[1:]
        if body.endswith("/"):
            body = body[:-1]
        parts = tuple(body.split("/"))
        for part in parts:
            if not part:
                raise BlockPathError(text, "//", "empty segment")
            if not check_name(part):
                raise BlockPathError(text, part, "invalid segment")
        return cls(parts)

    @classmethod
    def of(cls, *parts: str) -> BlockPath:
        return cls(tuple(parts))

    def child(self, name: str) -> BlockPath:
        return BlockPath((*self.parts, name))

    @property
    def parent(self) -> BlockPath:
        return BlockPath(self.parts[:-1])

    @property
    def name(self) -> str:
        return self.parts[-1] if self.parts else ""

    def is_under(self, other: BlockPath) -> bool:
        """True when ``other`` is this path or one of its ancestors."""
        return self.parts[: len(other.parts)] == other.parts

    def __str__(self) -> str:
        return "/" + "/".join(self.parts)

    def __truediv__(self, name: str) -> BlockPath:
        return self.child(name)
