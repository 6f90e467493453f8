"""Failure handling of a run: the host failure ladder, restarts, rematches, application restarts, host
limits and the service pool refresh.

Role. :class:`Healer` (a part of :class:`~plush.controller.engine.RunEngine`) decides nothing itself: the
:class:`~plush.controller.failures.FailureLadder` says what a failed host becomes,
:class:`~plush.controller.recovery.HostLimits` says when a host stays over its component's limits,
:func:`~plush.controller.recovery.local_spares` says how many hosts could replace one. The healer carries
those decisions out through the run (:class:`~plush.controller.runstate.RunPort`), its coordinator (barriers
and queues) and its mesh (agents).

Whether a host failed is its lifecycle's decision (:mod:`~plush.controller.lifecycle`): its agent exited,
its link broke and the agent could not resume, it did not join in time, its samples stayed over the
component's limits (the healer feeds ``limits_exceeded``), or by hand (:meth:`Healer.fail_host`:
``user_fail``). Its link is closed, its agent's process group and every process the host still runs for the
run are killed (the mesh carries that out), so a hung agent woken later cannot touch the run; then the
healer is told (:meth:`Healer.report_failed`: barriers stop expecting it and its work items go back to the
queue) and asked (:meth:`Healer.decide`). The ladder decides:
restart the agent in place, rematch to a new host of the pool, go on without it while its component keeps
its min, or abort. A restarted or replacement host rejoins, installs (cached) and executes its component
blocks from the start (instance numbers go on), passing released barriers late. A block failed with
``restart_application`` restarts every host's execution from the top (``reset``; at most
``max_application_restarts`` times). A service refreshes its pool every ``reconnect_interval``: it revives
failed hosts, then replaces, never beyond the hosts the pool has (``pool_size``: on the local sandbox, the
count each component started with; the component's ``max`` is a bound, not a number of hosts to invent).

The operator overrides the ladder (:meth:`Healer.restart_host`, :meth:`Healer.restart_application` with
``forced``, the ``restart`` command): a live host is failed by hand and restarted in place whatever its
restart count, a failed (dropped) one is revived and restarted, the application restarts even when
``max_application_restarts`` is spent.

Restarts and replacements are requests to the lifecycles (``restart_requested``: a new agent once the old
one is gone; ``rematched`` and ``matched``); an application restart is ``reset_requested`` to every live host
(``resetting`` until it answers).

Invariants: a host fails at most once per life (``failed`` until restarted); the healer keeps no host state
(only which hosts were started by a recovery, for the failures of their own join); nothing is restarted or
replaced once the run is finished.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from plush.controller.catalogue import (
    APP_RESTARTED,
    HOST_DROPPED,
    HOST_FAILED,
    HOST_OVER_LIMITS,
    HOST_REMATCHED,
    HOST_RESTARTED,
    HOST_SAMPLE,
    POOL_REFRESHED,
)
from plush.controller.failures import FailureLadder
from plush.controller.lifecycle import CONNECTING, DONE, FAILED, MATCHED, RECOVERING, REPLACED, RESETTING
from plush.controller.recovery import HostLimits, local_spares
from plush.controller.runstate import HostSlot, RunPort
from plush.controller.supervisor import Supervisor
from plush.errors import PlushError
from plush.protocol.messages import Message
from plush.resources.host import Host

if TYPE_CHECKING:
    from plush.controller.coordination import Coordinator
    from plush.controller.mesh import Mesh

__all__ = ["Healer"]

log = logging.getLogger(__name__)

#: reports of an ended execution that an application restart drops until the host answers ``reset.done``
DROPPED_WHILE_RESETTING = frozenset(
    {"block", "barrier.enter", "barrier.leave", "work.next", "work.done", "finished", "upload", "upload.end"}
)


class Healer:
    """Host failures, restarts, rematches, limits and the service pool of one run."""

    def __init__(
        self,
        run: RunPort,
        coordinator: Coordinator,
        mesh: Mesh,
        tasks: Supervisor,
        *,
        pool_size: Mapping[str, int],
        new_host: Callable[[str], Host | None],
    ) -> None:
        self.run = run
        self.coordinator = coordinator
        self.mesh = mesh
        self.tasks = tasks
        self.pool_size = dict(pool_size)
        self._new_host_source = new_host
        project, settings = run.project, run.settings
        self.ladder = FailureLadder(
            {s.name: s.component for s in run.hosts.values()},
            {c.name: c.num_hosts.min for c in project.components},
            host_restarts=settings.host_restarts,
        )
        self._limits = HostLimits(
            project.components, interval=settings.hostmon_interval, samples=settings.limit_samples
        )
        self._replaced: dict[str, int] = {}  # component -> replacement hosts given so far
        self.rejoining: set[str] = set()  # hosts started by the recovery: their own join failure is theirs
        self._operator: dict[str, str] = {}  # hosts the operator restarts: their failure is not the ladder's
        self.app_restarts = 0
        self._refresh_timer: asyncio.TimerHandle | None = None

    # --- failures --------------------------------------------------------------------------------------

    def on_hostmon(self, slot: HostSlot, msg: Message) -> None:
        self.run.bus.emit(HOST_SAMPLE, host=slot.name, data=msg["sample"])
        reasons = self._limits.observe(slot.name, slot.component, msg["sample"], time.monotonic())
        life = self.mesh.states.get(slot.name)
        if reasons and not self.run.finished and life is not None and life.moves_on("limits_exceeded"):
            self.run.bus.emit(HOST_OVER_LIMITS, host=slot.name, data={"reasons": reasons})
            self.mesh.states.handle(slot.name, "limits_exceeded", reason="over its limits: " + "; ".join(reasons))

    def report_failed(self, name: str, reason: str) -> None:
        """A host of the run failed (its lifecycle says so; its link is closed and its agent killed): it is no
        longer expected at barriers, its work items go back to their queues."""
        slot = self.run.hosts[name]
        self._limits.forget(name)
        self.run.bus.emit(HOST_FAILED, host=name, data={"reason": reason, "component": slot.component})
        self.coordinator.host_failed(name)

    def decide(self, name: str, reason: str, *, restart: bool = True) -> None:
        """The failure ladder's step for failed ``name``, carried out. ``restart=False`` (over its limits, or
        marked failed by the user) skips restarting it in place."""
        run = self.run
        if run.finished:
            return
        slot = run.hosts[name]
        why = self._operator.pop(name, None)
        if why is not None:  # the operator's restart: in place, whatever the ladder would say
            self._restart(slot, why)
            return
        step = self.ladder.host_failed(name, reason, spares=self._spares(slot.component), restart=restart)
        log.warning("%s", step.message)
        if step.kind == "restart":
            self._restart(slot, step.message)
        elif step.kind == "rematch":
            new = self._new_host(slot.component)
            if new is None:
                run.abort_run(f"{step.message}, but no host is left to replace it", name, None)
                return
            self._replaced[slot.component] = self._replaced.get(slot.component, 0) + 1
            run.bus.emit(
                HOST_REMATCHED,
                host=name,
                data={"replacement": new.name, "component": slot.component, "reason": step.message},
            )
            self.mesh.states.handle(name, "rematched", replacement=new.name)
            self._start(new)
        elif step.kind == "continue":
            run.bus.emit(HOST_DROPPED, host=name, data={"component": slot.component, "reason": step.message})
            run.maybe_release_start()
            run.check_complete()
        elif step.kind == "abort":
            run.abort_run(step.message, name, None)

    def fail_host(self, host: str, reason: str = "marked failed by the user") -> None:
        """Mark ``host`` failed by hand (the ``fail`` command): it is replaced or dropped, as the ladder says."""
        slot = self.run.hosts.get(host)
        if slot is None:
            names = ", ".join(sorted(self.run.hosts.names()))
            raise PlushError(f"no host named {host!r} in this run (hosts: {names})")
        if self.run.finished:
            raise PlushError("the run is over")
        life = self.mesh.states.get(host)
        if life is not None and life.state in (FAILED, REPLACED):
            raise PlushError(f"host {host} has failed already")
        if life is not None and life.state == DONE:
            raise PlushError(f"host {host} has finished its part (failing it would run its blocks again)")
        if life is None or not life.accepts("user_fail"):
            raise PlushError(f"host {host} cannot be marked failed now (it is {slot.state})")
        self.mesh.states.handle(host, "user_fail", reason=reason)

    def restart_host(self, host: str, reason: str) -> None:
        """The operator's restart of ``host`` (the ``restart HOST`` command), as the ladder's first step but
        whatever its restart count: a live host is failed by hand (its link closed, its agent and processes
        killed, barriers and queues told) and its agent started again in place; a failed host (dropped by the
        ladder) is revived and started again. It rejoins, installs (cached) and executes its component blocks
        from the start. Raises PlushError (:meth:`check_restart`) saying why it cannot."""
        self.check_restart(host)
        slot = self.run.hosts[host]
        if slot.state == FAILED:
            self.ladder.revive(host)
            self._restart(slot, f"{host}: {reason}")
            return
        self._operator[host] = f"{host}: {reason}"
        self.mesh.states.handle(host, "user_fail", reason=reason)

    def check_restart(self, host: str) -> None:
        """Raise PlushError when the operator cannot restart ``host`` now: replaced, restarting already, not
        joined yet, or in a state that takes no failure."""
        slot = self.run.hosts[host]
        life = self.mesh.states.get(host)
        state = slot.state
        if state == REPLACED:
            by = f" by {life.replacement}" if life is not None and life.replacement else ""
            raise PlushError(f"host {host} was replaced{by}: restart the host that took its place")
        if state == FAILED:
            return
        if state in (RECOVERING, CONNECTING) and host in self.rejoining:
            raise PlushError(f"host {host} is restarting already (it is {state})")
        if slot.joined_at is None and host not in self.rejoining:
            raise PlushError(f"host {host} has not joined yet (it is {state}): nothing to restart")
        if life is None or not life.moves_on("user_fail"):
            raise PlushError(f"host {host} cannot be restarted now (it is {state})")

    def _spares(self, component: str) -> int:
        comp = next(c for c in self.run.project.components if c.name == component)
        hosts = self.run.hosts
        return local_spares(
            comp,
            live_in_component=sum(1 for s in hosts.in_component(component) if hosts.is_live(s)),
            started_total=len(hosts),
            replaced=self._replaced.get(component, 0),
            max_local_hosts=self.run.settings.max_local_hosts,
        )

    def _new_host(self, component: str) -> HostSlot | None:
        """A new host for ``component`` (a rematch or a service refill), expected at its barriers; None when
        the pool has none left."""
        host = self._new_host_source(component)
        if host is None:
            return None
        member = self.mesh.add(host)
        slot = self.run.hosts.add(host.name, component, member.life)
        self.ladder.add_host(host.name, component)
        self.coordinator.expect(slot)
        return slot

    def _restart(self, slot: HostSlot, message: str) -> None:
        """Restart ``slot``'s host in place: a new agent once the old one is gone (its lifecycle waits for
        that); it rejoins, installs (cached) and executes its component blocks from the start."""
        slot.ok = None
        slot.blocks.clear()
        self.coordinator.expect(slot)
        self.rejoining.add(slot.name)
        self.run.bus.emit(HOST_RESTARTED, host=slot.name, data={"component": slot.component, "reason": message})
        self.mesh.states.handle(slot.name, "restart_requested")

    def _start(self, slot: HostSlot) -> None:
        """A new host of the run: matched; a connected idle one (a spare of the mesh) is prepared at once, the
        others' agents are started. Its own join failure is its own (not the run's start's)."""
        self.rejoining.add(slot.name)
        states = self.mesh.states
        states.handle(slot.name, "matched", component=slot.component)
        if states.state(slot.name) == MATCHED:
            states.handle(slot.name, "launch_started")

    def close(self) -> None:
        """The run is over: no timer fires, no host is restarted or replaced any more (the run's supervisor
        cancels the recovery tasks)."""
        if self._refresh_timer is not None:
            self._refresh_timer.cancel()
            self._refresh_timer = None

    # --- application restarts (exit policy restart_application) -----------------------------------------

    def restart_application(
        self, slot: HostSlot | None, path: str | None, reason: str, *, forced: bool = False
    ) -> None:
        """Stop every host's execution, reset block states, barriers and work queues, start from the top.
        ``forced``: the operator's (no failed block), also when ``max_application_restarts`` is spent."""
        run = self.run
        if run.finished:
            return
        limit = run.settings.max_application_restarts
        if self.app_restarts >= limit and not forced:
            run.abort_run(
                f"{reason} -> restart_application, but the application restarted {self.app_restarts} time(s) "
                f"already (max_application_restarts={limit})",
                slot.name if slot is not None else None,
                path,
            )
            return
        self.app_restarts += 1
        run.bus.emit(
            APP_RESTARTED,
            host=slot.name if slot is not None else None,
            block=path,
            data={"count": self.app_restarts, "reason": reason},
        )
        self.coordinator.reset()
        for s in run.hosts.live():
            s.blocks.clear()
            s.ok = None
        # a running or finished host resets (the reports of the ended execution are dropped until it answers
        # reset.done); one not executing yet will execute from the top anyway
        self.mesh.states.handle_many((s.name, "reset_requested", {"reason": reason}) for s in run.hosts.live())

    @property
    def resetting(self) -> bool:
        """Whether a host has not answered ``reset`` yet (an application restart in progress), in O(1)."""
        return self.run.hosts.counts[RESETTING] > 0

    def drops(self, slot: HostSlot, mtype: str) -> bool:
        """Whether a message of ``mtype`` from ``slot`` reports an execution an application restart ended."""
        return mtype in DROPPED_WHILE_RESETTING and slot.effective == RESETTING

    def on_reset_done(self, slot: HostSlot, msg: Message) -> None:
        if slot.effective == RESETTING:
            self.mesh.states.offer(slot.name, "reset_done")  # -> go execute

    # --- service mode: the pool is refreshed every reconnect_interval -----------------------------------

    def arm_refresh(self) -> None:
        app = self.run.project.application
        if app.service and app.reconnect_interval and not self.run.finished:
            loop = asyncio.get_running_loop()
            self._refresh_timer = loop.call_later(app.reconnect_interval, self._refresh_pool)

    def _refresh_pool(self) -> None:
        """Clear failed marks and refill each component up to its pool's size (never beyond its max): failed
        hosts first (their agents are started again), then new hosts if room is left. Emits
        ``pool.refreshed``."""
        self._refresh_timer = None
        run = self.run
        if run.finished:
            return
        hosts = run.hosts
        revived: list[str] = []
        added: list[str] = []
        for comp in run.project.components:
            failed = [s for s in hosts.in_component(comp.name) if s.state == FAILED]
            for slot in failed:
                if self._room(comp.name, new=False) <= 0:
                    break
                self.ladder.revive(slot.name)
                revived.append(slot.name)
                self._restart(slot, f"{slot.name}: failed mark cleared by the refresh")
            while self._room(comp.name, new=True) > 0:
                new = self._new_host(comp.name)
                if new is None:
                    break
                added.append(new.name)
                self._start(new)
        run.bus.emit(POOL_REFRESHED, data={"revived": revived, "added": added, "live": hosts.live_count()})
        self.arm_refresh()

    def _room(self, component: str, *, new: bool) -> int:
        """Hosts ``component`` may still get: up to the size of its pool (within its max) live hosts; a ``new``
        one also only while the run has started fewer than ``max_local_hosts`` hosts in all."""
        comp = next(c for c in self.run.project.components if c.name == component)
        hosts = self.run.hosts
        in_comp = sum(1 for s in hosts.in_component(component) if hosts.is_live(s))
        room = min(self.pool_size[component], comp.num_hosts.max) - in_comp
        return max(0, min(room, self.run.settings.max_local_hosts - len(hosts)) if new else room)

    def statistics(self) -> dict[str, Any]:
        return {"app_restarts": self.app_restarts, "replaced": dict(self._replaced)}
