"""Installing software on a host (``install_component``) with real files: destinations stay inside the
working directory, installed files are the host's own copies with their source's mode, and a cache entry
that no longer matches its hash is discarded and fetched again.

The controller's side is a ``fetch`` function that copies from a directory of sources and counts calls.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
import stat
import tarfile
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from plush.agent.cache import ContentCache
from plush.agent.install import InstallError, install_component
from plush.agent.paths import PathRefused, dest_parts
from plush.protocol.messages import package_key
from plush.spec.model import (
    Application,
    Component,
    ComponentBlock,
    Package,
    Project,
    Software,
)


class Sources:
    """The controller's files and what it tells agents about them."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self.fetched: list[str] = []
        self.info: dict[str, dict[str, object]] = {}
        self.files: dict[str, Path] = {}

    def add(self, software: str, name: str, data: bytes, mode: int = 0o644) -> None:
        path = self.directory / f"{software}-{name}"
        path.write_bytes(data)
        path.chmod(mode)
        key = package_key(software, name)
        self.files[key] = path
        info = {"served": True, "sha256": hashlib.sha256(data).hexdigest(), "size": len(data), "mode": mode & 0o777}
        self.info[key] = info

    async def fetch(self, key: str, dest: str) -> None:
        self.fetched.append(key)
        Path(dest).write_bytes(self.files[key].read_bytes())


def project(*software: Software) -> Project:
    comp = Component("c", software=tuple(s.name for s in software))
    return Project(
        name="p",
        software=tuple(software),
        components=(comp,),
        application=Application(name="app", component_blocks=(ComponentBlock(name="cb", component="c"),)),
    )


def install(proj: Project, workdir: Path, sources: Sources) -> list[str]:
    return asyncio.run(install_component(proj, "c", str(workdir), sources.fetch, sources.info))


@pytest.fixture
def cache_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cache = tmp_path / "cache"
    monkeypatch.setenv("PLUSH_CACHE_DIR", str(cache))
    return cache


def tarball(files: dict[str, tuple[bytes, int]], links: dict[str, str] | None = None) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, (data, mode) in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), mode
            tar.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            tar.addfile(info)
    return buf.getvalue()


# --- destinations ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("dest", ["../../x", "../x", "@ABS", "a/../../x", "..", ".", ""])
def test_an_absolute_or_escaping_dest_is_refused_by_the_agent(tmp_path: Path, cache_env: Path, dest: str) -> None:
    """Everything an escape could reach is under ``tmp_path`` (``@ABS`` is ``tmp_path/abs-x``)."""
    dest = dest.replace("@ABS", str(tmp_path / "abs-x"))
    sources = Sources(tmp_path / "src")
    sources.add("s", "pkg", b"data\n")
    work = tmp_path / "parent" / "work"
    work.mkdir(parents=True)

    def tree() -> list[str]:  # everything under tmp_path but the content cache
        return sorted(str(p) for p in tmp_path.rglob("*") if p != cache_env and cache_env not in p.parents)

    before = tree()
    proj = project(Software("s", packages=(Package("pkg", "pkg", dest=dest or None),)))
    if dest == "":  # no dest: the base name of the path, fine
        assert install(proj, work, sources) == ["s"]
        return
    with pytest.raises(InstallError) as info:
        install(proj, work, sources)
    assert info.value.software == "s"
    assert "destination" in info.value.reason and repr(dest) in info.value.reason
    assert tree() == before


def test_a_dest_through_a_link_an_earlier_archive_made_is_refused(tmp_path: Path, cache_env: Path) -> None:
    sources = Sources(tmp_path / "src")
    sources.add("a", "a.tar.gz", tarball({"real/f": (b"f", 0o644)}, {"lnk": "real"}))
    sources.add("b", "b", b"b")
    (tmp_path / "work").mkdir()
    proj = project(
        Software("a", type="tar", packages=(Package("a.tar.gz", "a.tar.gz"),)),
        Software("b", packages=(Package("b", "b", dest="lnk/b"),)),
    )
    with pytest.raises(InstallError, match="lnk is a symbolic link") as info:
        install(proj, tmp_path / "work", sources)
    assert info.value.software == "b"
    assert not (tmp_path / "work" / "real" / "b").exists()


def test_a_dest_in_a_subdirectory_is_made(tmp_path: Path, cache_env: Path) -> None:
    sources = Sources(tmp_path / "src")
    sources.add("s", "pkg", b"data\n")
    (tmp_path / "work").mkdir()
    proj = project(Software("s", packages=(Package("pkg", "pkg", dest="etc/app/pkg.conf"),)))
    install(proj, tmp_path / "work", sources)
    assert (tmp_path / "work" / "etc" / "app" / "pkg.conf").read_bytes() == b"data\n"


DEST_CHARS = ["a", "b", "..", ".", "/", "//", "\0"]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(DEST_CHARS), max_size=8).map("".join))
def test_dest_property_accepted_destinations_stay_strictly_inside(dest: str) -> None:
    root = "/r/work"
    try:
        parts = dest_parts(dest)
    except PathRefused:
        parts = None
    escapes = os.path.normpath(os.path.join(root, dest)) if dest else root
    if parts is None:
        return
    assert parts and all(p not in ("", ".", "..") and "/" not in p and "\0" not in p for p in parts)
    assert escapes.startswith(root + "/")
    assert os.path.join(root, *parts) == escapes


@settings(max_examples=150, deadline=None)
@given(st.lists(st.sampled_from([*DEST_CHARS[:-1], "outside", "lnk"]), min_size=1, max_size=8).map("".join))
def test_dest_property_nothing_outside_the_working_directory_changes(dest: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        parent = Path(tmp) / "parent"
        work, outside = parent / "work", parent / "outside"
        work.mkdir(parents=True)
        outside.mkdir()
        (work / "lnk").symlink_to("../outside")
        os.environ["PLUSH_CACHE_DIR"] = str(Path(tmp) / "cache")
        try:
            sources = Sources(Path(tmp) / "src")
            sources.add("s", "pkg", b"data\n")
            proj = project(Software("s", packages=(Package("pkg", "pkg", dest=dest),)))
            try:
                install(proj, work, sources)
                accepted = True
            except InstallError as exc:
                assert exc.software == "s"
                accepted = False
        finally:
            del os.environ["PLUSH_CACHE_DIR"]
        assert list(outside.iterdir()) == []
        assert sorted(p.name for p in parent.iterdir()) == ["outside", "work"]
        if accepted:
            assert (work / os.path.normpath(dest)).read_bytes() == b"data\n"


# --- copies, modes, cache ---------------------------------------------------------------------------------


def test_installed_files_are_copies_that_keep_their_mode(tmp_path: Path, cache_env: Path) -> None:
    sources = Sources(tmp_path / "src")
    sources.add("s", "tool.sh", b"#!/bin/sh\necho hi\n", mode=0o755)
    sources.add("s", "secret.conf", b"k=v\n", mode=0o600)
    sources.add("s", "suid", b"x", mode=0o4755)
    sources.info[package_key("s", "suid")]["mode"] = 0o4755  # as an older controller might send it
    (tmp_path / "work").mkdir()
    proj = project(Software("s", packages=tuple(Package(n, n) for n in ("tool.sh", "secret.conf", "suid"))))
    install(proj, tmp_path / "work", sources)
    work = tmp_path / "work"
    assert stat.S_IMODE((work / "tool.sh").stat().st_mode) == 0o755
    assert stat.S_IMODE((work / "secret.conf").stat().st_mode) == 0o600
    assert stat.S_IMODE((work / "suid").stat().st_mode) == 0o755
    cached = {p.stat().st_ino for p in cache_env.iterdir()}
    assert all(p.stat().st_nlink == 1 and p.stat().st_ino not in cached for p in work.iterdir())


def test_a_process_writing_its_installed_file_does_not_change_the_cache(tmp_path: Path, cache_env: Path) -> None:
    sources = Sources(tmp_path / "src")
    sources.add("s", "data", b"pristine\n", mode=0o644)
    proj = project(Software("s", packages=(Package("data", "data"),)))
    first, second = tmp_path / "w1", tmp_path / "w2"
    first.mkdir()
    second.mkdir()
    install(proj, first, sources)
    with (first / "data").open("ab") as fh:
        fh.write(b"poison\n")
    install(proj, second, sources)
    assert (second / "data").read_bytes() == b"pristine\n"
    assert sources.fetched == [package_key("s", "data")]  # the second install came from the cache


def test_a_cache_entry_that_no_longer_matches_its_hash_is_discarded_and_fetched_again(
    tmp_path: Path, cache_env: Path
) -> None:
    sources = Sources(tmp_path / "src")
    sources.add("s", "data", b"pristine\n")
    proj = project(Software("s", packages=(Package("data", "data"),)))
    for n in (1, 2, 3):
        (tmp_path / f"w{n}").mkdir()
    install(proj, tmp_path / "w1", sources)
    sha = str(sources.info[package_key("s", "data")]["sha256"])
    entry = cache_env / sha
    entry.chmod(0o644)
    with entry.open("ab") as fh:  # what a process holding a hard link to the entry could do
        fh.write(b"poison\n")
    install(proj, tmp_path / "w2", sources)
    assert (tmp_path / "w2" / "data").read_bytes() == b"pristine\n"
    assert len(sources.fetched) == 2
    assert entry.read_bytes() == b"pristine\n"
    install(proj, tmp_path / "w3", sources)  # the new entry is trusted again: no third fetch
    assert len(sources.fetched) == 2


def test_an_entry_touched_but_unchanged_is_hashed_and_kept(tmp_path: Path) -> None:
    cache = ContentCache(str(tmp_path / "cache"))
    tmp = cache.incoming()
    Path(tmp).write_bytes(b"content")
    sha = cache.store(tmp)
    os.chmod(cache.entry(sha), 0o444)  # ctime changes: the fingerprint no longer matches
    assert cache.lookup(sha) == cache.entry(sha)
    assert Path(cache.entry(sha) + ".stamp").exists()
    assert cache.lookup("0" * 64) is None
