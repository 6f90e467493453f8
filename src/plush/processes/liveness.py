"""The liveness monitor: a check command run beside a process; a failing check kills the process tree.

PLUSH-FORMAT.md, "Liveness monitor": once the process started, every ``interval`` seconds the check argv
runs on the same host, in the process's cwd and environment (but under its own instance tag). The check
fails when it exits non-zero, dies by a signal, cannot be started, or outlives ``timeout``. On the first
failure the monitor calls ``on_failure`` (if given), then SIGKILLs the process's whole tree, so that the
process's exit counts as a signal exit (``kill_reason`` names the check), and returns the failure.

Invariants: the monitor never outlives its process (it returns ``None`` as soon as the process exited,
stopping a check in flight); at most one check runs at a time; a check never outlives the monitor
(cancelling the monitor kills its check). Standard library only, Python 3.8 syntax.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Callable, Mapping, Optional, Sequence

from plush.processes.policy import ExitStatus
from plush.processes.runner import ProcessStartError, RunningProcess, start_process
from plush.spec.model import LivenessMonitor

__all__ = ["LivenessFailure", "run_check", "watch_liveness", "watch_liveness_model"]

OUTPUT_TAIL = 1024


@dataclass(frozen=True)
class LivenessFailure:
    """Why a check failed: ``reason`` (one line), the check's ``status`` if it ended, its output tail."""

    reason: str
    status: Optional[ExitStatus] = None
    output: str = ""
    at: float = 0.0  # wall-clock time of the failure


async def run_check(
    argv: Sequence[str],
    *,
    cwd: Optional[str] = None,
    env: Optional[Mapping[str, str]] = None,
    check_timeout: float = 10.0,
) -> Optional[LivenessFailure]:
    """Run one check; ``None`` when it passed, else the failure. A check past ``check_timeout`` is killed."""
    tail = bytearray()

    async def keep_tail(_stream: str, data: bytes) -> None:
        tail.extend(data)
        del tail[:-OUTPUT_TAIL]

    try:
        check = await start_process(argv, base_env=env, cwd=cwd, sink=keep_tail, eof_grace=0.5)
    except ProcessStartError as exc:
        return LivenessFailure("liveness check could not start: {}".format(exc.reason), at=time.time())
    try:
        status = await asyncio.wait_for(check.wait(), check_timeout)
    except asyncio.TimeoutError:
        await check.stop(grace=0.0, kill_timeout=2.0)
        return LivenessFailure(
            "liveness check {!r} did not finish within {}s".format(list(argv), check_timeout),
            output=tail.decode("utf-8", "replace"),
            at=time.time(),
        )
    except asyncio.CancelledError:
        check.kill("liveness monitor cancelled")
        raise
    if status.success:
        return None
    return LivenessFailure(
        "liveness check {!r} failed: {}".format(list(argv), status),
        status=status,
        output=tail.decode("utf-8", "replace"),
        at=time.time(),
    )


async def watch_liveness(
    process: RunningProcess,
    argv: Sequence[str],
    interval: float,
    *,
    check_timeout: Optional[float] = None,
    on_failure: Optional[Callable[[LivenessFailure], None]] = None,
    kill: bool = True,
) -> Optional[LivenessFailure]:
    """Check ``process`` every ``interval`` s until it exits (``None``) or a check fails (the failure).

    ``check_timeout`` bounds each check (default: ``max(interval, 10)`` seconds). With ``kill=False`` the
    caller decides what a failure means; the process is left running.
    """
    if interval <= 0:
        raise ValueError("liveness interval must be positive")
    limit = check_timeout if check_timeout is not None else max(interval, 10.0)
    while True:
        try:
            await asyncio.wait_for(process.wait_exited(), interval)
            return None
        except asyncio.TimeoutError:
            pass
        check = asyncio.ensure_future(run_check(argv, cwd=process.cwd, env=process.env, check_timeout=limit))
        exited = asyncio.ensure_future(process.wait_exited())
        try:
            await asyncio.wait({check, exited}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            exited.cancel()
            if not check.done():
                check.cancel()
                await asyncio.wait({check})
        if process.exited or check.cancelled():
            return None
        failure = check.result()
        if failure is None:
            continue
        if on_failure is not None:
            on_failure(failure)
        if kill:
            process.kill("liveness: " + failure.reason)
        return failure


async def watch_liveness_model(
    process: RunningProcess,
    monitor: LivenessMonitor,
    *,
    check_timeout: Optional[float] = None,
    on_failure: Optional[Callable[[LivenessFailure], None]] = None,
) -> Optional[LivenessFailure]:
    """:func:`watch_liveness` for a spec :class:`LivenessMonitor`."""
    argv = (monitor.path, *monitor.args)
    return await watch_liveness(process, argv, monitor.interval, check_timeout=check_timeout, on_failure=on_failure)
