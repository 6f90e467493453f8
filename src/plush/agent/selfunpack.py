"""``python3 agent-<hash>.pyz --unpack``: the agent zipapp unpacks itself, with bytecode, beside itself.

Role: why -- a zipapp's modules are compiled at every start (zipimport writes no ``.pyc``): ~70 ms of a host's
CPU per agent start, half of the agent's imports. The SSH launcher's upload stores ``agent-<hash>.pyz`` on the
host and runs this once; agents, relays and sweeps then run ``python3 ~/.cache/plush/agent-<hash>`` (a
directory with ``__main__.py``), whose modules load from their ``__pycache__``. A Python of another version
compiles and writes its own ``.pyc`` there on first use (the directory is its owner's).

Invariants (the host's side of the boundary):

- the zipapp must be the one its name says: the SHA-256 of its bytes starts with ``<hash>``, else nothing is
  unpacked (a truncated or altered upload never becomes a directory);
- a member name is plain (:func:`member_parts`: relative, ``/``-separated, no empty, ``.`` or ``..`` part, no
  backslash or NUL); a name that is not, or an entry that is not a regular file (a symlink, a directory),
  refuses the whole archive; so every file written lies inside the new directory;
- it is built privately -- a fresh ``mkdtemp`` directory (0700) beside the target, directories 0700, files
  created with ``O_EXCL | O_NOFOLLOW`` (0600), each module compiled (timestamp ``.pyc``, tracebacks naming the
  final path) -- then renamed to ``agent-<hash>`` in one step: the directory either does not exist or is
  complete. A concurrent unpacker that loses the rename discards its copy; a target that exists but is not a
  directory of its own (a symlink, a file) is an error, never followed or replaced.

Standard library only, Python 3.8.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import py_compile
import shutil
import stat
import sys
import tempfile
import zipfile
from typing import List, Optional, Tuple

__all__ = ["UnpackError", "member_parts", "unpack", "unpacked_dir"]

_SYMLINK = 0o120000


class UnpackError(Exception):
    """The zipapp cannot be unpacked; the message says why."""


def member_parts(name: str) -> Optional[Tuple[str, ...]]:
    """The path parts of a plain member name, or None when it is not one (absolute, ``..``, empty parts ...)."""
    if not name or "\\" in name or "\0" in name or name.startswith("/"):
        return None
    parts = tuple(name.split("/"))
    if any(p in ("", ".", "..") for p in parts):
        return None
    return parts


def unpacked_dir(pyz: str) -> str:
    """Where ``agent-<hash>.pyz`` unpacks: ``agent-<hash>`` beside it."""
    if not pyz.endswith(".pyz"):
        raise UnpackError("{} is not a .pyz".format(pyz))
    return pyz[: -len(".pyz")]


def _check_hash(pyz: str, data: bytes) -> None:
    name = os.path.basename(pyz)[: -len(".pyz")]
    want = name[len("agent-") :] if name.startswith("agent-") else ""
    if not want or not hashlib.sha256(data).hexdigest().startswith(want):
        raise UnpackError("{} is not the zipapp its name says (its SHA-256 differs)".format(pyz))


def _members(archive: zipfile.ZipFile) -> List[Tuple[zipfile.ZipInfo, Tuple[str, ...]]]:
    members = []
    for info in archive.infolist():
        parts = member_parts(info.filename)
        kind = (info.external_attr >> 16) & 0o170000
        if parts is None or info.is_dir() or kind == _SYMLINK:
            raise UnpackError("refused member {!r}: not a plain file name".format(info.filename))
        members.append((info, parts))
    return members


def _write(root: str, parts: Tuple[str, ...], data: bytes) -> str:
    path = root
    for part in parts[:-1]:
        path = os.path.join(path, part)
        if not os.path.isdir(path):
            os.mkdir(path, 0o700)
    path = os.path.join(path, parts[-1])
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    return path


def unpack(pyz: str) -> str:
    """Unpack ``pyz`` (``.../agent-<hash>.pyz``) to ``.../agent-<hash>`` with compiled modules (see the module
    docstring); the directory. Does nothing when it exists already."""
    target = unpacked_dir(pyz)
    if _is_own_dir(target):
        return target
    with open(pyz, "rb") as fh:
        data = fh.read()
    _check_hash(pyz, data)
    tmp = tempfile.mkdtemp(prefix=".unpack-", dir=os.path.dirname(os.path.abspath(pyz)))
    try:
        with zipfile.ZipFile(pyz) as archive:
            for info, parts in _members(archive):
                path = _write(tmp, parts, archive.read(info))
                if path.endswith(".py"):
                    py_compile.compile(
                        path,
                        cfile=importlib.util.cache_from_source(path),
                        dfile=os.path.join(target, *parts),
                        doraise=True,
                        invalidation_mode=py_compile.PycInvalidationMode.TIMESTAMP,
                    )
        try:
            os.rename(tmp, target)
        except OSError:
            if not _is_own_dir(target):  # not a concurrent unpacker's complete copy: never replaced
                raise UnpackError("{} exists and is not a directory of this user".format(target)) from None
        return target
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _is_own_dir(path: str) -> bool:
    try:
        st = os.lstat(path)
    except OSError:
        return False
    return stat.S_ISDIR(st.st_mode) and st.st_uid == os.getuid()


def main(argv: Optional[List[str]] = None) -> int:
    """``agent-<hash>.pyz --unpack``: unpack the running zipapp; exit 0, or 1 with the reason on stderr."""
    del argv
    try:
        unpack(os.path.abspath(sys.argv[0]))
    except (UnpackError, OSError, zipfile.BadZipFile, py_compile.PyCompileError) as exc:
        sys.stderr.write("plush agent: cannot unpack: {}\n".format(exc))
        return 1
    return 0
