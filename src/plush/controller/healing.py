"""Failure handling of a run: the host failure ladder, restarts, rematches, application restarts, host
limits and the service pool refresh.

Role. :class:`Healer` (a part of :class:`~plush.controller.engine.RunEngine`) decides nothing itself: the
:class:`~plush.controller.failures.FailureLadder` says what a failed host becomes,
:class:`~plush.controller.recovery.HostLimits` says when a host stays over its component's limits,
:func:`~plush.controller.recovery.local_spares` says how many hosts could replace one. The healer carries
those decisions out through the run (:class:`~plush.controller.runstate.RunPort`), its coordinator (barriers
and queues) and its mesh (agents).

A host fails when its agent process exits (watched by the mesh), when liveness declares its connection dead
and the agent cannot resume (:mod:`~plush.controller.links`), when its samples stay over the component's
limits, or by hand (:meth:`Healer.fail_host`). Its agent's process group and every process the host still
runs for the run (its launcher's ``kill_leftovers``) are killed first, so a hung agent woken later cannot
touch the run; barriers stop expecting it and its work items go back to the queue. Then the ladder decides:
restart the agent in place, rematch to a new host of the pool, go on without it while its component keeps
its min, or abort. A restarted or replacement host rejoins, installs (cached) and executes its component
blocks from the start (instance numbers go on), passing released barriers late. A block failed with
``restart_application`` restarts every host's execution from the top (``reset``; at most
``max_application_restarts`` times). A service refreshes its pool every ``reconnect_interval``: it revives
failed hosts, then replaces, never beyond the hosts the pool has (``pool_size``: on the local sandbox, the
count each component started with; the component's ``max`` is a bound, not a number of hosts to invent).

Invariants: a host fails at most once per life (``state == "failed"`` until restarted); every recovery
task belongs to the run's supervisor and is cancelled when the run ends (:meth:`Healer.close`); nothing is
restarted or replaced once the run is finished.
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
from plush.controller.failures import FailureLadder, LadderStep
from plush.controller.recovery import HostLimits, local_spares
from plush.controller.runstate import HostSlot, RunPort
from plush.controller.supervisor import Supervisor
from plush.errors import LaunchError, PlushError
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
        self.resetting: set[str] = set()  # hosts that have not answered ``reset`` yet (application restart)
        self.app_restarts = 0
        self._refresh_timer: asyncio.TimerHandle | None = None

    # --- failures --------------------------------------------------------------------------------------

    def on_hostmon(self, slot: HostSlot, msg: Message) -> None:
        self.run.bus.emit(HOST_SAMPLE, host=slot.name, data=msg["sample"])
        reasons = self._limits.observe(slot.name, slot.component, msg["sample"], time.monotonic())
        if reasons and not self.run.finished and slot.state != "failed":
            self.run.bus.emit(HOST_OVER_LIMITS, host=slot.name, data={"reasons": reasons})
            self.host_failed(slot, "over its limits: " + "; ".join(reasons), restart=False)

    def host_failed(self, slot: HostSlot, reason: str, *, restart: bool = True) -> None:
        """``slot``'s host has failed: it is no longer expected anywhere; then the failure ladder decides.

        ``restart=False`` (over its limits, or marked failed by the user) skips restarting it in place."""
        run = self.run
        if run.finished or slot.state == "failed":
            return
        run.hosts.move(slot, "failed")
        self.mesh.links.close(slot.name, "the host failed")
        self.resetting.discard(slot.name)
        self._limits.forget(slot.name)
        run.bus.emit(HOST_FAILED, host=slot.name, data={"reason": reason, "component": slot.component})
        self.mesh.kill_now(slot.name)
        self.coordinator.host_failed(slot.name)
        step = self.ladder.host_failed(slot.name, reason, spares=self._spares(slot.component), restart=restart)
        log.warning("%s", step.message)
        if step.kind == "restart":
            run.hosts.recovering.add(slot.name)
            self.tasks.spawn(self._restart_host(slot, step), name=f"restart {slot.name}")
        elif step.kind == "rematch":
            new = self._new_host(slot.component)
            if new is None:
                run.abort_run(f"{step.message}, but no host is left to replace it", slot.name, None)
                return
            self._replaced[slot.component] = self._replaced.get(slot.component, 0) + 1
            run.bus.emit(
                HOST_REMATCHED,
                host=slot.name,
                data={"replacement": new.name, "component": slot.component, "reason": step.message},
            )
            self.tasks.spawn(self._rematch(slot, new), name=f"rematch {slot.name}")
        elif step.kind == "continue":
            run.bus.emit(HOST_DROPPED, host=slot.name, data={"component": slot.component, "reason": step.message})
            self.tasks.spawn(self.mesh.kill(slot.name), name=f"kill {slot.name}")
            run.maybe_release_start()
            run.check_complete()
        elif step.kind == "abort":
            run.abort_run(step.message, slot.name, None)

    def fail_host(self, host: str, reason: str = "marked failed by the user") -> None:
        """Mark ``host`` failed by hand (the ``fail`` command): it is replaced or dropped, as the ladder says."""
        slot = self.run.hosts.get(host)
        if slot is None:
            names = ", ".join(sorted(self.run.hosts.names()))
            raise PlushError(f"no host named {host!r} in this run (hosts: {names})")
        if self.run.finished:
            raise PlushError("the run is over")
        if slot.state == "failed":
            raise PlushError(f"host {host} has failed already")
        self.host_failed(slot, reason, restart=False)

    def agent_exited(self, slot: HostSlot, code: int) -> None:
        """An agent process that exits while its host is part of the run is a host failure, at once."""
        if self.run.finished or slot.state in ("finished", "stopped", "failed"):
            return
        how = f"killed by signal {-code}" if code < 0 else f"exit status {code}"
        self.host_failed(slot, f"its agent exited unexpectedly ({how})")

    def rejoin_expired(self, slot: HostSlot) -> None:
        """A restarted or new host's agent did not join within ``join_timeout`` of its start."""
        self.host_failed(slot, f"its new agent did not join within {self.run.settings.join_timeout:g}s")

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
        self.mesh.add(host)
        slot = self.run.hosts.add(host.name, component)
        self.ladder.add_host(host.name, component)
        self.coordinator.expect(slot)
        return slot

    async def _restart_host(self, slot: HostSlot, step: LadderStep) -> None:
        await self.mesh.kill(slot.name)
        self.run.hosts.recovering.discard(slot.name)
        if self.run.finished:
            return
        self.run.hosts.move(slot, "starting")
        slot.ok = None
        slot.blocks.clear()
        self.coordinator.expect(slot)
        self.run.bus.emit(HOST_RESTARTED, host=slot.name, data={"component": slot.component, "reason": step.message})
        await self._start_agent(slot)

    async def _rematch(self, old: HostSlot, new: HostSlot) -> None:
        await self.mesh.kill(old.name)
        if not self.run.finished:
            await self._start_agent(new)

    async def _start_agent(self, slot: HostSlot) -> None:
        """Start ``slot``'s agent; it joins, is prepared, installs, and executes (the start barrier is past).
        A host whose agent is connected already (an idle spare of the mesh) is prepared at once."""
        member = self.mesh.members.get(slot.name)
        if member is not None and member.state == "joined":
            self.run.joined(slot.name)
            return
        self.rejoining.add(slot.name)
        try:
            await self.mesh.start_agent(slot.name)
        except LaunchError as exc:
            self.host_failed(slot, f"cannot start its agent: {exc}")

    def close(self) -> None:
        """The run is over: no timer fires, no host is restarted or replaced any more (the run's supervisor
        cancels the recovery tasks)."""
        if self._refresh_timer is not None:
            self._refresh_timer.cancel()
            self._refresh_timer = None

    # --- application restarts (exit policy restart_application) -----------------------------------------

    def restart_application(self, slot: HostSlot, path: str, reason: str) -> None:
        """Stop every host's execution, reset block states, barriers and work queues, start from the top."""
        run = self.run
        if run.finished:
            return
        limit = run.settings.max_application_restarts
        if self.app_restarts >= limit:
            run.abort_run(
                f"{reason} -> restart_application, but the application restarted {self.app_restarts} time(s) "
                f"already (max_application_restarts={limit})",
                slot.name,
                path,
            )
            return
        self.app_restarts += 1
        run.bus.emit(APP_RESTARTED, host=slot.name, block=path, data={"count": self.app_restarts, "reason": reason})
        self.coordinator.reset()
        for s in run.hosts.live():
            s.blocks.clear()
            s.ok = None
            if self.mesh.links.peer(s.name) is not None and s.state in ("running", "finished"):
                # messages of the ended execution are dropped until the host answers reset.done
                self.resetting.add(s.name)
                run.send(s.name, Message.of("reset", reason=reason))

    def drops(self, slot: HostSlot, mtype: str) -> bool:
        """Whether a message of ``mtype`` from ``slot`` reports an execution an application restart ended."""
        return mtype in DROPPED_WHILE_RESETTING and slot.name in self.resetting

    def on_reset_done(self, slot: HostSlot, msg: Message) -> None:
        if slot.name not in self.resetting:
            return
        self.resetting.discard(slot.name)
        self.run.hosts.move(slot, "installed")
        self.run.go_execute([slot])

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
            failed = [
                s for s in hosts.in_component(comp.name) if s.state == "failed" and s.name not in hosts.recovering
            ]
            for slot in failed:
                if self._room(comp.name, new=False) <= 0:
                    break
                self.ladder.revive(slot.name)
                hosts.recovering.add(slot.name)
                revived.append(slot.name)
                self.tasks.spawn(self._restart_host(slot, self._revived_step(slot)), name=f"revive {slot.name}")
            while self._room(comp.name, new=True) > 0:
                new = self._new_host(comp.name)
                if new is None:
                    break
                added.append(new.name)
                self.tasks.spawn(self._start_agent(new), name=f"add {new.name}")
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

    @staticmethod
    def _revived_step(slot: HostSlot) -> LadderStep:
        return LadderStep("restart", slot.name, slot.component, f"{slot.name}: failed mark cleared by the refresh")

    def statistics(self) -> dict[str, Any]:
        return {"app_restarts": self.app_restarts, "replaced": dict(self._replaced)}
