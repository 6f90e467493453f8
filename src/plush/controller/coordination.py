"""Barrier and workflow coordination: the run engine's part that moves arrivals and work requests between
agents and the pure decision objects.

Role. :class:`CoordinationMixin` feeds barrier arrivals and departures to the
:class:`~plush.barriers.manager.BarrierManager` and sends its releases back as ``barrier.release``
(re-arming one timer for the manager's next deadline, as aioquic's ``get_timer``/``handle_timer``), and
serves workflow requests from one :class:`~plush.barriers.workqueue.WorkQueue` per workflow block.

Invariants: a ``work.next`` that finds its queue empty while items are in flight elsewhere is *parked*
until an item comes back or the queue is finished, so every item runs exactly once; a parked request of a
failed host is dropped; at most one barrier timer is armed at a time.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque

from plush.barriers.rules import Admitted, BarrierError, BarrierEvent, PassedLate, Released
from plush.controller.runstate import EngineState, HostSlot, RunOutcome
from plush.protocol.messages import Message

__all__ = ["CoordinationMixin"]


class CoordinationMixin(EngineState):
    """Barriers and workflow queues of :class:`~plush.controller.engine.RunEngine`."""

    def _on_barrier_enter(self, slot: HostSlot, msg: Message) -> None:
        name = msg["name"]
        self.bus.emit("barrier.arrived", host=slot.name, block=msg["path"], data={"barrier": name})
        try:
            events = self.barriers.arrive(name, slot.name, time.monotonic())
        except BarrierError as exc:
            self._finish(RunOutcome(False, str(exc), slot.name, msg["path"]))
            return
        self._apply_barrier_events(events)

    def _on_barrier_leave(self, slot: HostSlot, msg: Message) -> None:
        self._apply_barrier_events(self.barriers.leave(msg["name"], slot.name, time.monotonic()))

    def release_barrier(self, name: str) -> None:
        """Force the release of barrier ``name`` (the user's ``release`` command)."""
        self._apply_barrier_events(self.barriers.force_release(name, time.monotonic()))

    def _apply_barrier_events(self, events: list[BarrierEvent]) -> None:
        for ev in events:
            if isinstance(ev, Released):
                self.bus.emit(
                    "barrier.released", data={"barrier": ev.name, "reason": ev.reason, "hosts": list(ev.hosts)}
                )
                for host in ev.hosts:
                    self._send(host, Message.of("barrier.release", name=ev.name, late=False))
            elif isinstance(ev, PassedLate):
                self.bus.emit("barrier.late", host=ev.host, data={"barrier": ev.name})
                self._send(ev.host, Message.of("barrier.release", name=ev.name, late=True))
            elif isinstance(ev, Admitted):
                self.bus.emit("barrier.admitted", host=ev.host, data={"barrier": ev.name})
                self._send(ev.host, Message.of("barrier.release", name=ev.name, late=False))
            else:
                self.bus.emit("barrier.waiting", host=ev.host, data={"barrier": ev.name})
        self._arm_barrier_timer()

    def _arm_barrier_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        when = self.barriers.get_timer()
        if when is not None:
            loop = asyncio.get_running_loop()
            self._timer = loop.call_later(max(0.0, when - time.monotonic()), self._on_barrier_timer)

    def _on_barrier_timer(self) -> None:
        self._timer = None
        self._apply_barrier_events(self.barriers.handle_timer(time.monotonic()))

    # --- workflows ------------------------------------------------------------------------------------

    def _on_work_next(self, slot: HostSlot, msg: Message) -> None:
        path = msg["path"]
        queue = self.queues.get(path)
        if queue is None:
            self._send(slot.name, Message.of("work.none", path=path))
            return
        self._parked.setdefault(path, deque()).append(slot.name)
        self._serve_parked(path)

    def _serve_parked(self, path: str) -> None:
        queue = self.queues[path]
        parked = self._parked.setdefault(path, deque())
        while parked:
            host = parked[0]
            if self.slots[host].state == "failed":
                parked.popleft()
                continue
            item = queue.take(host)
            if item is not None:
                parked.popleft()
                self.bus.emit("work.taken", host=host, block=path, data={"item": item})
                self._send(host, Message.of("work.item", path=path, item=item))
            elif queue.finished:
                parked.popleft()
                self._send(host, Message.of("work.none", path=path))
            else:
                return  # items in flight elsewhere may come back: keep the request parked

    def _on_work_done(self, slot: HostSlot, msg: Message) -> None:
        path, item, ok = msg["path"], msg["item"], bool(msg["ok"])
        queue = self.queues.get(path)
        if queue is None:
            return
        accepted = queue.done(slot.name, item) if ok else queue.failed(slot.name, item)
        self.bus.emit(
            "work.done" if ok else "work.failed", host=slot.name, block=path, data={"item": item, "accepted": accepted}
        )
        self._serve_parked(path)
