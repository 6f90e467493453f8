"""Output collection on the host: which files of the working directory a block's ``outputs`` name, and
opening each one without ever leaving the working directory.

Role. When a process block completes, :class:`~plush.agent.program.HostProgram` asks :func:`collect` for
the files its ``outputs`` glob patterns match, opens each with :func:`open_contained` and uploads it with
its permission bits (the controller never widens them).

Invariants (the policy in docs/spec.md, "Outputs"):

- the working directory is judged as it is on disk: the walk uses ``lstat`` semantics only, so a symbolic
  link is **never followed** -- not to a directory (the walk does not descend into it) and not to a file (it
  is not collected), wherever it points, inside the working directory or out of it. A file a link points
  to is collected under its own name when a pattern matches that name;
- only regular files are collected (no FIFO, socket or device: reading one could block or leak);
- :func:`open_contained` opens the file one path component at a time from the working directory with
  ``O_NOFOLLOW`` and checks the opened file is regular, so a link swapped in after the walk (a racing
  process) makes the open fail instead of reading what the link points to;
- patterns are relative: ``*``, ``?`` and ``[...]`` match within one path component, ``**`` matches any
  number of components (a trailing ``**`` means every file below); a component starting with ``.`` is
  matched only by a pattern component starting with ``.`` (as in the shell and :mod:`glob`); an absolute
  pattern, or a ``..`` component, matches nothing.

Standard library only, Python 3.8.
"""

from __future__ import annotations

import fnmatch
import os
import stat
from typing import BinaryIO, List, Sequence, Set, Tuple

__all__ = ["collect", "open_contained"]

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)


def _segments(pattern: str) -> List[str]:
    """The pattern's components (``.`` and empty ones dropped); empty when the pattern can match nothing."""
    if pattern.startswith("/"):
        return []
    segs = [s for s in pattern.split("/") if s not in ("", ".")]
    if ".." in segs:
        return []
    if segs and segs[-1] == "**":
        segs.append("*")  # ``dir/**``: every file below dir
    return segs


def _matches(name: str, seg: str) -> bool:
    if name.startswith(".") and not seg.startswith("."):
        return False
    return fnmatch.fnmatchcase(name, seg)


def _kind(entry: "os.DirEntry[str]") -> Tuple[str, bool, bool]:
    """(name, is a real directory, is a regular file), links not followed."""
    return entry.name, entry.is_dir(follow_symlinks=False), entry.is_file(follow_symlinks=False)


def collect(root: str, patterns: Sequence[str]) -> List[str]:
    """The relative names (``/``-separated, sorted) of the regular files under ``root`` that a pattern
    matches, found without following any symbolic link. Unreadable directories are passed over."""
    found: Set[str] = set()
    for pattern in patterns:
        segs = _segments(pattern)
        if not segs:
            continue
        seen: Set[Tuple[str, int]] = set()
        stack: List[Tuple[str, int]] = [("", 0)]  # (directory relative to root, index of the next segment)
        while stack:
            rel, i = stack.pop()
            if (rel, i) in seen:
                continue
            seen.add((rel, i))
            seg = segs[i]
            last = i == len(segs) - 1
            if seg == "**":
                stack.append((rel, i + 1))  # ``**`` as zero components
            try:
                with os.scandir(os.path.join(root, rel) if rel else root) as entries:
                    listing = [_kind(e) for e in entries]
            except OSError:
                continue
            for name, is_dir, is_file in listing:
                child = rel + "/" + name if rel else name
                if seg == "**":
                    if is_dir and not name.startswith("."):
                        stack.append((child, i))  # ``**`` takes one more component
                elif _matches(name, seg):
                    if last:
                        if is_file:
                            found.add(child)
                    elif is_dir:
                        stack.append((child, i + 1))
    return sorted(found)


def open_contained(root: str, name: str) -> Tuple[BinaryIO, int]:
    """Open ``root/name`` for reading without following any symbolic link on the way; returns the open file
    and its permission bits (``rwx`` for owner, group, others: never setuid, setgid or sticky).

    Raises OSError when a component is a link or not a directory, or when the file is not regular."""
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if not parts or ".." in parts:
        raise OSError("{!r} is not a file name inside the working directory".format(name))
    fd = os.open(root, _DIR_FLAGS & ~os.O_NOFOLLOW)  # the working directory itself is trusted
    try:
        for part in parts[:-1]:
            inner = os.open(part, _DIR_FLAGS, dir_fd=fd)
            os.close(fd)
            fd = inner
        inner = os.open(parts[-1], _FILE_FLAGS, dir_fd=fd)
    finally:
        os.close(fd)
    try:
        st = os.fstat(inner)
        if not stat.S_ISREG(st.st_mode):
            raise OSError("{!r} is not a regular file".format(name))
        return os.fdopen(inner, "rb"), stat.S_IMODE(st.st_mode) & 0o777
    except BaseException:
        os.close(inner)
        raise
