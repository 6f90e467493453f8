"""The rules for paths an agent writes under its working directory: package destinations, archive members,
link targets. Pure functions of strings (no I/O); :mod:`plush.agent.tree` applies them on disk.

A path is handled as a tuple of components relative to the working directory (the *root*); ``()`` is the
root itself. Invariants:

- an accepted destination or member name is relative, and none of its components is ``..``; ``.`` and
  empty components (``a//b``, ``./a``, a trailing ``/``) are dropped;
- a symbolic link target is accepted only in the form ``../../name/name``: relative, some ``..`` first
  (no more than the link's depth), then only names. Such a link can only lead inside the root, however
  the links it goes through are themselves made (each of them obeys the same form), so no later member
  can turn an accepted link into an escape (``b -> .``, ``a -> b/..`` is refused at ``a``).

Standard library only, Python 3.8.
"""

from __future__ import annotations

from typing import Tuple

__all__ = ["Parts", "PathRefused", "dest_parts", "link_target", "member_parts", "show"]

Parts = Tuple[str, ...]


class PathRefused(ValueError):
    """A path that would leave the working directory (or is not a path at all); the message says why."""


def show(parts: Parts) -> str:
    return "/".join(parts) or "."


def _split(path: str) -> Parts:
    return tuple(c for c in path.split("/") if c not in ("", "."))


def _check_plain(path: str, what: str) -> Parts:
    if "\0" in path:
        raise PathRefused("{} {!r} holds a NUL byte".format(what, path))
    if path.startswith("/"):
        raise PathRefused("{} {!r} is absolute: it must be relative to the working directory".format(what, path))
    parts = _split(path)
    if ".." in parts:
        raise PathRefused("{} {!r} leaves the working directory ('..')".format(what, path))
    return parts


def dest_parts(dest: str) -> Parts:
    """The components of a package's ``dest``: a plain relative path naming a file inside the working
    directory. :class:`PathRefused` for an empty, absolute or escaping one, or one naming the directory."""
    parts = _check_plain(dest, "destination")
    if not parts:
        raise PathRefused("destination {!r} names no file in the working directory".format(dest))
    return parts


def member_parts(name: str) -> Parts:
    """The components of an archive member's name (``()`` for the root, as in a ``./`` entry)."""
    return _check_plain(name, "path")


def link_target(link: Parts, target: str) -> Parts:
    """Where a symbolic link at ``link`` with ``target`` points, relative to the root, if it has the
    accepted form (see the module's docstring); :class:`PathRefused` otherwise."""
    if not target:
        raise PathRefused("empty link target")
    if "\0" in target:
        raise PathRefused("link target {!r} holds a NUL byte".format(target))
    if target.startswith("/"):
        raise PathRefused("link target {!r} is absolute".format(target))
    comps = _split(target)
    ups = 0
    while ups < len(comps) and comps[ups] == "..":
        ups += 1
    if ".." in comps[ups:]:
        raise PathRefused("link target {!r} has '..' after a name".format(target))
    base = link[:-1]
    if ups > len(base):
        raise PathRefused("link target {!r} leaves the working directory".format(target))
    return base[: len(base) - ups] + comps[ups:]
