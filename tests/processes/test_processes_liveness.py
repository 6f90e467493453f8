"""The liveness monitor with real processes: failing checks kill the tree, passing checks do not."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from pathlib import Path

from plush.processes.liveness import LivenessFailure, run_check, watch_liveness, watch_liveness_model
from plush.processes.policy import ExitStatus
from plush.processes.runner import start_process
from plush.spec.model import LivenessMonitor

PY = sys.executable
HANG = [PY, "-c", "import os, time\nif os.fork() == 0:\n    time.sleep(300)\ntime.sleep(300)"]


async def test_a_failing_check_kills_a_hung_process_tree() -> None:
    handle = await start_process(HANG)
    failures: list[LivenessFailure] = []
    failure = await watch_liveness(handle, ["false"], interval=0.05, on_failure=failures.append)
    assert failure is not None
    assert failures == [failure]
    assert failure.status == ExitStatus(code=1)
    assert "failed: exit code 1" in failure.reason
    assert await handle.wait() == ExitStatus(signal=signal.SIGKILL)  # counts as a signal exit
    assert handle.kill_reason is not None
    assert handle.kill_reason.startswith("liveness: ")
    for _ in range(200):  # the forked child got the SIGKILL too (asynchronously)
        if not handle.members():
            break
        await asyncio.sleep(0.025)
    assert handle.members() == []


async def test_checks_run_in_the_process_cwd_and_env_while_it_runs(tmp_path: Path) -> None:
    # the process ends on its own once the check has run twice; the check leaves its mark in the cwd
    script = (
        "import os, time\n"
        "while not (os.path.exists('checks.log') and open('checks.log').read().count('ok-mark') >= 2):\n"
        "    time.sleep(0.01)\n"
    )
    handle = await start_process(
        [PY, "-c", script], cwd=str(tmp_path), env={"MARK": "ok-mark"}, base_env={"PATH": os.environ["PATH"]}
    )
    check = ["sh", "-c", 'echo "$MARK" >> checks.log']
    assert await watch_liveness(handle, check, interval=0.05) is None
    assert await handle.wait() == ExitStatus(code=0)
    assert handle.kill_reason is None
    assert (tmp_path / "checks.log").read_text().count("ok-mark") >= 2


async def test_a_check_that_cannot_start_fails() -> None:
    handle = await start_process(HANG)
    failure = await watch_liveness_model(handle, LivenessMonitor(path="no-such-check-plush", interval=0.05))
    assert failure is not None
    assert "could not start" in failure.reason
    assert failure.status is None
    assert await handle.wait() == ExitStatus(signal=signal.SIGKILL)


async def test_a_hung_check_times_out_and_is_killed_itself() -> None:
    handle = await start_process(HANG)
    marker = f"plush-hung-check-{os.getpid()}"
    check = [PY, "-c", "import time; print('checking', flush=True); time.sleep(300)", marker]
    failure = await watch_liveness(handle, check, interval=0.05, check_timeout=0.3)
    assert failure is not None
    assert "did not finish within 0.3s" in failure.reason
    assert "checking" in failure.output
    assert await handle.wait() == ExitStatus(signal=signal.SIGKILL)
    assert not _running_with(marker)  # the check itself was stopped before the monitor returned


async def test_without_kill_the_caller_decides() -> None:
    handle = await start_process(HANG)
    try:
        failure = await watch_liveness(handle, ["sh", "-c", "echo sick; exit 4"], interval=0.05, kill=False)
        assert failure is not None
        assert failure.status == ExitStatus(code=4)
        assert failure.output == "sick\n"
        assert not handle.exited
    finally:
        await handle.stop(grace=1.0)
    assert handle.status == ExitStatus(signal=signal.SIGTERM)


async def test_the_monitor_ends_when_the_process_exits() -> None:
    handle = await start_process([PY, "-c", "pass"])
    # the interval is long: the monitor must return on the exit, not after a check
    assert await asyncio.wait_for(watch_liveness(handle, ["false"], interval=600), 30) is None
    assert await handle.wait() == ExitStatus(code=0)


async def test_run_check_passes_and_fails() -> None:
    assert await run_check(["true"]) is None
    failure = await run_check([PY, "-c", "import os; os.kill(os.getpid(), 9)"])
    assert failure is not None
    assert failure.status == ExitStatus(signal=9)


async def test_cancelling_the_monitor_kills_its_check() -> None:
    handle = await start_process(HANG)
    started = asyncio.Event()
    marker = f"plush-check-marker-{os.getpid()}"
    check = [PY, "-c", "import time; print('in check', flush=True); time.sleep(300)", marker]
    monitor = asyncio.ensure_future(watch_liveness(handle, check, interval=0.05, check_timeout=600))

    def check_running() -> bool:
        return _running_with(marker)

    for _ in range(400):
        if check_running():
            started.set()
            break
        await asyncio.sleep(0.025)
    assert started.is_set()
    monitor.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await monitor
    for _ in range(200):
        if not check_running():
            break
        await asyncio.sleep(0.025)
    assert not check_running()
    assert not handle.exited  # cancelling the monitor is not a failure of the process
    await handle.stop(grace=1.0)


def _running_with(marker: str) -> bool:
    """A live (not zombie) process has ``marker`` in its command line."""
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/cmdline", "rb") as f:
                cmdline = f.read()
            with open(f"/proc/{name}/stat", "rb") as f:
                state = f.read().rsplit(b")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if marker.encode() in cmdline and state not in (b"Z", b"X"):
            return True
    return False
