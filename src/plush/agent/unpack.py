"""Unpacking a ``tar`` software bundle (plain, gzip, bzip2 or xz) into the host's working directory.

The archive is read with :mod:`tarfile`, but never extracted by it (no ``extractall``, no extraction
filter: agents run on Python 3.8, and the filters of some later versions can be bypassed). Each member is
placed by :class:`~plush.agent.tree.Tree`, judged against the tree as it is on disk at that moment:

- names: relative, no ``..`` (:func:`~plush.agent.paths.member_parts`); a member whose parent path goes
  through a symbolic link (one the archive made, or one already there) is refused;
- symbolic links: the target must be relative, some ``..`` then names only, staying inside
  (:func:`~plush.agent.paths.link_target`), and the links that already exist on its way must too
  (:meth:`~plush.agent.tree.Tree.resolve`);
- hard links: to a regular file inside the working directory, reached without following a link;
- files, directories and links only: no device, FIFO or socket;
- modes as in the archive without setuid/setgid/sticky (files at once, directories after the last member);
  owners are not restored (everything belongs to the agent's user).

A refused member raises :class:`ArchiveError` naming it. Every member is judged by name first, before
anything is written, so a plainly bad archive writes nothing; a member refused on disk stops the unpacking
there (what was unpacked before it stays).

Unpacking as the bytes arrive (:func:`extract_tar_stream`, one pass over a stream) goes by the same rules into a
new, empty *staging* directory; :func:`commit_staged` then moves its top-level entries into the working
directory -- only when that gives what :func:`extract_tar` into the working directory would: none of them
exists there yet (so no member's parent path goes through an entry that was there, and nothing merges), and
every symbolic link the archive made whose target leads through an entry already there stays inside, judged
against the working directory as it is (:meth:`~plush.agent.tree.Tree.resolve`). Otherwise nothing is moved
and the caller unpacks the archive again with :func:`extract_tar`. Standard library only, Python 3.8.
"""

from __future__ import annotations

import os
import shutil
import tarfile
from typing import IO, List, Optional, Sequence, Tuple

from plush.agent.paths import Parts, PathRefused, link_target, member_parts
from plush.agent.tree import Tree

__all__ = ["ArchiveError", "commit_staged", "extract_tar", "extract_tar_stream", "safe_extract"]


class ArchiveError(ValueError):
    """An archive member that cannot be unpacked safely; ``member`` names it, ``reason`` says why."""

    def __init__(self, member: str, reason: str) -> None:
        super().__init__("archive member {!r} refused: {}".format(member, reason))
        self.member = member
        self.reason = reason


def _kind(m: tarfile.TarInfo) -> str:
    if m.isreg():
        return "file"
    if m.isdir():
        return "dir"
    if m.issym():
        return "sym"
    if m.islnk():
        return "hard"
    what = "a FIFO" if m.isfifo() else "a device file" if m.isdev() else "of an unknown type"
    raise PathRefused("it is {}: only files, directories and links are unpacked".format(what))


def _judge(m: tarfile.TarInfo) -> Tuple[str, Parts]:
    """What the member is and where it goes, from its header alone."""
    kind = _kind(m)
    parts = member_parts(m.name)
    if not parts and kind != "dir":
        raise PathRefused("it names the working directory itself")
    if kind == "sym":
        link_target(parts, m.linkname)
    elif kind == "hard" and not member_parts(m.linkname):
        raise PathRefused("a hard link to the working directory itself")
    return kind, parts


def _copier(src: Optional[IO[bytes]]) -> "_Copy":
    return _Copy(src)


class _Copy:
    """Writes an archive member's data into a descriptor."""

    def __init__(self, src: Optional[IO[bytes]]) -> None:
        self.src = src

    def __call__(self, fd: int) -> None:
        if self.src is None:
            return
        with open(fd, "wb", closefd=False) as out:
            shutil.copyfileobj(self.src, out, 1 << 20)


def _place(tar: tarfile.TarFile, tree: Tree, m: tarfile.TarInfo, kind: str, parts: Parts) -> None:
    if kind == "dir":
        if parts:
            tree.make_dir(parts)
    elif kind == "file":
        tree.write_file(parts, _copier(tar.extractfile(m)), m.mode, m.mtime)
    elif kind == "sym":
        tree.resolve(link_target(parts, m.linkname))
        tree.symlink(parts, m.linkname)
    else:
        tree.hardlink(parts, member_parts(m.linkname))


def extract_tar(fileobj: IO[bytes], dest: str) -> List[str]:
    """Unpack the tar archive read from ``fileobj`` (seekable) into the directory ``dest``; the member names
    unpacked, in order. :class:`ArchiveError` for a member that cannot be unpacked safely;
    :class:`tarfile.TarError` for an archive that cannot be read."""
    names: List[str] = []
    with tarfile.open(fileobj=fileobj, mode="r:*") as tar:
        plan = []
        for m in tar.getmembers():
            try:
                plan.append((m, *_judge(m)))
            except PathRefused as exc:
                raise ArchiveError(m.name, str(exc)) from None
        dirs = []
        with Tree(dest) as tree:
            for m, kind, parts in plan:
                try:
                    _place(tar, tree, m, kind, parts)
                except (PathRefused, OSError) as exc:
                    raise ArchiveError(m.name, _reason(exc)) from None
                if kind == "dir" and parts:
                    dirs.append((parts, m))
                names.append(m.name)
            for parts, m in sorted(dirs, key=lambda d: d[0], reverse=True):  # children before parents
                try:
                    tree.set_dir_mode(parts, m.mode, m.mtime)
                except (PathRefused, OSError) as exc:
                    raise ArchiveError(m.name, _reason(exc)) from None
    return names


def extract_tar_stream(fileobj: IO[bytes], dest: str) -> List[Parts]:
    """Unpack the tar archive read in one pass from ``fileobj`` (it need not seek: the bytes as they arrive)
    into ``dest``, a new empty staging directory (:func:`commit_staged`); the targets (from ``dest``) of the
    symbolic links it made. :class:`ArchiveError` for a member that cannot be unpacked safely;
    :class:`tarfile.TarError` for an archive that cannot be read."""
    targets: List[Parts] = []
    dirs = []
    with tarfile.open(fileobj=fileobj, mode="r|*") as tar, Tree(dest, fresh=True) as tree:
        for m in tar:
            try:
                kind, parts = _judge(m)
                _place(tar, tree, m, kind, parts)
            except (PathRefused, OSError) as exc:
                raise ArchiveError(m.name, _reason(exc)) from None
            if kind == "sym":
                targets.append(link_target(parts, m.linkname))
            elif kind == "dir" and parts:
                dirs.append((parts, m))
        for parts, m in sorted(dirs, key=lambda d: d[0], reverse=True):  # children before parents
            try:
                tree.set_dir_mode(parts, m.mode, m.mtime)
            except (PathRefused, OSError) as exc:
                raise ArchiveError(m.name, _reason(exc)) from None
    return targets


def commit_staged(dest: str, staging: str, targets: Sequence[Parts]) -> bool:
    """Move the entries of ``dest/staging`` (unpacked by :func:`extract_tar_stream`, whose link ``targets``
    these are) into ``dest``, then remove the empty ``staging``; True. False, and nothing moved, when that would
    not be what :func:`extract_tar` into ``dest`` gives (see the module), or a rename failed (what moved is then
    unpacked over again): then unpack the archive again."""
    with Tree(dest) as tree:
        sfd = tree.open_dir((staging,))
        try:
            top = os.listdir(sfd)
            if any(tree.lstat((name,)) is not None for name in top):
                return False  # would merge with what is there
            try:
                for target in targets:
                    if target and target[0] not in top:
                        tree.resolve(target)  # leads through an entry already there: judged as it is
            except PathRefused:
                return False
            try:
                for name in top:
                    os.rename(name, name, src_dir_fd=sfd, dst_dir_fd=tree.fd)
            except OSError:  # e.g. a read-only directory (moving it needs write permission on it, not as root)
                return False  # what moved is unpacked over again, to the same content
        finally:
            os.close(sfd)
        os.rmdir(staging, dir_fd=tree.fd)
    return True


def safe_extract(archive: str, dest: str) -> List[str]:
    """Unpack the tar archive at path ``archive`` into ``dest`` (see :func:`extract_tar`)."""
    with open(archive, "rb") as fh:
        return extract_tar(fh, dest)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc)
