"""Chaos: no orphan survives, whatever dies (kill -9 of the controller, an agent, the fork server).

Two local hosts each run a process tree that sleeps for ever (``sh`` → ``exec sleep``, plus a background
``sleep``); each process writes its pid, and its agent's (``$PPID``), into the host's working directory.
Then the test kills -9 a combination of the controller (``plush run`` in its own session), the agent of
``local-1`` and the zygote (the agents' fork server), with ``agent_grace`` set to 2 s -- together: the
controller is SIGSTOPped first, so that neither it nor the zygote can react before all are dead -- and checks:

- with the controller dead: soon no process of the run is alive at all (its ``PLUSH_RUN_DIR``, its
  directory on a command line, its files held open); the next ``plush report`` says, in one line, that the
  run's controller died and what it removed, and a second ``plush report`` says nothing of it;
- with the controller alive: the killed agent's processes die soon; a Ctrl-C then ends everything.

And the case where leftovers survive, arranged: the guard of the agents (the zygote's keeper) is SIGSTOPped
before the controller, both agents and the zygote are killed, so their processes outlive them all. The next
``plush run`` finds them, says so in one line (what it killed), and kills them.

Nothing sleeps to synchronise: every wait polls ``/proc`` or a file with a deadline.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from integration_support import (
    cli_env,
    interrupt,
    kill_session,
    pid_alive,
    run_processes,
    start_cli,
    wait_until,
    write_spec,
)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs Linux /proc"),
]

SPEC = """\
project: orphans
components:
  w:
    hosts: 2
application:
  execution:
    w:
      blocks:
        - process: sleeper
          run:
            - sh
            - -c
            - |
              sleep 1000 &
              echo $! > "$PLUSH_WORKDIR/child.pid"
              echo $PPID > "$PLUSH_WORKDIR/agent.pid"
              echo $$ > "$PLUSH_WORKDIR/app.pid.tmp" && mv "$PLUSH_WORKDIR/app.pid.tmp" "$PLUSH_WORKDIR/app.pid"
              exec sleep 1000
"""

TRIVIAL = """\
project: trivial
components:
  w:
    hosts: 1
application:
  execution:
    w:
      blocks:
        - process: ok
          run: [true]
"""

HOSTS = ("local-1", "local-2")
DEADLINE = 60.0  # generous: the machine may be loaded; nothing here measures time
GRACE_ENV = {"PLUSH_AGENT_GRACE": "2", "PLUSH_STOP_GRACE": "1"}


class Run:
    """One ``plush run`` of :data:`SPEC` with its pids, and the clean-up that leaves nothing behind."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp = tmp_path
        self.runs = tmp_path / "runs"
        self.env = cli_env(**GRACE_ENV)
        self.proc = start_cli(write_spec(tmp_path, SPEC), self.runs, "-q", env=self.env)
        self.root: Path = wait_until(
            lambda: self.runs.is_dir() and next(self.runs.iterdir(), None), DEADLINE, "the run dir", proc=self.proc
        )
        self.pids: dict[str, dict[str, int]] = {}
        for host in HOSTS:
            work = self.root / "hosts" / host / "work"
            wait_until(lambda w=work: (w / "app.pid").exists(), DEADLINE, f"{host}'s processes", proc=self.proc)
            self.pids[host] = {k: int((work / f"{k}.pid").read_text()) for k in ("agent", "app", "child")}

    @property
    def run_id(self) -> str:
        return self.root.name

    def zygote(self) -> int:
        found = [
            pid
            for pid, cmd in run_processes(self.run_id, self.root)
            if "plush.agent.zygote" in cmd and _ppid(pid) == self.proc.pid  # its agents share its command line
        ]
        assert len(found) == 1, run_processes(self.run_id, self.root)
        return found[0]

    def guard(self, host: str) -> int:
        log = self.root / "hosts" / host / "agent.log"
        match = wait_until(
            lambda: re.search(r"guard (\d+) ", log.read_text()), DEADLINE, f"the guard of {host}'s agent"
        )
        return int(match.group(1))

    def app_pids(self, host: str) -> list[int]:
        return [self.pids[host]["app"], self.pids[host]["child"]]

    def leftovers(self) -> list[tuple[int, str]]:
        return run_processes(self.run_id, self.root)

    def plush(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "plush", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            cwd=self.tmp,
        )

    def close(self) -> None:
        kill_session(self.proc)
        for pid, _ in self.leftovers():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        wait_until(lambda: not self.leftovers(), DEADLINE, "the test's own clean-up")


def _ppid(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return None
    return int(stat[stat.rfind(b")") + 2 :].split()[1])


def _lines_about(run_id: str, stderr: str) -> list[str]:
    """The clean-up lines about run ``run_id`` (other lines may name the run too)."""
    return [
        line
        for line in stderr.splitlines()
        if line.startswith(f"plush: run {run_id} ") and line.endswith("removed its record")
    ]


@pytest.mark.parametrize(
    "victims",
    [
        ("controller",),
        ("controller", "agent"),
        ("controller", "zygote"),
        ("agent", "zygote"),
        ("controller", "agent", "zygote"),
    ],
    ids="+".join,
)
def test_no_orphan_survives_kill_9(tmp_path: Path, victims: tuple[str, ...]) -> None:
    run = Run(tmp_path)
    try:
        pids = {"controller": run.proc.pid, "zygote": run.zygote(), "agent": run.pids["local-1"]["agent"]}
        if "controller" in victims:  # frozen first: all die together, before it (or the zygote) can react
            os.kill(run.proc.pid, signal.SIGSTOP)
        for victim in ("agent", "zygote", "controller"):
            if victim in victims:
                os.kill(pids[victim], signal.SIGKILL)
        if "controller" in victims:
            run.proc.communicate()
            wait_until(lambda: not run.leftovers(), DEADLINE, "every process of the run to end")
            first = run.plush("report", run.run_id, "--runs-dir", str(run.runs))
            said = _lines_about(run.run_id, first.stderr)
            assert len(said) == 1, first.stderr
            assert "controller" in said[0] and "died" in said[0], said
            again = run.plush("report", run.run_id, "--runs-dir", str(run.runs))
            assert _lines_about(run.run_id, again.stderr) == [], again.stderr
        else:
            killed = run.app_pids("local-1")
            wait_until(lambda: not any(pid_alive(p) for p in killed), DEADLINE, "the killed agent's processes to end")
            code, _, err = interrupt(run.proc)
            assert code == 130, err
            assert run.leftovers() == [], err
    finally:
        run.close()


def test_next_plush_command_removes_what_a_stopped_guard_left(tmp_path: Path) -> None:
    run = Run(tmp_path)
    try:
        guard = run.guard("local-1")
        assert run.guard("local-2") == guard  # forked agents share the zygote's keeper
        os.kill(guard, signal.SIGSTOP)
        zygote = run.zygote()
        os.kill(run.proc.pid, signal.SIGSTOP)  # frozen first: all die together, before anything can react
        for pid in (run.pids["local-1"]["agent"], run.pids["local-2"]["agent"], zygote, run.proc.pid):
            os.kill(pid, signal.SIGKILL)
        run.proc.communicate()
        left = [*run.app_pids("local-1"), *run.app_pids("local-2"), guard]
        assert all(pid_alive(p) for p in left)  # nothing is left to end them

        result = run.plush("run", str(write_spec(tmp_path, TRIVIAL, "trivial.yaml")), "-q", "--runs-dir", "other")
        assert result.returncode == 0, result.stderr
        assert result.stderr.startswith("plush: run "), result.stderr  # the first line stays the run's
        said = _lines_about(run.run_id, result.stderr)
        assert len(said) == 1, result.stderr
        assert "killed 5 processes" in said[0] and "4 application" in said[0], said
        assert not any(pid_alive(p) for p in left)
        assert run.leftovers() == []
        again = run.plush("report", "--runs-dir", str(run.runs))
        assert _lines_about(run.run_id, again.stderr) == [], again.stderr
    finally:
        with contextlib.suppress(NameError, ProcessLookupError):
            os.kill(guard, signal.SIGCONT)
        run.close()
