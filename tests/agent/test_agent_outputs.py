"""Output collection on the host (plush.agent.outputs): globs judged against the real tree, no link followed.

Property tests build random trees of directories, files, FIFOs and symbolic links (into the tree, out of it,
dangling, loops) and check that nothing outside the working directory is ever opened or listed (an audit
hook watches every ``open`` and ``os.scandir``), that every name collected is a regular file reached through
real directories only, and, on trees without links, that the matching is :mod:`glob`'s.
"""

from __future__ import annotations

import glob
import os
import shutil
import stat
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from plush.agent.outputs import collect, open_contained

SECRET = b"SECRET-OUTSIDE"

#: the list that records audited paths while a test watches (one slot: audit hooks cannot be removed)
_watch: list[list[tuple[str, str]] | None] = [None]


def _audit(event: str, args: tuple[Any, ...]) -> None:
    seen = _watch[0]
    if seen is not None and event in ("open", "os.scandir", "os.listdir") and args:
        path = args[0]
        if isinstance(path, str | bytes) and os.path.isabs(os.fsdecode(path)):
            seen.append((event, os.fsdecode(path)))


sys.addaudithook(_audit)


@contextmanager
def watched() -> Iterator[list[tuple[str, str]]]:
    """Record the absolute paths opened or listed meanwhile (relative ones go through a checked dir fd)."""
    seen: list[tuple[str, str]] = []
    _watch[0] = seen
    try:
        yield seen
    finally:
        _watch[0] = None


def _real_components(root: Path, name: str) -> bool:
    """Whether every component of ``name`` below ``root`` is a real directory and the last a regular file."""
    here = root
    parts = name.split("/")
    for part in parts[:-1]:
        here = here / part
        if not stat.S_ISDIR(os.lstat(here).st_mode):
            return False
    return stat.S_ISREG(os.lstat(here / parts[-1]).st_mode)


NAMES = st.sampled_from(["a", "b", "c.txt", "d.csv", ".h", "sub", "x y"])
LINK_TARGETS = st.sampled_from(["OUT", "OUT/s1", "OUT/dir", "/", "..", "../..", ".", "a", "sub", "nowhere", "sub/a"])
NODE = st.tuples(
    st.lists(NAMES, min_size=0, max_size=3), NAMES, st.sampled_from(["dir", "file", "link", "fifo"]), LINK_TARGETS
)
PATTERNS = st.sampled_from(
    [
        "**",
        "*",
        "**/*",
        "*/*",
        "**/a",
        "sub/**",
        "s*/**/*.txt",
        ".*",
        "**/.*",
        "**/**",
        "?",
        "[ab]",
        "/**",
        "../*",
        "a/../**",
        "./**",
        "x y",
        "*/*/*",
        "OUT/*",
        "**/s1",
    ]
)


def _build(root: Path, outside: Path, nodes: list[tuple[list[str], str, str, str]]) -> None:
    for parents, name, kind, target in nodes:
        where = root
        for part in parents:  # the builder follows no link either: it never writes outside
            where = where / part
            if not os.path.lexists(where):
                where.mkdir()
            elif not stat.S_ISDIR(os.lstat(where).st_mode):
                break  # a file or link took the name: nothing to build there
        else:
            _make(root, outside, where / name, kind, target)


def _make(root: Path, outside: Path, path: Path, kind: str, target: str) -> None:
    if os.path.lexists(path):
        return
    if kind == "dir":
        path.mkdir()
    elif kind == "file":
        path.write_bytes(b"in:" + str(path.relative_to(root)).encode())
        path.chmod(0o640)
    elif kind == "fifo":
        os.mkfifo(path)
    else:
        os.symlink(str(outside) + target[3:] if target.startswith("OUT") else target, path)


@contextmanager
def sandbox() -> Iterator[tuple[Path, Path]]:
    base = Path(tempfile.mkdtemp(prefix="plush-outputs-"))
    try:
        outside = base / "outside"
        (outside / "dir").mkdir(parents=True)
        for secret in (outside / "s1", outside / "dir" / "a", outside / "dir" / "c.txt"):
            secret.write_bytes(SECRET)
            secret.chmod(0o640)
        work = base / "work"
        work.mkdir()
        yield work, outside
    finally:
        shutil.rmtree(base)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(nodes=st.lists(NODE, max_size=25), patterns=st.lists(PATTERNS, min_size=1, max_size=3))
def test_nothing_outside_the_workdir_is_ever_read(nodes: list[Any], patterns: list[str]) -> None:
    with sandbox() as (work, outside):
        _build(work, outside, nodes)
        before = {p: p.stat().st_mode for p in outside.rglob("*")}
        with watched() as seen:
            names = collect(os.path.realpath(work), patterns)
            contents = {}
            for name in names:
                fh, mode = open_contained(os.path.realpath(work), name)
                with fh:
                    contents[name] = (fh.read(), mode)
        real_work = os.path.realpath(work)
        for event, path in seen:
            assert os.path.realpath(path) == path and path.startswith(real_work), (event, path)
        for name, (data, mode) in contents.items():
            assert _real_components(work, name), name
            assert data == b"in:" + name.encode() and SECRET not in data
            assert mode == 0o640
        assert {p: p.stat().st_mode for p in outside.rglob("*")} == before


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(nodes=st.lists(NODE.filter(lambda n: n[2] != "link"), max_size=25), pattern=PATTERNS)
def test_without_links_the_matching_is_globs(nodes: list[Any], pattern: str) -> None:
    with sandbox() as (work, outside):
        _build(work, outside, nodes)
        if pattern.startswith("/") or ".." in pattern.split("/"):
            expected: set[str] = set()  # glob would leave the working directory: we match nothing
        else:
            expected = {
                os.path.normpath(p)
                for p in glob.glob(pattern, root_dir=work, recursive=True)
                if os.path.lexists(os.path.join(work, p)) and stat.S_ISREG(os.lstat(os.path.join(work, p)).st_mode)
            }
        assert set(collect(str(work), [pattern])) == expected


def test_open_contained_refuses_links_fifos_and_escapes(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "f").write_bytes(b"ok")
    (tmp_path / "real" / "f").chmod(0o4750)  # setuid never travels
    os.symlink("real", tmp_path / "link")
    os.symlink("real/f", tmp_path / "flink")
    os.mkfifo(tmp_path / "fifo")
    fh, mode = open_contained(str(tmp_path), "real/f")
    with fh:
        assert fh.read() == b"ok" and mode == 0o750
    for name in ("link/f", "flink", "fifo", "../x", "", "real/../real/f"):
        with pytest.raises(OSError):
            open_contained(str(tmp_path), name)
