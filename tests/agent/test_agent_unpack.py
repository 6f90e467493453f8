"""Unpacking archives on a host: nothing lands outside the working directory, by any route.

Every test extracts into ``parent/sandbox`` and snapshots the whole of ``parent`` (a sibling ``outside``
directory with a file and a sub-directory, and a symbolic link ``sandbox/pre -> ../outside`` made before the
extraction, as a process might have) before and after: outside the sandbox nothing may change, whatever the
archive holds. Extraction either succeeds or raises :class:`ArchiveError` naming a member.
"""

from __future__ import annotations

import hashlib
import io
import os
import stat
import tarfile
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from plush.agent.install import STAGING, remove_staging
from plush.agent.unpack import ArchiveError, commit_staged, extract_tar_stream, safe_extract


@dataclass(frozen=True)
class Entry:
    kind: str  # file, dir, sym, hard, fifo, chr
    name: str
    target: str = ""
    mode: int = 0o644
    data: bytes = b""


def sym(name: str, target: str) -> Entry:
    return Entry("sym", name, target)


def file(name: str, data: bytes = b"x", mode: int = 0o644) -> Entry:
    return Entry("file", name, mode=mode, data=data)


def make_tar(path: Path, entries: list[Entry], outside: Path, compression: str = "gz") -> None:
    """A tar archive of ``entries``; ``@OUT`` in a link target stands for the absolute path of ``outside``."""
    with tarfile.open(path, "w:" + compression) as tar:
        for e in entries:
            info = tarfile.TarInfo(e.name)
            info.mode = e.mode
            data = None
            if e.kind == "file":
                info.size = len(e.data)
                data = io.BytesIO(e.data)
            elif e.kind == "dir":
                info.type = tarfile.DIRTYPE
            elif e.kind in ("sym", "hard"):
                info.type = tarfile.SYMTYPE if e.kind == "sym" else tarfile.LNKTYPE
                info.linkname = e.target.replace("@OUT", str(outside))
            elif e.kind == "fifo":
                info.type = tarfile.FIFOTYPE
            else:
                info.type = tarfile.CHRTYPE
                info.devmajor, info.devminor = 1, 3
            tar.addfile(info, data)


def snapshot(parent: Path, skip: Path) -> dict[str, tuple[object, ...]]:
    """Every entry under ``parent`` except inside ``skip``: type, mode, inode, content or link target."""
    out: dict[str, tuple[object, ...]] = {}
    for dirpath, dirnames, filenames in os.walk(parent, followlinks=False):
        if Path(dirpath) == skip:
            dirnames[:] = []
            continue
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            if Path(p) == skip:
                out[p] = ("sandbox", stat.S_ISDIR(os.lstat(p).st_mode))
                continue
            s = os.lstat(p)
            if stat.S_ISLNK(s.st_mode):
                out[p] = ("link", os.readlink(p))
            elif stat.S_ISREG(s.st_mode):
                out[p] = ("file", s.st_mode, s.st_ino, s.st_nlink, hashlib.sha256(Path(p).read_bytes()).hexdigest())
            else:
                out[p] = ("other", s.st_mode, s.st_ino)
    return out


@dataclass
class World:
    parent: Path
    sandbox: Path
    outside: Path


@contextmanager
def world() -> Iterator[World]:
    with tempfile.TemporaryDirectory(prefix="plush-unpack-") as tmp:
        parent = Path(tmp) / "parent"
        sandbox, outside = parent / "sandbox", parent / "outside"
        (outside / "sub").mkdir(parents=True)
        (outside / "secret").write_text("secret\n")
        sandbox.mkdir()
        (sandbox / "pre").symlink_to("../outside")  # made before, not by the archive
        try:
            yield World(parent, sandbox, outside)
        finally:
            for dirpath, dirnames, _ in os.walk(tmp):  # read-only directories an archive made
                for d in dirnames:
                    p = os.path.join(dirpath, d)
                    if not os.path.islink(p):
                        os.chmod(p, 0o700)


class OnePass(io.RawIOBase):
    """A file read once, front to back, that cannot seek (the bytes of a package as they arrive)."""

    def __init__(self, fh: io.BufferedReader) -> None:
        super().__init__()
        self.fh = fh

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray) -> int:  # type: ignore[override]
        data = self.fh.read(min(len(buffer), 7919))  # odd pieces
        buffer[: len(data)] = data
        return len(data)


def staged_extract(archive: str, dest: str) -> None:
    """As an install that fetches the package does: unpacked in one pass into a staging directory as it arrives,
    then committed; when the commit declines (or the pass failed), unpacked again from the file."""
    staging = STAGING + "test"
    os.mkdir(os.path.join(dest, staging))
    try:
        with open(archive, "rb") as fh:
            targets = extract_tar_stream(io.BufferedReader(OnePass(fh)), os.path.join(dest, staging))
        committed = commit_staged(dest, staging, targets)
    except (ArchiveError, tarfile.TarError):
        committed = False
    remove_staging(os.path.join(dest, staging))
    if not committed:
        safe_extract(archive, dest)


def contents(root: Path) -> dict[str, tuple[object, ...]]:
    """What is under ``root``, by relative path: type, permission bits, content or link target."""
    out: dict[str, tuple[object, ...]] = {}
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            s = os.lstat(p)
            rel = os.path.relpath(p, root)
            if stat.S_ISLNK(s.st_mode):
                out[rel] = ("link", os.readlink(p))
            elif stat.S_ISREG(s.st_mode):
                out[rel] = ("file", stat.S_IMODE(s.st_mode), s.st_nlink, Path(p).read_bytes())
            else:
                out[rel] = ("dir", stat.S_IMODE(s.st_mode))
    return out


def check_extraction(w: World, entries: list[Entry], compression: str = "gz", extract: Any = safe_extract) -> bool:
    """Extract; assert the invariants; True when the archive was accepted."""
    archive = w.parent.parent / "archive.tar"
    make_tar(archive, entries, w.outside, compression)
    before = snapshot(w.parent, w.sandbox)
    try:
        extract(str(archive), str(w.sandbox))
        accepted = True
    except ArchiveError as exc:
        assert exc.member, exc
        accepted = False
    assert snapshot(w.parent, w.sandbox) == before
    root = os.path.realpath(w.sandbox)
    outside_inodes = {s[2] for s in before.values() if s[0] == "file"}
    for dirpath, dirnames, filenames in os.walk(w.sandbox, followlinks=False):
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            s = os.lstat(p)
            if stat.S_ISLNK(s.st_mode):
                if p != str(w.sandbox / "pre"):
                    real = os.path.realpath(p)
                    assert real == root or real.startswith(root + "/"), (p, os.readlink(p), real)
            elif stat.S_ISREG(s.st_mode):
                assert s.st_ino not in outside_inodes, p
                assert not s.st_mode & (stat.S_ISUID | stat.S_ISGID | stat.S_ISVTX), p
            else:
                assert stat.S_ISDIR(s.st_mode), p  # no fifo, no device
    return accepted


# --- the chain of the issue, and plain cases ---------------------------------------------------------


def test_symlink_chain_that_only_escapes_once_extracted_is_refused() -> None:
    """``b -> .``, ``a -> b/..``, ``c -> a/..``, then files through them: each link looks inside the
    working directory when judged alone, but once made, ``a`` is the parent and ``c`` the grandparent."""
    with world() as w:
        chain = [
            sym("b", "."),
            sym("a", "b/.."),
            sym("c", "a/.."),
            sym("f", "a/outside"),
            file("f/FILE", b"pwned\n"),
            sym("g", "c/parent/outside"),
            file("g/FILE2", b"pwned\n"),
        ]
        assert not check_extraction(w, chain)
        assert not (w.outside / "FILE").exists()
        assert not (w.outside / "FILE2").exists()


def test_refusal_names_the_member() -> None:
    with world() as w:
        make_tar(w.parent / "x.tar", [file("ok"), sym("a", "b/..")], w.outside)
        with pytest.raises(ArchiveError, match="'a'") as info:
            safe_extract(str(w.parent / "x.tar"), str(w.sandbox))
        assert info.value.member == "a"


@pytest.mark.parametrize(
    "entries",
    [
        [file("../outside/FILE")],
        [file("/etc/plush-test-FILE")],
        [sym("l", "@OUT"), file("l/FILE")],
        [sym("l", "../outside")],
        [sym("l", "x/../../outside")],
        [file("pre/FILE")],  # through a link that was already there
        [sym("l", "pre/sub")],
        [Entry("hard", "h", "../outside/secret")],
        [Entry("hard", "h", "pre/secret")],
        [sym("l", "@OUT/secret"), Entry("hard", "h", "l")],
        [Entry("fifo", "p")],
        [Entry("chr", "null")],
        [Entry("dir", "pre")],
    ],
)
def test_escapes_and_special_files_are_refused(entries: list[Entry]) -> None:
    with world() as w:
        assert not check_extraction(w, entries)


@pytest.mark.parametrize("compression", ["gz", "bz2", "xz"])
def test_an_ordinary_archive_unpacks_with_its_modes_links_and_times(compression: str) -> None:
    with world() as w:
        entries = [
            Entry("dir", "app", mode=0o755),
            Entry("dir", "app/bin", mode=0o750),
            file("app/bin/tool.sh", b"#!/bin/sh\necho hi\n", mode=0o755),
            file("app/lib/libx.so.1", b"lib", mode=0o640),  # parent not in the archive
            sym("app/lib/libx.so", "libx.so.1"),
            sym("app/bin/lib", "../lib"),
            sym("app/here", "."),
            Entry("hard", "app/bin/tool2.sh", "app/bin/tool.sh"),
            file("app/suid", b"s", mode=0o6755),
            file("./dot", b"d"),
        ]
        assert check_extraction(w, entries, compression)
        app = w.sandbox / "app"
        assert stat.S_IMODE((app / "bin" / "tool.sh").stat().st_mode) == 0o755
        assert stat.S_IMODE((app / "bin").stat().st_mode) == 0o750
        assert stat.S_IMODE((app / "lib" / "libx.so.1").stat().st_mode) == 0o640
        assert stat.S_IMODE((app / "suid").stat().st_mode) == 0o755  # setuid/setgid stripped
        assert (app / "lib" / "libx.so").read_bytes() == b"lib"
        assert (app / "bin" / "lib" / "libx.so").read_bytes() == b"lib"
        assert (app / "bin" / "tool2.sh").stat().st_ino == (app / "bin" / "tool.sh").stat().st_ino
        assert (w.sandbox / "dot").read_bytes() == b"d"


def test_a_later_member_replaces_an_earlier_file_or_link_without_following_it() -> None:
    with world() as w:
        (w.sandbox / "cfg").symlink_to("../outside/secret")  # a link already there is replaced, not written
        assert check_extraction(w, [file("cfg", b"new"), file("x", b"1"), file("x", b"2")])
        assert (w.sandbox / "cfg").read_bytes() == b"new"
        assert (w.sandbox / "x").read_bytes() == b"2"
        assert (w.outside / "secret").read_text() == "secret\n"


# --- property: random archives of links, hard links, directories and files -----------------------------

PLAIN = ["a", "b", "c", "f", "FILE", "pre", "outside", "sandbox", "parent"]


def weighted(*choices: tuple[int, st.SearchStrategy[object]]) -> st.SearchStrategy[object]:
    """One of the strategies, each drawn with its weight."""
    pool = [s for weight, s in choices for _ in range(weight)]
    return st.integers(0, len(pool) - 1).flatmap(lambda i: pool[i])


#: mostly plain names, sometimes ``..`` or ``.``
component = st.sampled_from([*PLAIN, *PLAIN, "..", "."])
names = st.lists(component, min_size=1, max_size=4).map("/".join)
plain_names = st.lists(st.sampled_from(PLAIN), min_size=1, max_size=3).map("/".join)
member_names = weighted(  # mostly names that pass the first, by-name judgement: the disk is what is tested
    (12, plain_names),
    (2, names),
    (1, names.map(lambda n: "./" + n)),
    (1, names.map(lambda n: "/" + n)),
)
ups_then_names = st.integers(0, 3).flatmap(
    lambda ups: st.lists(st.sampled_from(PLAIN), max_size=3).map(lambda ns: "/".join([".."] * ups + ns))
)
targets = weighted(
    (4, st.lists(component, min_size=0, max_size=5).map("/".join)),
    (6, ups_then_names),
    (1, names.map(lambda n: "@OUT/" + n)),
    (1, st.just("@OUT")),
)
entries = weighted(
    (6, st.builds(sym, member_names, targets)),
    (2, st.builds(lambda n, t: Entry("hard", n, t), member_names, st.one_of(plain_names, targets))),
    (3, st.builds(lambda n, m: Entry("dir", n, mode=m), member_names, st.sampled_from([0o755, 0o700, 0o2775]))),
    (6, st.builds(file, member_names, st.binary(max_size=8), st.sampled_from([0o644, 0o755, 0o4755, 0o600]))),
    (1, st.builds(lambda n: Entry("fifo", n), member_names)),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(entries, max_size=10))
@example([sym("b", "."), sym("a", "b/.."), sym("c", "a/.."), sym("f", "c/parent/outside"), file("f/FILE")])
@example([sym("b", ""), sym("a", "b/.."), file("a/outside/FILE")])
@example([sym("a", "b/.."), sym("b", "."), file("a/outside/FILE")])  # the link made before its referent
@example([sym("a", "b/c"), sym("b", "pre"), file("a/FILE")])
@example([Entry("dir", "d"), sym("d/up", ".."), sym("d/up2", "up/.."), file("d/up2/outside/FILE")])
def test_random_archives_never_change_anything_outside_the_sandbox(archive: list[Entry]) -> None:
    with world() as w:
        check_extraction(w, archive)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(entries, max_size=10))
@example([sym("a", "pre/sub"), file("a/FILE")])  # a link through one that was there: judged in the sandbox
@example([sym("a", "pre"), sym("b", "a/secret")])
@example([Entry("dir", "pre"), file("pre/FILE")])  # a name that is there: not committed, unpacked again
@example([file("d/f"), Entry("hard", "d/g", "d/f"), Entry("dir", "d", mode=0o555)])
@example([file("x", b"1"), file("x", b"2")])  # a name twice: the second made aside and renamed over the first
@example([sym("cfg", "a"), file("cfg", b"new"), file("a", b"kept")])  # a file over a link the archive made
@example([file("d/f"), sym("d", "a"), file("d/g")])  # a link over a directory whose descriptor is kept
def test_unpacking_as_the_bytes_arrive_gives_what_unpacking_the_file_gives(archive: list[Entry]) -> None:
    """Unpacked in one pass into a staging directory and committed (an install that fetches its package):
    nothing outside the sandbox changes, and the sandbox ends as unpacking the whole file into it leaves it."""
    with world() as direct, world() as staged:
        accepted = check_extraction(direct, archive)
        assert check_extraction(staged, archive, extract=staged_extract) == accepted
        assert contents(staged.sandbox) == contents(direct.sandbox)
