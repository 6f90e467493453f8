"""The interactive terminal (``plush shell``), driven through a real pseudo-terminal with pexpect.

One session covers the commands of issue 12's "done when": load, run on sandbox hosts without connecting,
output above the prompt, ``info control`` shows a held barrier, ``release`` frees it, an unknown command
suggests the closest, Ctrl-D asks first while an application runs, ``shell hostname`` folds the output of
three hosts, Ctrl-C cancels the command in progress (not the terminal), ``quit`` exits 0. Synchronisation is
on the terminal's own output (generous timeouts); no sleep.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pexpect
import pytest

SPEC = """\
project: gate
components:
  fast:
    hosts: 1
  slow:
    hosts: 1
application:
  execution:
    fast:
      blocks:
        - process: before
          run: [sh, -c, 'echo before-gate']
        - barrier: gate
          after: [before]
        - process: after
          after: [gate]
          run: [sh, -c, 'echo after-gate']
    slow:
      blocks:
        - process: nap
          run: [sleep, '300']
        - barrier: gate
          after: [nap]
"""

PROMPT = "plush>"


@pytest.fixture
def term(tmp_path: Path):
    (tmp_path / "gate.yaml").write_text(SPEC)
    env = dict(os.environ, NO_COLOR="1", PROMPT_TOOLKIT_NO_CPR="1", PLUSH_RUNS_DIR=str(tmp_path / "runs"))
    child = pexpect.spawn(
        sys.executable,
        ["-m", "plush", "shell"],
        env=env,
        cwd=str(tmp_path),
        encoding="utf-8",
        timeout=60,
        dimensions=(50, 160),
    )
    child.logfile_read = open(tmp_path / "terminal.log", "w")  # noqa: SIM115 - closed below
    try:
        yield child
    finally:
        if child.isalive():
            child.terminate(force=True)
        child.logfile_read.close()


def cancel(child: pexpect.spawn) -> None:
    """Ctrl-C until the command says it was cancelled (a key typed while the prompt is ending may be taken as
    a line edit: sent again then)."""
    for _ in range(10):
        child.sendcontrol("c")
        if child.expect(["plush: cancelled", pexpect.TIMEOUT], timeout=5) == 0:
            return
    raise AssertionError("Ctrl-C did not cancel the command")


def test_the_terminal_loads_runs_releases_shells_cancels_and_quits(term: pexpect.spawn, tmp_path: Path) -> None:
    term.expect(PROMPT)
    term.sendline("load gate.yaml")
    term.expect("loaded gate")
    term.sendline("lod gate.yaml")
    term.expect("unknown command 'lod': did you mean 'load'")
    term.sendline("create resources")  # no netns resource in gate.yaml, no pool host: nothing to make or connect
    term.expect("connected no host")

    term.sendline("run")  # nothing connected: the sandbox hosts, as plush run
    term.expect("results in")
    term.expect(r"\[local-1 /gate/fast/before/before\] before-gate")
    term.expect(PROMPT)  # back at the prompt while the application runs

    term.sendline("info control")
    term.expect(r"gate\s+.\s+barrier\s+.\s+1/2\s+.\s+1\s+.\s+0\s+.\s+0\s+.\s+held")
    term.sendline("release gate")
    term.expect(r"\[local-1 /gate/fast/after/after\] after-gate")  # output arrives above the prompt
    term.sendline("info control")
    term.expect(r"released \(forced\)")

    term.sendcontrol("d")  # an application runs: asked first
    term.expect(r"stop it and quit\? \[y/N\]")
    term.sendline("n")
    term.expect(PROMPT)
    term.sendline("stop")
    term.expect("STOPPED")

    term.sendline("connect 3")
    term.expect(r"connected 3 hosts: local-\[1-3\]")
    term.sendline("shell hostname")
    term.expect(r"local-\[1-3\] \(3\)")  # one block for three identical outputs
    term.expect(r"exit 0: local-\[1-3\] \(3\)")

    term.sendline("shell sleep 300")
    term.expect("sleep 300")
    cancel(term)
    term.sendline("info mesh")  # the terminal is still there
    term.expect("joined 3")

    term.sendline("quit")
    term.expect(pexpect.EOF)
    term.close()
    assert term.exitstatus == 0
    assert "Traceback" not in (tmp_path / "terminal.log").read_text()


def test_ctrl_d_while_an_application_runs_stops_it_and_quits(term: pexpect.spawn) -> None:
    term.expect(PROMPT)
    term.sendline("load gate.yaml")
    term.expect("loaded gate")
    term.sendline("run")
    term.expect("before-gate")
    term.sendcontrol("d")
    term.expect(r"\[y/N\]")
    term.sendline("y")
    term.expect("STOPPED")
    term.expect(pexpect.EOF)
    term.close()
    assert term.exitstatus == 0


def test_without_a_terminal_plush_shell_is_refused_in_one_line(tmp_path: Path) -> None:
    import subprocess

    done = subprocess.run(
        [sys.executable, "-m", "plush", "shell"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "plush: error: plush shell needs a terminal (scripts: the plush subcommands it mirrors)"
        " (see 'plush shell --help')"
    ]
