"""The working directory as the agent writes into it: held open, walked component by component, no link
ever followed.

:class:`Tree` opens the root once. Every operation takes a path as components (:mod:`plush.agent.paths`)
and reaches its parent directory by ``openat(..., O_DIRECTORY | O_NOFOLLOW)`` one component at a time from
the root's descriptor, so the tree is judged as it is on disk at that moment and a symbolic link -- made
by an archive, by an earlier package or by a process -- is never traversed: a component that is a link
(or not a directory) refuses the operation with :class:`~plush.agent.paths.PathRefused`. Invariants:

- nothing is written outside the root: every write is relative to a descriptor reached that way;
- the last component is never followed either: files and links are made under a temporary name in the
  same directory and renamed over the old entry (which replaces a link, never writes through it);
- no existing file's content is ever changed in place (hard links to it elsewhere stay as they were);
- modes are set on the new file's descriptor (``fchmod``), exactly, without setuid/setgid/sticky bits.

A tree opened ``fresh`` (a new directory this agent made empty and fills alone: an unpacking's staging
directory) makes a new file under its own name at once (``O_CREAT | O_EXCL | O_NOFOLLOW``: a name already
there, even a link, is never opened) and takes the temporary name and rename only when the name exists; it
keeps the descriptors of the directories it reached (a directory is never replaced: renaming or linking over
one fails), closed with the tree. Both save system calls per file of an archive.

Standard library only, Python 3.8.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from typing import Callable, Dict, List, Optional

from plush.agent.paths import Parts, PathRefused, link_target, show

__all__ = ["MAX_LINK_HOPS", "Tree"]

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_NEW_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
#: links followed while judging where a link leads (the kernel's own limit is 40)
MAX_LINK_HOPS = 40


def _tmp_name() -> str:
    return ".plush-tmp-" + os.urandom(8).hex()


def _set_time(fd: int, mtime: Optional[float]) -> None:
    if mtime is None:
        return
    with contextlib.suppress(OverflowError, ValueError, OSError):  # an odd time is not worth failing for
        os.utime(fd, (mtime, mtime))


class Tree:
    """The directory ``root``, open; close it (or use ``with``)."""

    def __init__(self, root: str, fresh: bool = False) -> None:
        self.root = root
        self.fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        self.fresh = fresh
        self._dirs: Dict[Parts, int] = {}  # fresh: descriptors of the directories reached, by path

    def close(self) -> None:
        dirs, self._dirs = self._dirs, {}
        for fd in dirs.values():
            os.close(fd)
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> "Tree":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- walking --------------------------------------------------------------------------------------

    def open_dir(self, parts: Parts, create: bool = False) -> int:
        """A new descriptor of the directory ``parts`` (made, with its parents, when ``create``).
        :class:`PathRefused` when a component is a symbolic link or not a directory."""
        fd = os.dup(self.fd)
        try:
            for i in range(len(parts)):
                nxt = self._step(fd, parts[: i + 1], create)
                os.close(fd)
                fd = nxt
        except BaseException:
            os.close(fd)
            raise
        return fd

    def _step(self, fd: int, parts: Parts, create: bool) -> int:
        name = parts[-1]
        while True:
            try:
                return os.open(name, _DIR_FLAGS, dir_fd=fd)
            except FileNotFoundError:
                if not create:
                    raise
                with contextlib.suppress(FileExistsError):  # made meanwhile: open it
                    os.mkdir(name, 0o777, dir_fd=fd)
            except OSError as exc:
                if exc.errno not in (errno.ELOOP, errno.ENOTDIR):
                    raise
                st = os.stat(name, dir_fd=fd, follow_symlinks=False)
                what = "a symbolic link" if stat.S_ISLNK(st.st_mode) else "not a directory"
                raise PathRefused("{} is {}".format(show(parts), what)) from None

    def lstat(self, parts: Parts) -> Optional[os.stat_result]:
        """The entry ``parts`` itself (a link is not followed); None when it (or a parent) does not exist."""
        if not parts:
            return os.fstat(self.fd)
        try:
            pfd = self.open_dir(parts[:-1])
        except (FileNotFoundError, PathRefused):
            return None
        try:
            return os.stat(parts[-1], dir_fd=pfd, follow_symlinks=False)
        except (FileNotFoundError, NotADirectoryError):
            return None
        finally:
            os.close(pfd)

    def resolve(self, parts: Parts) -> Parts:
        """Where ``parts`` leads in the tree as it is now, following the links that exist on the way (each
        must have the accepted form, :func:`~plush.agent.paths.link_target`); what does not exist yet is
        taken as written. :class:`PathRefused` if a link on the way could lead outside."""
        done: List[str] = []
        todo = list(parts)
        hops = 0
        while todo:
            name = todo.pop(0)
            here = (*tuple(done), name)
            st = self.lstat(here)
            if st is not None and stat.S_ISLNK(st.st_mode):
                hops += 1
                if hops > MAX_LINK_HOPS:
                    raise PathRefused("{}: too many levels of symbolic links".format(show(parts)))
                pfd = self.open_dir(tuple(done))
                try:
                    target = os.readlink(name, dir_fd=pfd)
                finally:
                    os.close(pfd)
                try:
                    todo = list(link_target(here, target)) + todo
                except PathRefused as exc:
                    raise PathRefused(
                        "{} goes through {} -> {}: {}".format(show(parts), show(here), target, exc)
                    ) from None
                done = []
            elif st is not None and stat.S_ISDIR(st.st_mode):
                done.append(name)
            else:  # a file, or nothing yet: the rest is taken as written
                done.append(name)
                done.extend(todo)
                break
        return tuple(done)

    # --- making entries -------------------------------------------------------------------------------

    def write_file(self, parts: Parts, fill: Callable[[int], None], mode: int, mtime: Optional[float] = None) -> None:
        """Make the regular file ``parts``: ``fill(fd)`` writes its content into a new file, which then
        takes ``mode`` (without setuid/setgid/sticky) and replaces whatever non-directory was there."""
        if self.fresh:
            pfd = self._kept_dir(parts[:-1])
            try:
                fd = os.open(parts[-1], _NEW_FILE_FLAGS, 0o600, dir_fd=pfd)
            except FileExistsError:
                pass  # the archive names it twice, or it is a link: made aside and renamed over it, below
            else:
                try:
                    self._fill(fd, fill, mode, mtime)
                except BaseException:
                    self._discard(pfd, parts[-1])
                    raise
                return
        pfd = self.open_dir(parts[:-1], create=True)
        try:
            tmp = _tmp_name()
            fd = os.open(tmp, _NEW_FILE_FLAGS, 0o600, dir_fd=pfd)
            try:
                self._fill(fd, fill, mode, mtime)
                self._rename_into_place(pfd, tmp, parts)
            except BaseException:
                self._discard(pfd, tmp)
                raise
        finally:
            os.close(pfd)

    @staticmethod
    def _fill(fd: int, fill: Callable[[int], None], mode: int, mtime: Optional[float]) -> None:
        try:
            fill(fd)
            os.fchmod(fd, mode & 0o777)
            _set_time(fd, mtime)
        finally:
            os.close(fd)

    def _kept_dir(self, parts: Parts) -> int:
        """The descriptor of the directory ``parts`` (made when missing), kept until the tree closes (fresh)."""
        fd = self._dirs.get(parts)
        if fd is None:
            fd = self._dirs[parts] = self.open_dir(parts, create=True)
        return fd

    def symlink(self, parts: Parts, target: str) -> None:
        """Make the symbolic link ``parts -> target`` (replacing a non-directory). The caller judges the
        target first (:func:`~plush.agent.paths.link_target` and :meth:`resolve`)."""
        pfd = self.open_dir(parts[:-1], create=True)
        try:
            tmp = _tmp_name()
            os.symlink(target, tmp, dir_fd=pfd)
            try:
                self._rename_into_place(pfd, tmp, parts)
            except BaseException:
                self._discard(pfd, tmp)
                raise
        finally:
            os.close(pfd)

    def hardlink(self, parts: Parts, source: Parts) -> None:
        """Make ``parts`` a hard link to ``source``, which must be a regular file inside the root."""
        if not source:
            raise PathRefused("a hard link to the working directory itself")
        spfd = self.open_dir(source[:-1])
        try:
            st = os.stat(source[-1], dir_fd=spfd, follow_symlinks=False)
            if not stat.S_ISREG(st.st_mode):
                raise PathRefused("hard link target {} is not a regular file".format(show(source)))
            dpfd = self.open_dir(parts[:-1], create=True)
            try:
                tmp = _tmp_name()
                os.link(source[-1], tmp, src_dir_fd=spfd, dst_dir_fd=dpfd, follow_symlinks=False)
                try:
                    self._rename_into_place(dpfd, tmp, parts)
                finally:
                    self._discard(dpfd, tmp)  # left behind when parts already was this very file
            finally:
                os.close(dpfd)
        finally:
            os.close(spfd)

    def make_dir(self, parts: Parts) -> None:
        if self.fresh:
            self._kept_dir(parts)
        else:
            os.close(self.open_dir(parts, create=True))

    def set_dir_mode(self, parts: Parts, mode: int, mtime: Optional[float] = None) -> None:
        """Give the directory ``parts`` (never a link) ``mode`` without setuid/setgid/sticky, and ``mtime``."""
        fd = self.open_dir(parts)
        try:
            os.fchmod(fd, mode & 0o777)
            _set_time(fd, mtime)
        finally:
            os.close(fd)

    def open_file(self, parts: Parts) -> int:
        """A read-only descriptor of the regular file ``parts`` (never through a link)."""
        pfd = self.open_dir(parts[:-1])
        try:
            fd = os.open(parts[-1], os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=pfd)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise PathRefused("{} is a symbolic link".format(show(parts))) from None
            raise
        finally:
            os.close(pfd)
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise PathRefused("{} is not a regular file".format(show(parts)))
        return fd

    def _rename_into_place(self, pfd: int, tmp: str, parts: Parts) -> None:
        try:
            os.rename(tmp, parts[-1], src_dir_fd=pfd, dst_dir_fd=pfd)
        except IsADirectoryError:
            raise PathRefused("{} is a directory".format(show(parts))) from None

    @staticmethod
    def _discard(pfd: int, name: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(name, dir_fd=pfd)
