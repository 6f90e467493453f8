"""What the local launcher reads of this machine's processes (plush.launch.sweep): a host's processes found
by environment, the state of an agent process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid

from plush.processes.sweep import host_processes, kill_host_processes, process_state


def test_host_processes_are_found_by_run_and_host_and_killed() -> None:
    code = "import time; time.sleep(60)"
    run_id = f"run-{uuid.uuid4().hex}"  # unique: another test session on this machine never matches
    env = dict(os.environ, PLUSH_RUN_ID=run_id, PLUSH_HOST="local-7")
    mine = subprocess.Popen([sys.executable, "-c", code], env=env)
    other = subprocess.Popen([sys.executable, "-c", code], env=dict(env, PLUSH_HOST="local-8"))
    try:
        # Popen returns once the child closed its close-on-exec pipe, which the kernel does a moment before it
        # sets up the new environment: until then /proc/PID/environ reads empty. Wait for both to show.
        deadline = time.monotonic() + 30
        while len(host_processes(run_id, None)) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert host_processes(run_id, ["local-7"]) == [mine.pid]
        assert sorted(host_processes(run_id, None)) == sorted([mine.pid, other.pid])
        assert host_processes("run-other", None) == []
        assert kill_host_processes(run_id, ["local-7"]) == [mine.pid]
        assert mine.wait(timeout=10) == -9
        assert other.poll() is None
    finally:
        for proc in (mine, other):
            proc.kill()
            proc.wait()


def test_the_state_of_an_agent_process() -> None:
    assert process_state(os.getpid()) is None
    child = subprocess.Popen(["sleep", "30"])
    try:
        os.kill(child.pid, signal.SIGSTOP)
        while process_state(child.pid) is None:  # the signal is delivered asynchronously
            os.sched_yield()
        assert process_state(child.pid) == "is stopped"
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
        assert process_state(child.pid) == "exited"
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()


def test_a_process_of_another_run_with_the_same_id_and_host_names_is_never_touched() -> None:
    """Run ids are unique only within one runs directory: two runs started in the same second in two
    directories share one (``…-0001``), and both have a ``local-1``. The sweep tells them apart by the
    launcher's mark (its random ``PLUSH_SANDBOX_RUN`` token)."""
    code = "import time; time.sleep(60)"
    same = {"PLUSH_RUN_ID": f"run-{uuid.uuid4().hex}", "PLUSH_HOST": "local-1"}
    ours_token, theirs_token = f"run-{uuid.uuid4().hex}", f"run-{uuid.uuid4().hex}"
    ours = subprocess.Popen([sys.executable, "-c", code], env=dict(os.environ, **same, PLUSH_SANDBOX_RUN=ours_token))
    theirs = subprocess.Popen(
        [sys.executable, "-c", code], env=dict(os.environ, **same, PLUSH_SANDBOX_RUN=theirs_token)
    )
    mark = f"PLUSH_SANDBOX_RUN={ours_token}"
    try:
        deadline = time.monotonic() + 30
        while len(host_processes(same["PLUSH_RUN_ID"], None)) < 2:
            assert time.monotonic() < deadline, "the test processes never showed their environment"
            time.sleep(0.01)
        assert kill_host_processes(same["PLUSH_RUN_ID"], None, mark=mark) == [ours.pid]
        assert ours.wait(timeout=10) == -9
        assert theirs.poll() is None
    finally:
        for proc in (ours, theirs):
            proc.kill()
            proc.wait()
