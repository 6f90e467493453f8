"""Where control sockets live (plush.api.runtime): the control directory's rules, names, discovery.

The directory rules are a pure function (a table and a Hypothesis property), then the same rules on a real
file system inside the test's tmp dir: a symlink, a directory owned by someone else, one open to group or
others are refused with one error naming the directory, and nothing is created in them.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from plush.api.runtime import (
    ControlDirError,
    NoController,
    Registration,
    SeveralControllers,
    control_dir,
    default_name,
    dir_problem,
    find_controller,
    live_controllers,
)

ME = os.geteuid()
OTHER = ME + 4242


@pytest.mark.parametrize(
    ("mode", "uid", "refused"),
    [
        (stat.S_IFDIR | 0o700, ME, None),
        (stat.S_IFDIR | 0o500, ME, None),
        (stat.S_IFLNK | 0o777, ME, "symbolic link"),
        (stat.S_IFREG | 0o600, ME, "not a directory"),
        (stat.S_IFDIR | 0o700, OTHER, "owned by uid"),
        (stat.S_IFDIR | 0o750, ME, "group or others"),
        (stat.S_IFDIR | 0o701, ME, "group or others"),
        (stat.S_IFDIR | 0o1777, ME, "group or others"),
    ],
)
def test_the_control_directory_rules(mode: int, uid: int, refused: str | None) -> None:
    why = dir_problem(mode, uid, ME)
    assert (why is None) if refused is None else (why is not None and refused in why)


@given(
    kind=st.sampled_from([stat.S_IFDIR, stat.S_IFLNK, stat.S_IFREG, stat.S_IFSOCK]),
    perms=st.integers(0, 0o7777),
    uid=st.sampled_from([ME, OTHER, 0, 65534]),
)
def test_only_a_private_directory_of_this_user_is_accepted(kind: int, perms: int, uid: int) -> None:
    accepted = dir_problem(kind | perms, uid, ME) is None
    assert accepted == (kind == stat.S_IFDIR and uid == ME and perms & 0o077 == 0)


def _env(runtime: Path) -> dict[str, str]:
    return {"XDG_RUNTIME_DIR": str(runtime)}


def test_the_control_directory_is_made_0700(tmp_path: Path) -> None:
    made = control_dir(create=True, env=_env(tmp_path / "run"))
    assert made == tmp_path / "run" / "plush"
    assert stat.S_IMODE(os.lstat(made).st_mode) == 0o700
    assert control_dir(create=False, env=_env(tmp_path / "elsewhere")) is None


def test_without_xdg_runtime_dir_it_is_plush_uid_in_the_temporary_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)  # read TMPDIR again
    assert control_dir(create=True, env={}) == tmp_path / f"plush-{ME}"


def test_a_symlinked_foreign_or_open_directory_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "target"
    target.mkdir(mode=0o700)
    cases = {}
    link = tmp_path / "link" / "plush"
    link.parent.mkdir()
    link.symlink_to(target)
    cases["symbolic link"] = link.parent
    foreign = tmp_path / "foreign" / "plush"
    foreign.mkdir(parents=True, mode=0o700)
    if ME == 0:
        os.chown(foreign, 65534, 65534)
        cases["owned by uid 65534"] = foreign.parent
    open_dir = tmp_path / "open" / "plush"
    open_dir.mkdir(parents=True)
    os.chmod(open_dir, 0o755)
    cases["has mode 0755"] = open_dir.parent
    for why, runtime in cases.items():
        for create in (True, False):
            with pytest.raises(ControlDirError, match=why) as refused:
                control_dir(create=create, env=_env(runtime))
            assert str(runtime / "plush") in str(refused.value)
        with pytest.raises(ControlDirError, match=why):
            _take_in(runtime, "x")
    assert list(target.iterdir()) == []  # nothing written through the link
    assert list(open_dir.iterdir()) == []


def _take_in(runtime: Path, name: str | None, cwd: str = "/somewhere/proj") -> Registration:
    old = os.environ.get("XDG_RUNTIME_DIR")
    os.environ["XDG_RUNTIME_DIR"] = str(runtime)
    try:
        return Registration.take(name, kind="serve", cwd=cwd)
    finally:
        if old is None:
            del os.environ["XDG_RUNTIME_DIR"]
        else:
            os.environ["XDG_RUNTIME_DIR"] = old


def test_default_names_come_from_the_directory_and_stay_unique(tmp_path: Path) -> None:
    assert default_name("/home/ann/my project!") == "my-project"
    assert default_name("/") == "plush"
    first = _take_in(tmp_path, None)
    second = _take_in(tmp_path, None)
    try:
        assert (first.name, second.name) == ("proj", "proj-2")
        assert stat.S_IMODE(os.lstat(first.info_path).st_mode) == 0o600
        with pytest.raises(Exception, match="running already"):
            _take_in(tmp_path, "proj")
    finally:
        first.release()
        second.release()


def test_discovery_by_name_or_the_only_one_of_the_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    here, there = tmp_path / "here", tmp_path / "there"
    here.mkdir()
    there.mkdir()
    with pytest.raises(NoController, match="no controller was started in"):
        find_controller(None, str(here))
    a = Registration.take(None, kind="serve", cwd=str(here))
    b = Registration.take("b", kind="run", cwd=str(there))
    try:
        assert find_controller(None, str(here)).name == "here"
        assert find_controller("b", str(here)).kind == "run"
        with pytest.raises(NoController, match="no controller named 'c'"):
            find_controller("c", str(here))
        c = Registration.take(None, kind="serve", cwd=str(here))
        with pytest.raises(SeveralControllers, match="here, here-2; choose one with --controller NAME"):
            find_controller(None, str(here))
        c.release()
    finally:
        a.release()
        b.release()
    assert live_controllers() == []


def test_a_killed_controller_s_entry_is_stale_and_its_name_free_again(tmp_path: Path) -> None:
    """The entry's lock dies with its process: a child takes a name and is killed; its files stay, unlocked."""
    import subprocess
    import sys

    code = (
        "import os, sys; from plush.api.runtime import Registration;"
        "r = Registration.take('gone', kind='serve', cwd='/x');"
        "open(r.socket_path, 'w').close(); print('ok', flush=True); sys.stdin.read()"
    )
    env = {**os.environ, "XDG_RUNTIME_DIR": str(tmp_path)}
    with subprocess.Popen(
        [sys.executable, "-c", code], env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE
    ) as child:
        try:
            assert child.stdout is not None and child.stdout.readline() == b"ok\n"
            assert [e.name for e in live_controllers(tmp_path / "plush")] == ["gone"]
        finally:
            child.kill()
    assert (tmp_path / "plush" / "gone.json").exists()
    assert live_controllers(tmp_path / "plush") == []
    again = _take_in(tmp_path, "gone")
    assert not again.socket_path.exists()  # the dead one's socket was removed
    again.release()
