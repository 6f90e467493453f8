"""The warm ``plush exec``: a ``plush serve`` subprocess holds the agents, ``plush exec`` subprocesses send it
one request each and print what the cold path prints for the same command (issue 11).

The same commands run warm (found as the only controller of the directory, or by ``--controller`` from another
one) and cold (``--hosts 4``: agents started for the command): stdout, stderr and the exit status are equal
(``-L`` lines come in the order hosts answer: compared as sorted lines). A timed-out host gives 124, a refused
command 2 with one error line, on both paths; ``--outdir`` saves each host's output on the warm path too; no
controller found and no ``--hosts``: the cold path's usage error. ``plush copy`` and ``plush gather`` go
through the same controller.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from integration_support import RUN_TIMEOUT, cli_env, wait_until

RULE = "-" * 15
IAM = 'echo "I am $PLUSH_HOST"; echo "to stderr" >&2; test "$PLUSH_HOST" != local-2'


def plush(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "plush", *args],
        cwd=cwd,
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        check=False,
    )


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Path]:
    """A ``plush serve --hosts 4 --name warm`` started in ``tmp_path/served``, serving once it says so."""
    cwd = tmp_path / "served"
    cwd.mkdir()
    with open(cwd / "serve.err", "w") as err:
        serve = subprocess.Popen(
            [sys.executable, "-m", "plush", "serve", "--hosts", "4", "--name", "warm", "--runs-dir", str(tmp_path)],
            cwd=cwd,
            env=cli_env(),
            stdout=subprocess.DEVNULL,
            stderr=err,
            text=True,
            start_new_session=True,
        )
    try:
        wait_until(lambda: "4 hosts connected" in (cwd / "serve.err").read_text(), RUN_TIMEOUT, "serving", proc=serve)
        yield cwd
        assert plush(cwd, "quit").returncode == 0
        assert serve.wait(timeout=RUN_TIMEOUT) == 0
    finally:
        if serve.poll() is None:
            os.killpg(serve.pid, signal.SIGKILL)
            serve.wait()


def _same(warm: subprocess.CompletedProcess[str], cold: subprocess.CompletedProcess[str], ordered: bool) -> None:
    def lines(text: str) -> list[str]:
        return text.splitlines() if ordered else sorted(text.splitlines())

    assert (warm.returncode, lines(warm.stdout), lines(warm.stderr)) == (
        cold.returncode,
        lines(cold.stdout),
        lines(cold.stderr),
    )


def test_warm_exec_prints_what_the_cold_path_prints_exits_alike_and_saves_outdir(served: Path, tmp_path: Path) -> None:
    cold_args = ("--hosts", "4", "--runs-dir", str(tmp_path / "cold"))

    gathered = ("-b", "sh", "-c", IAM)
    warm = plush(served, "exec", *gathered)
    assert warm.returncode == 1, warm.stderr
    assert warm.stdout.splitlines() == [RULE, "local-[1-4] (4) varies: {host}", RULE, "I am {host}"]
    assert warm.stderr.splitlines() == [
        RULE,
        "local-[1-4] (4)",
        RULE,
        "to stderr",
        "plush: exit 0: local-[1,3-4] (3)",
        "plush: exit 1: local-2 (1)",
    ]
    _same(warm, plush(tmp_path, "exec", *cold_args, *gathered), ordered=True)

    lined = ("-x", "local-4", "sh", "-c", IAM)  # -L, the default: each host's lines as its answer comes
    warm = plush(served, "exec", *lined)
    assert sorted(warm.stdout.splitlines()) == [f"local-{k}: I am local-{k}" for k in (1, 2, 3)]
    _same(warm, plush(tmp_path, "exec", *cold_args, *lined), ordered=False)

    timed = ("-b", "--timeout", "0.5", "-w", "local-3", "sleep", "30")
    warm = plush(served, "exec", *timed)
    assert warm.returncode == 124 and warm.stderr.splitlines() == ["plush: timed out after 0.5s: local-3 (1)"]
    _same(warm, plush(tmp_path, "exec", *cold_args, *timed), ordered=True)

    refused = plush(served, "exec", "-w", "local-9", "true")
    assert (
        refused.returncode == 2
        and refused.stderr == "plush: error: no host named local-9 here (the hosts: local-[1-4])\n"
    )

    # by name, from another directory; --outdir saved by the client
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    nothing = plush(elsewhere, "exec", "true")  # no controller started here, no --hosts: the cold path's refusal
    assert nothing.returncode == 2 and nothing.stderr.count("\n") == 1
    assert "no controller was started in this directory" in nothing.stderr

    done = plush(elsewhere, "exec", "--controller", "warm", "--outdir", "out", "-w", "local-[1-2]", "sh", "-c", IAM)
    assert done.returncode == 1
    for k in (1, 2):
        assert (elsewhere / "out" / f"local-{k}.stdout").read_text() == f"I am local-{k}\n"
        assert (elsewhere / "out" / f"local-{k}.stderr").read_text() == "to stderr\n"
    unknown = plush(elsewhere, "exec", "--controller", "nope", "true")
    assert unknown.returncode == 5 and unknown.stderr.startswith("plush: error: no controller named 'nope'")
    both = plush(elsewhere, "exec", "--controller", "warm", "--hosts", "2", "true")
    assert both.returncode == 2 and "one or the other" in both.stderr


def test_warm_copy_and_gather_round_trip_with_checksums(served: Path, tmp_path: Path) -> None:
    """``plush copy`` then ``plush gather`` through the running controller: the same bytes come back from each
    host as ``DIR/NAME.HOST``; an escaping path is refused (2), a missing file fails its hosts (1)."""
    data = os.urandom(300_000)
    (served / "blob").write_bytes(data)
    copied = plush(served, "copy", "blob", "-w", "local-[1-3]", "sub/blob")
    assert copied.returncode == 0 and copied.stderr.startswith("plush: copied: local-[1-3] (3"), copied.stderr
    back = plush(served, "gather", "sub/blob", "-w", "local-[1-3]", "back")
    assert (back.returncode, back.stderr) == (0, "plush: gathered: local-[1-3] (3)\n")
    assert sorted(p.name for p in (served / "back").iterdir()) == [f"blob.local-{k}" for k in (1, 2, 3)]
    assert all(p.read_bytes() == data for p in (served / "back").iterdir())
    escape = plush(served, "gather", "../agent.log", "back")
    assert escape.returncode == 2 and "goes up with '..'" in escape.stderr and escape.stderr.count("\n") == 1
    missing = plush(served, "gather", "sub/blob", "-w", "local-[3-4]", "back")
    assert missing.returncode == 1
    assert missing.stderr.splitlines() == [
        "plush: gathered: local-3 (1)",
        "plush: failed: local-4 (1): sub/blob: No such file or directory",
    ]
