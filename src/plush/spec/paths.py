"""Block paths: the names of blocks in the application tree, like file paths (``/app/senders/join``).

A :class:`BlockPath` parses from and prints to the same text (``parse(str(p)) == p``). Every status
message, log line and API call names blocks by these paths. Pure, stdlib, Python 3.8.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Tuple

__all__ = ["NAME_RE", "BlockPath", "BlockPathError", "check_name"]

#: a block, component, software or application name: no slash, no white space, not "." or ".."
NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.+@:-]*$")


class BlockPathError(ValueError):
    """A text is not a valid block path; ``fragment`` is the offending part."""

    def __init__(self, text: str, fragment: str, why: str) -> None:
        super().__init__("bad block path {!r}: {} ({!r})".format(text, why, fragment))
        self.text = text
        self.fragment = fragment


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
