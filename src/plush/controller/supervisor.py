"""The owner of a part's background tasks: structured concurrency without TaskGroup's all-or-nothing.

Role. Every task the controller starts besides its main line (an agent's exit watch, a failure's recovery,
a file served to an agent, a sweep of leftovers) is spawned through a :class:`Supervisor`, which keeps it
until it ends, reports an exception to its owner once (``on_error``) instead of leaving it unobserved, and
cancels and awaits every task still running when its owner ends (:meth:`Supervisor.close`). A run's
supervisor closes with the run; the mesh's with the mesh. (``asyncio.TaskGroup`` would cancel every sibling
at the first error; here an error is the owner's to decide, usually "abort the run".)

Invariants: no task spawned here outlives :meth:`close`; after :meth:`close`, :meth:`spawn` refuses (the
coroutine is closed, never run); a cancelled task is not an error.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

__all__ = ["Supervisor"]

log = logging.getLogger(__name__)


class Supervisor:
    """Spawns, keeps and finally cancels the tasks of one owner (see the module docstring)."""

    def __init__(self, name: str, on_error: Callable[[BaseException], None] | None = None) -> None:
        self.name = name
        self.on_error = on_error
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closed = False

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str | None = None) -> asyncio.Task[Any] | None:
        """Run ``coro`` as a task owned here; None (and ``coro`` closed) once the supervisor is closed."""
        if self._closed:
            coro.close()
            return None
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        exc = task.exception()
        if exc is None:
            return
        if self.on_error is not None:
            self.on_error(exc)
        else:
            log.error("%s: task %s failed", self.name, task.get_name(), exc_info=exc)

    def __len__(self) -> int:
        return len(self._tasks)

    @property
    def closed(self) -> bool:
        return self._closed

    async def cancel_all(self) -> None:
        """Cancel every task running now and wait until they ended (the supervisor stays usable)."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    async def close(self) -> None:
        """No more tasks; cancel those still running and wait until every one ended."""
        self._closed = True
        while self._tasks:
            await self.cancel_all()
