"""``plush cluster`` refusals: one error line and exit status 2, before anything is made (in-process CLI)."""

from __future__ import annotations

from pathlib import Path

import pytest

from plush.shell.commands import main


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str]]:
    with pytest.raises(SystemExit) as done:
        main(args)
    code = done.value.code
    return int(code) if isinstance(code, int) else 1, capsys.readouterr().err.splitlines()


@pytest.fixture(autouse=True)
def _state_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))


@pytest.mark.parametrize(
    "args",
    [["up", "2"], ["down", "c1"], ["cut", "c1-h1"], ["restore", "c1-h1"], ["freeze", "h1"], ["thaw", "h1"]],
)
def test_not_root_is_one_line_saying_why_and_what_to_do(
    args: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("plush.cluster.machine.os.geteuid", lambda: 1000)
    code, err = run(["cluster", *args], capsys)
    assert (code, err) == (
        2,
        [
            "plush: error: plush cluster needs root: it creates network namespaces, a bridge, veths and an sshd "
            "per host (run it as root, e.g. sudo plush cluster ...)"
        ],
    )


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["up", "2", "--name", "Bad-Name"], "bad cluster name 'Bad-Name'"),
        (["up", "2", "--bandwidth", "lots"], "bad bandwidth 'lots'"),
        (["up", "2", "--subnet", "8.8.8.0/24"], "bad subnet '8.8.8.0/24'"),
        (["up", "300", "--subnet", "10.9.9.0/24"], "cannot make 300 hosts in 10.9.9.0/24"),
        (["up", "0"], "Invalid value for 'N'"),
        (["up", "2", "--fs-size", "lots"], "bad file system size 'lots'"),
        (["up", "2", "--fs-size", "512k"], "at least 1m"),
        (["up", "2", "--fs", "machine", "--fs-size", "2g"], "no meaning with --fs machine"),
        (["up", "2", "--fs", "ext4"], "Invalid value for '--fs'"),
        (["status", "nope"], "no cluster nope"),
        (["cut", "h1"], "no cluster is up"),
        (["freeze", "zz-h1"], "no cluster zz"),
    ],
)
def test_bad_input_is_one_error_line_and_exit_2(
    args: list[str], words: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("plush.cluster.machine.os.geteuid", lambda: 0)
    code, err = run(["cluster", *args], capsys)
    assert code == 2 and len(err) == 1 and err[0].startswith("plush: error: ") and words in err[0], err


def test_status_and_down_with_no_cluster_say_so_and_succeed(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["cluster", "status"], capsys) == (0, [])
    assert run(["cluster", "down"], capsys) == (0, ["plush: notice: no cluster to remove"])
