"""Helpers of the chaos tests: a run on real local agents with a *script* that injects failures.

:func:`run_chaos` runs a spec with a :class:`~plush.controller.api.Controller` on the test's event loop and,
beside it, ``script(watch)``: a coroutine that waits for events of the run (:meth:`Watch.until`) and reacts
(kill -9 a process or an agent, SIGSTOP it, ``fail_host``, abort). Nothing sleeps to synchronise: every wait
is on an event, bounded by a deadline. A script that fails aborts the run, and its error is raised after
the run ended (with the run's own outcome in the message).

Also: :func:`agent_alive` (a pid is a live process, a zombie is not), :func:`signal_exits`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from integration_support import RUN_TIMEOUT, pid_alive, run_in_process, write_spec

from plush.controller.api import Controller, RunResult
from plush.controller.events import Event

#: seconds a script waits for one event before it fails
EVENT_TIMEOUT = 60.0


class Watch:
    """The events of a run, in order, for a chaos script; ``controller`` steers the run."""

    def __init__(self, controller: Controller) -> None:
        self.controller = controller
        self.sub = controller.subscribe()
        self.seen: list[Event] = []

    async def until(self, pred: Callable[[Event], bool], what: str, timeout: float = EVENT_TIMEOUT) -> Event:
        """The next event for which ``pred`` holds (events before it are kept in :attr:`seen`)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            try:
                event = await asyncio.wait_for(self.sub.get(), max(0.0, deadline - loop.time()))
            except TimeoutError:
                raise AssertionError(f"timed out after {timeout}s waiting for {what}") from None
            if event is None:
                raise AssertionError(f"the event stream closed before {what}")
            self.seen.append(event)
            if pred(event):
                return event
            if event.name == "run.finished":
                raise AssertionError(f"the run finished ({event.data.get('reason')}) before {what}")

    async def event(self, name: str, what: str = "", **match: Any) -> Event:
        """The next event ``name`` whose fields (``host``, ``block``, ``instance``) or data match."""

        def pred(ev: Event) -> bool:
            return ev.name == name and all(getattr(ev, k, None) == v or ev.data.get(k) == v for k, v in match.items())

        return await self.until(pred, what or f"{name} {match}")

    async def each(self, name: str, hosts: set[str], **match: Any) -> None:
        """Until an event ``name`` (matching ``match``) was seen for every host of ``hosts``, in any order."""
        missing = set(hosts)

        def pred(ev: Event) -> bool:
            if ev.name == name and all(getattr(ev, k, None) == v or ev.data.get(k) == v for k, v in match.items()):
                missing.discard(ev.host or "")
            return not missing

        await self.until(pred, f"{name} {match} on each of {sorted(hosts)}")

    @property
    def engine(self) -> Any:
        assert self.controller.engine is not None
        return self.controller.engine


Script = Callable[[Watch], Awaitable[None]]


async def run_chaos(
    spec_text: str,
    tmp_path: Path,
    script: Script,
    *,
    hosts: dict[str, int] | None = None,
    pool: Any = None,
    **settings: Any,
) -> RunResult:
    """Run ``spec_text`` with ``script`` beside it (on ``pool``'s hosts when given); raise the script's error, if
    any, after the run."""
    task: asyncio.Task[None] | None = None

    def start(controller: Controller) -> None:
        nonlocal task
        watch = Watch(controller)

        async def guarded() -> None:
            try:
                await script(watch)
            except BaseException:
                controller.abort("the chaos script failed")
                raise
            finally:
                watch.sub.close()

        task = asyncio.get_running_loop().create_task(guarded())

    spec = write_spec(tmp_path, spec_text)
    try:
        result = await asyncio.wait_for(
            run_in_process(spec, tmp_path / "runs", hosts=hosts, on_controller=start, pool=pool, **settings),
            RUN_TIMEOUT,
        )
    except BaseException:
        if task is not None:
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
        raise
    assert task is not None
    try:
        await asyncio.wait_for(task, 10.0)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n(run outcome: {result.outcome})") from None
    return result


def agent_alive(pid: int | None) -> bool:
    return pid is not None and pid_alive(pid)


def process_events(evs: list[Event], block: str, host: str | None = None) -> list[Event]:
    """``process.started`` and ``process.exited`` of ``block`` (on ``host``), in order."""
    return [
        e
        for e in evs
        if e.name in ("process.started", "process.exited") and e.block == block and (host is None or e.host == host)
    ]
