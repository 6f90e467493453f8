"""The agent's guard, with real processes: a "host" process starts its guard and a tagged child, then dies.

- killed with SIGKILL: its guard ends the child (SIGTERM first, SIGKILL after the grace for one that
  ignores SIGTERM) and says so in the host's stderr, then exits;
- released (the host says it ended everything): the guard exits at once and touches nothing;
- the guard is in its own session and is not the host's child.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from plush.processes.tree import proc_available

pytestmark = pytest.mark.skipif(not proc_available(), reason="needs Linux /proc")

SRC = str(Path(__file__).resolve().parents[2] / "src")

HOST = """
import os, subprocess, sys, time
from plush.agent.guard import start_guard
guard = start_guard()
guard.set_grace(float(sys.argv[1]))
deaf = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('up', flush=True); time.sleep(1000)"
child = subprocess.Popen(
    [sys.executable, "-c", deaf], start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
)
child.stdout.readline()  # it ignores SIGTERM from now on
print(guard.pid, child.pid, os.getsid(guard.pid), flush=True)
if sys.argv[2] == "release":
    guard.release()
    print("released", flush=True)
time.sleep(1000)
"""


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return False
    return stat[stat.rfind(b")") + 2 :][:1] not in (b"Z", b"X", b"x")


def _wait_dead(pid: int, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while _alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


@pytest.fixture
def hosts() -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    yield started
    for proc in started:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        proc.communicate()


def _start(hosts: list[subprocess.Popen[str]], grace: float, mode: str) -> tuple[subprocess.Popen[str], list[int]]:
    env = dict(os.environ, PYTHONPATH=SRC)
    proc = subprocess.Popen(
        [sys.executable, "-c", HOST, str(grace), mode],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    hosts.append(proc)
    assert proc.stdout is not None
    pids = [int(w) for w in proc.stdout.readline().split()]
    assert len(pids) == 3, proc.communicate()
    return proc, pids


def test_a_killed_host_s_processes_are_ended_by_its_guard(hosts: list[subprocess.Popen[str]]) -> None:
    proc, (guard, child, guard_session) = _start(hosts, 0.2, "keep")
    try:
        assert guard_session != os.getsid(proc.pid)  # a signal to the host's group or session never reaches it
        assert Path(f"/proc/{guard}/stat").read_text().rsplit(")", 1)[1].split()[1] != str(proc.pid)  # no child
        assert _alive(guard) and _alive(child)
        proc.kill()
        _, err = proc.communicate()
        assert _wait_dead(child), "the guard did not end the host's child"
        assert _wait_dead(guard), "the guard did not exit"
    finally:
        for pid in (guard, child):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    # the note comes from the guard, which holds the host's stderr: read it once the guard is gone
    assert f"1 agent(s) died; ended 1 process(es) they left: [{child}]" in err


def test_a_released_guard_exits_and_touches_nothing(hosts: list[subprocess.Popen[str]]) -> None:
    proc, (guard, child, _) = _start(hosts, 0.2, "release")
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "released"
        assert _wait_dead(guard)
        proc.kill()
        proc.communicate()
        assert _alive(child)  # "done" means: nothing to look for
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(child, signal.SIGKILL)
