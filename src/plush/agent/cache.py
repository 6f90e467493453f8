"""The host's content cache: package files by sha256, shared by the agents of a machine, never handed out.

Layout (``$PLUSH_CACHE_DIR``, default ``$XDG_CACHE_HOME/plush/content``): ``<sha256>`` is an entry,
read-only (0444), that entered the cache by an atomic rename once its content was hashed;
``<sha256>.stamp`` is its fingerprint at that moment (size, inode, mtime and ctime in nanoseconds);
``.incoming-*`` are files being received.

Invariants and what they guarantee:

- an installed file is the host's own copy of an entry (:func:`copy_into`: a reflink where the file system
  has them, else ``copy_file_range``, else a plain copy), never a hard link: what a process does to its
  installed file stays in its working directory;
- an entry is verified at each use (:meth:`ContentCache.lookup`): if its fingerprint is the stamp's, it is
  used (one ``stat``, ~10 µs); otherwise it is hashed again (~2 ms per MB) and used, re-stamped, if its
  content still matches its name, or discarded, so the caller fetches the file anew. The kernel sets
  ctime on every change of content or metadata and no process can set it back, so any write, truncation,
  chmod or replacement of an entry after it was stamped is noticed. Not noticed: silent corruption of the
  disk (no write, no ctime change), a change in the same clock tick as the stamp (~4 ms) or with the clock
  set backwards, and a process of the same user that rewrites the stamp on purpose (such a process can
  write anything the agent can).

Standard library only, Python 3.8.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import logging
import os
import stat
import tempfile
from typing import Optional

__all__ = ["ContentCache", "cache_dir", "copy_into", "sha256_of"]

log = logging.getLogger(__name__)

#: ``ioctl(dest, FICLONE, src)``: make ``dest`` share ``src``'s blocks, copy-on-write (btrfs, XFS, ...)
FICLONE = 0x40049409
#: errors meaning "this way of copying is not available here": try the next one
_UNSUPPORTED = {errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP, errno.ENOTTY, errno.EBADF, errno.EPERM}
_CHUNK = 1 << 20


def cache_dir() -> str:
    base = os.environ.get("PLUSH_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "plush", "content"
    )
    os.makedirs(base, exist_ok=True)
    return base


def sha256_of(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _fingerprint(st: os.stat_result) -> str:
    return "1 {} {} {} {}\n".format(st.st_size, st.st_ino, st.st_mtime_ns, st.st_ctime_ns)


def copy_into(source: str, fd: int) -> str:
    """Copy the file ``source`` into the empty file open for writing at ``fd``; how (``reflink``,
    ``copy_file_range`` or ``copy``)."""
    with open(source, "rb") as fh:
        src = fh.fileno()
        try:
            fcntl.ioctl(fd, FICLONE, src)
            return "reflink"
        except OSError as exc:
            if exc.errno not in _UNSUPPORTED:
                raise
        copy_range = getattr(os, "copy_file_range", None)
        if copy_range is not None:
            try:
                while copy_range(src, fd, 1 << 30):
                    pass
                return "copy_file_range"
            except OSError as exc:
                if exc.errno not in _UNSUPPORTED:
                    raise
                os.lseek(src, 0, os.SEEK_SET)  # start again, the plain way
                os.lseek(fd, 0, os.SEEK_SET)
                os.ftruncate(fd, 0)
        with open(fd, "wb", closefd=False) as out:
            for chunk in iter(lambda: fh.read(_CHUNK), b""):
                out.write(chunk)
        return "copy"


class ContentCache:
    """The cache in ``directory`` (created if needed)."""

    def __init__(self, directory: Optional[str] = None) -> None:
        self.directory = directory or cache_dir()
        os.makedirs(self.directory, exist_ok=True)

    def entry(self, sha: str) -> str:
        if len(sha) != 64 or not all(c in "0123456789abcdef" for c in sha):
            raise ValueError("not a sha256: {!r}".format(sha))
        return os.path.join(self.directory, sha)

    def lookup(self, sha: str) -> Optional[str]:
        """The path of the entry ``sha`` if it is there and still holds that content; None otherwise (an
        entry that no longer matches is discarded)."""
        path = self.entry(sha)
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return None
        if stat.S_ISREG(st.st_mode):
            if self._stamp(sha) == _fingerprint(st):
                return path
            if sha256_of(path) == sha:
                if _fingerprint(os.lstat(path)) == _fingerprint(st):  # unchanged while it was hashed
                    self._write_stamp(sha, st)
                return path
        log.warning("content cache entry %s no longer matches its hash: discarded", sha)
        self._discard(sha)
        return None

    def incoming(self) -> str:
        """A new empty file in the cache's directory to receive a file into (:meth:`store` or remove it)."""
        fd, path = tempfile.mkstemp(dir=self.directory, prefix=".incoming-")
        os.close(fd)
        return path

    def store(self, incoming: str, expected: Optional[str] = None, digest: Optional[str] = None) -> str:
        """Move the received file ``incoming`` into the cache under its sha256, which is returned: ``digest``
        when the caller hashed the bytes as it wrote them (the file is then not read again), else computed here.
        ValueError (and ``incoming`` removed) when it is not ``expected``."""
        try:
            got = digest or sha256_of(incoming)
            if expected and got != expected:
                raise ValueError("sha256 {} != {}".format(got, expected))
            os.chmod(incoming, 0o444)
            path = self.entry(got)
            os.replace(incoming, path)
        except BaseException:
            if os.path.exists(incoming):
                os.unlink(incoming)
            raise
        self._write_stamp(got, os.lstat(path))
        return got

    def _stamp(self, sha: str) -> str:
        try:
            with open(self.entry(sha) + ".stamp") as fh:
                return fh.read(200)
        except (OSError, UnicodeDecodeError):
            return ""

    def _write_stamp(self, sha: str, st: os.stat_result) -> None:
        fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".incoming-")
        try:
            with open(fd, "w") as fh:
                fh.write(_fingerprint(st))
            os.replace(tmp, self.entry(sha) + ".stamp")
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise

    def _discard(self, sha: str) -> None:
        for path in (self.entry(sha), self.entry(sha) + ".stamp"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
