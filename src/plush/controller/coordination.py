"""Barrier and workflow coordination: the part of a run that moves arrivals and work requests between agents
and the pure decision objects.

Role. :class:`Coordinator` owns the run's :class:`~plush.barriers.manager.BarrierManager` (each barrier of
the application's component blocks, expecting the hosts of its component), one
:class:`~plush.barriers.workqueue.WorkQueue` per workflow block, the requests parked on them and the one
barrier timer. It feeds barrier arrivals and departures to the manager and sends its releases back as
``barrier.release`` (re-arming the timer for the manager's next deadline, as aioquic's
``get_timer``/``handle_timer``), and serves workflow requests. A failed host is no longer expected
(:meth:`Coordinator.host_failed`); a restarted or new one is (:meth:`Coordinator.expect`); an application
restart starts them all afresh (:meth:`Coordinator.reset`).

Invariants: a ``work.next`` that finds its queue empty while items are in flight elsewhere is *parked*
until an item comes back or the queue is finished, so every item runs exactly once; a parked request of a
failed host is dropped; at most one barrier timer is armed at a time, none after :meth:`Coordinator.close`.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Iterable

from plush.barriers.manager import BarrierManager
from plush.barriers.rules import Admitted, BarrierError, BarrierEvent, BarrierRule, PassedLate, Released
from plush.barriers.workqueue import WorkQueue
from plush.controller.catalogue import (
    BARRIER_ADMITTED,
    BARRIER_ARRIVED,
    BARRIER_LATE,
    BARRIER_RELEASED,
    BARRIER_WAITING,
    WORK_DONE,
    WORK_FAILED,
    WORK_TAKEN,
)
from plush.controller.runstate import HostSlot, RunOutcome, RunPort
from plush.protocol.messages import Message
from plush.spec.model import BarrierBlock, WorkflowBlock

__all__ = ["Coordinator"]


class Coordinator:
    """Barriers and workflow queues of one run."""

    def __init__(self, run: RunPort) -> None:
        self.run = run
        self.barriers = BarrierManager()
        self.queues: dict[str, WorkQueue] = {}
        self._parked: dict[str, deque[str]] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._declare(run.hosts.values())

    def _declare(self, slots: Iterable[HostSlot]) -> None:
        app = self.run.project.application
        by_component: dict[str, list[str]] = {}
        for slot in slots:
            by_component.setdefault(slot.component, []).append(slot.name)
        for cb in app.component_blocks:
            hosts = by_component.get(cb.component, [])
            for block in cb.blocks:
                if isinstance(block, BarrierBlock):
                    self.barriers.declare(block.name, BarrierRule.from_block(block), hosts)
                elif isinstance(block, WorkflowBlock):
                    self.queues[str(app.path / cb.name / block.name)] = WorkQueue(block.data_files)

    def reset(self) -> None:
        """The application restarts: every barrier and queue afresh; hosts no longer live are not expected."""
        self.close()
        self.barriers = BarrierManager()
        self.queues = {}
        self._parked.clear()
        hosts = self.run.hosts
        self._declare(hosts.values())
        now = time.monotonic()
        for slot in hosts.values():
            if not hosts.is_live(slot):
                self.barriers.host_failed(slot.name, now)

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    # --- hosts come and go -----------------------------------------------------------------------------

    def host_failed(self, name: str) -> None:
        """``name`` failed: barriers stop expecting it, its work items go back to their queues."""
        self._apply(self.barriers.host_failed(name, time.monotonic()))
        for path, queue in self.queues.items():
            if queue.host_failed(name):
                self._serve_parked(path)

    def expect(self, slot: HostSlot) -> None:
        """Barriers of ``slot``'s component blocks expect it (again); a released one lets it pass late."""
        for cb in self.run.project.application.component_blocks:
            if cb.component == slot.component:
                for block in cb.blocks:
                    if isinstance(block, BarrierBlock):
                        self.barriers.add_expected(block.name, slot.name)

    # --- barriers ------------------------------------------------------------------------------------------

    def on_barrier_enter(self, slot: HostSlot, msg: Message) -> None:
        name = msg["name"]
        self.run.bus.emit(BARRIER_ARRIVED, host=slot.name, block=msg["path"], data={"barrier": name})
        try:
            events = self.barriers.arrive(name, slot.name, time.monotonic())
        except BarrierError as exc:
            self.run.finish(RunOutcome(False, str(exc), slot.name, msg["path"]))
            return
        self._apply(events)

    def on_barrier_leave(self, slot: HostSlot, msg: Message) -> None:
        self._apply(self.barriers.leave(msg["name"], slot.name, time.monotonic()))

    def release_barrier(self, name: str) -> None:
        """Force the release of barrier ``name`` (the user's ``release`` command)."""
        self._apply(self.barriers.force_release(name, time.monotonic()))

    def _apply(self, events: list[BarrierEvent]) -> None:
        bus, send = self.run.bus, self.run.send
        for ev in events:
            if isinstance(ev, Released):
                bus.emit(BARRIER_RELEASED, data={"barrier": ev.name, "reason": ev.reason, "hosts": list(ev.hosts)})
                for host in ev.hosts:
                    send(host, Message.of("barrier.release", name=ev.name, late=False))
            elif isinstance(ev, PassedLate):
                bus.emit(BARRIER_LATE, host=ev.host, data={"barrier": ev.name})
                send(ev.host, Message.of("barrier.release", name=ev.name, late=True))
            elif isinstance(ev, Admitted):
                bus.emit(BARRIER_ADMITTED, host=ev.host, data={"barrier": ev.name})
                send(ev.host, Message.of("barrier.release", name=ev.name, late=False))
            else:
                bus.emit(BARRIER_WAITING, host=ev.host, data={"barrier": ev.name})
        self._arm_timer()

    def _arm_timer(self) -> None:
        self.close()
        when = self.barriers.get_timer()
        if when is not None:
            loop = asyncio.get_running_loop()
            self._timer = loop.call_later(max(0.0, when - time.monotonic()), self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._apply(self.barriers.handle_timer(time.monotonic()))

    # --- workflows -----------------------------------------------------------------------------------------

    def on_work_next(self, slot: HostSlot, msg: Message) -> None:
        path = msg["path"]
        queue = self.queues.get(path)
        if queue is None:
            self.run.send(slot.name, Message.of("work.none", path=path))
            return
        self._parked.setdefault(path, deque()).append(slot.name)
        self._serve_parked(path)

    def _serve_parked(self, path: str) -> None:
        queue = self.queues[path]
        parked = self._parked.setdefault(path, deque())
        hosts = self.run.hosts
        while parked:
            host = parked[0]
            if not hosts.is_live(hosts[host]):
                parked.popleft()
                continue
            item = queue.take(host)
            if item is not None:
                parked.popleft()
                self.run.bus.emit(WORK_TAKEN, host=host, block=path, data={"item": item})
                self.run.send(host, Message.of("work.item", path=path, item=item))
            elif queue.finished:
                parked.popleft()
                self.run.send(host, Message.of("work.none", path=path))
            else:
                return  # items in flight elsewhere may come back: keep the request parked

    def on_work_done(self, slot: HostSlot, msg: Message) -> None:
        path, item, ok = msg["path"], msg["item"], bool(msg["ok"])
        queue = self.queues.get(path)
        if queue is None:
            return
        accepted = queue.done(slot.name, item) if ok else queue.failed(slot.name, item)
        self.run.bus.emit(
            WORK_DONE if ok else WORK_FAILED, host=slot.name, block=path, data={"item": item, "accepted": accepted}
        )
        self._serve_parked(path)
