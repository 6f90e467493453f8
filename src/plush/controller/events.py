"""Events: the single source of truth of a run.

Every state change of a run is an :class:`Event` with a stable dotted name (``process.exited``,
``barrier.released``, ``host.failed``), a timestamp, and the host and block it concerns. The :class:`EventBus`
hands each event to every subscriber in order: the journal stores them, the terminal renders them, the APIs
stream them. Publishing never blocks and never drops for *reliable* consumers (the sinks: the journal, a log
writer); a subscription with ``maxlen`` loses its oldest events first, and every subscription loses the
*lossy* events (process output) beyond :data:`LOSSY_BACKLOG` queued ones, each counted in ``missed``.

Event names and payloads are :mod:`plush.controller.catalogue` (re-exported here, where readers took them
first): the journal stores the journaled ones, the history keeps the journaled ones (process output would
crowd the rest out), the failure report and the console read them by those constants.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from plush.controller.catalogue import (
    APP_ABORTED,
    APP_RESTARTED,
    APP_STOPPED,
    BLOCK_COMPLETED,
    BLOCK_FAILED,
    HOST_FAILED,
    HOST_INSTALL_FAILED,
    HOST_OVER_LIMITS,
    HOST_REMATCHED,
    HOST_RESTARTED,
    PROCESS_EXITED,
    PROCESS_LIVENESS_FAILED,
    RUN_FINISHED,
    RUN_STARTED,
    RUN_STORAGE_FAILED,
    WORK_FAILED,
    journaled,
    lossy,
)

__all__ = [
    "APP_ABORTED",
    "APP_RESTARTED",
    "APP_STOPPED",
    "BLOCK_COMPLETED",
    "BLOCK_FAILED",
    "HOST_FAILED",
    "HOST_INSTALL_FAILED",
    "HOST_OVER_LIMITS",
    "HOST_REMATCHED",
    "HOST_RESTARTED",
    "LOSSY_BACKLOG",
    "PROCESS_EXITED",
    "PROCESS_LIVENESS_FAILED",
    "RUN_FINISHED",
    "RUN_STARTED",
    "RUN_STORAGE_FAILED",
    "WORK_FAILED",
    "Event",
    "EventBus",
    "Subscription",
]

#: lossy events (process output) a subscription holds at most; beyond, new ones are dropped (``missed``)
LOSSY_BACKLOG = 1024

#: journaled events the bus remembers (what a resumed subscription can replay)
HISTORY = 10_000

#: event ids: unique and increasing across every run of one process
_seq = itertools.count(1)


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    """One thing that happened. ``data`` holds JSON-ready details."""

    name: str
    at: float = field(default_factory=time.time)
    host: str | None = None
    block: str | None = None
    instance: int | None = None
    data: dict[str, Any] = field(default_factory=dict)
    seq: int = field(default_factory=lambda: next(_seq))

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"seq": self.seq, "at": self.at, "name": self.name}
        for key in ("host", "block", "instance"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        if self.data:
            out["data"] = self.data
        return out

    def describe(self) -> str:
        """A one-line human form: ``name host block k=v`` (multi-line values such as stderr tails left out)."""
        parts = [self.name]
        if self.host:
            parts.append(self.host)
        if self.block:
            parts.append(self.block + (f"#{self.instance}" if self.instance is not None else ""))
        parts.extend(
            f"{k}={v}" for k, v in self.data.items() if not (isinstance(v, str) and "\n" in v) and k != "stderr_tail"
        )
        return " ".join(parts)


class Subscription:
    """An ordered stream of events for one consumer. Iterate with ``async for``; ``close()`` to leave."""

    def __init__(
        self,
        bus: EventBus,
        *,
        maxlen: int | None,
        names: Callable[[str], bool] | None,
        where: Callable[[Event], bool] | None = None,
    ) -> None:
        self._bus = bus
        self._queue: deque[Event] = deque()
        self._maxlen = maxlen
        self._filter = names
        self._where = where
        self._wakeup = asyncio.Event()
        self._lossy = 0  # lossy events queued now
        self.missed = 0
        self.closed = False

    def _push(self, event: Event) -> None:
        if self._filter is not None and not self._filter(event.name):
            return
        if self._where is not None and not self._where(event):
            return
        if lossy(event.name):
            if self._lossy >= LOSSY_BACKLOG:
                self.missed += 1
                return
            self._lossy += 1
        if self._maxlen is not None and len(self._queue) >= self._maxlen:
            self._taken(self._queue.popleft())
            self.missed += 1
        self._queue.append(event)
        self._wakeup.set()

    def _taken(self, event: Event) -> Event:
        if self._lossy and lossy(event.name):
            self._lossy -= 1
        return event

    def drain_nowait(self) -> list[Event]:
        """Every event queued so far, without waiting."""
        items = list(self._queue)
        self._queue.clear()
        self._lossy = 0
        self._wakeup.clear()
        return items

    async def get(self) -> Event | None:
        """The next event, or None once closed and empty."""
        while not self._queue:
            if self.closed:
                return None
            self._wakeup.clear()
            await self._wakeup.wait()
        return self._taken(self._queue.popleft())

    def close(self) -> None:
        self.closed = True
        self._wakeup.set()
        self._bus._unsubscribe(self)

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> Event:
        event = await self.get()
        if event is None:
            raise StopAsyncIteration
        return event


class EventBus:
    """Fans events out to sinks (called synchronously, in order) and subscriptions (queued)."""

    def __init__(self) -> None:
        self._sinks: list[Callable[[Event], None]] = []
        self._subs: list[Subscription] = []
        self._history: deque[Event] = deque(maxlen=HISTORY)

    def add_sink(self, sink: Callable[[Event], None]) -> None:
        """A reliable synchronous consumer (journal, log writer): sees every event, in order."""
        self._sinks.append(sink)

    def remove_sink(self, sink: Callable[[Event], None]) -> None:
        self._sinks.remove(sink)

    def subscribe(
        self,
        *,
        maxlen: int | None = None,
        names: Callable[[str], bool] | None = None,
        where: Callable[[Event], bool] | None = None,
        since: int | None = None,
    ) -> Subscription:
        """A new subscription: every event from now on for which ``names(event.name)`` and ``where(event)``
        hold; ``maxlen`` makes it lossy (the oldest events go first, counted in ``missed``). ``since``: first
        the journaled events of the history whose ``seq`` is above it (a resumed stream), in order; the queue
        is filled before any later event is published, so none is seen twice or missed (within the history's
        bound, :data:`HISTORY`)."""
        sub = Subscription(self, maxlen=maxlen, names=names, where=where)
        if since is not None:
            for event in self._history:
                if event.seq > since:
                    sub._push(event)
        self._subs.append(sub)
        return sub

    def _unsubscribe(self, sub: Subscription) -> None:
        if sub in self._subs:
            self._subs.remove(sub)

    def wants(self, name: str) -> bool:
        """Whether a subscription takes events named ``name`` (by its name filter): an emitter of costly events
        (process output) skips building them when none does."""
        return any(sub._filter is None or sub._filter(name) for sub in self._subs)

    def publish(self, event: Event) -> Event:
        if journaled(event.name):
            self._history.append(event)
        for sink in self._sinks:
            sink(event)
        for sub in list(self._subs):
            sub._push(event)
        return event

    def emit(self, name: str, **fields: Any) -> Event:
        """Build and publish an event: ``bus.emit("host.joined", host="local-1", data={...})``."""
        return self.publish(Event(name=name, **fields))

    def history(self) -> Iterator[Event]:
        return iter(self._history)

    def close(self) -> None:
        for sub in list(self._subs):
            sub.close()
