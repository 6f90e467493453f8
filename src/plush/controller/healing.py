"""Failure handling of the run engine: the host failure ladder, restarts, rematches, application restarts,
host limits and the service pool refresh.

Role. :class:`HealingMixin` decides nothing itself: the :class:`~plush.controller.failures.FailureLadder`
says what a failed host becomes, :class:`~plush.controller.recovery.HostLimits` says when a host stays over
its component's limits, :func:`~plush.controller.recovery.local_spares` says how many local hosts could
replace one. This module carries those decisions out.

A host fails when its agent process exits (watched through the launcher), when liveness declares its
connection dead and the agent cannot resume (:mod:`~plush.controller.links`), when its samples stay over the
component's limits, or by hand (:meth:`HealingMixin.fail_host`). Its agent's process group and every process
the host still runs for the run (its launcher's ``kill_leftovers``) are killed first, so a hung agent woken later
cannot touch the run; barriers stop expecting it and its work items go back to the queue. Then the ladder
decides: restart the agent in place, rematch to a new host of the pool, go on without it while its
component keeps its min, or abort. A restarted or replacement host rejoins, installs (cached) and executes
its component blocks from the start (instance numbers go on), passing released barriers late. A block failed
with ``restart_application`` restarts every host's execution from the top (``reset``; at most
``max_application_restarts`` times). A service refreshes its pool every ``reconnect_interval``: it revives
failed hosts, then replaces, never beyond the hosts the pool has (``pool_size``: on the local sandbox, the
count each component started with; the component's ``max`` is a bound, not a number of hosts to invent).

Invariants: a host fails at most once per life (``state == "failed"`` until restarted); every recovery
task is owned by the engine (``_recovery_tasks``) and cancelled when the run ends; nothing is restarted or
replaced once the run is finished.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Sequence
from typing import Any

from plush.barriers.manager import BarrierManager
from plush.controller.failures import LadderStep
from plush.controller.recovery import local_spares
from plush.controller.runstate import EngineState, HostSlot, RunOutcome
from plush.errors import LaunchError, PlushError
from plush.launch.base import AgentHandle
from plush.protocol.messages import Message
from plush.spec.model import BarrierBlock

__all__ = ["KILL_WAIT", "HealingMixin"]

log = logging.getLogger(__name__)

#: seconds to wait for a failed host's SIGKILLed agent to be gone before it is restarted
KILL_WAIT = 5.0


class HealingMixin(EngineState):
    """Host failures, restarts, rematches, limits and the service pool of
    :class:`~plush.controller.engine.RunEngine`."""

    def _on_hostmon(self, slot: HostSlot, msg: Message) -> None:
        self.bus.emit("host.sample", host=slot.name, data=msg["sample"])
        reasons = self._limits.observe(slot.name, slot.component, msg["sample"], time.monotonic())
        if reasons and not self.finished and slot.state != "failed":
            self.bus.emit("host.over_limits", host=slot.name, data={"reasons": reasons})
            self._host_failed(slot, "over its limits: " + "; ".join(reasons), restart=False)

    def _host_failed(self, slot: HostSlot, reason: str, *, restart: bool = True) -> None:
        """``slot``'s host has failed: it is no longer expected anywhere; then the failure ladder decides.

        ``restart=False`` (over its limits, or marked failed by the user) skips restarting it in place."""
        if self.finished or slot.state == "failed":
            return
        slot.state = "failed"
        peer, slot.peer = slot.peer, None
        if peer is not None and not peer.closed:
            peer.close("the host failed")
        self._resetting.discard(slot.name)
        self._limits.forget(slot.name)
        self.bus.emit("host.failed", host=slot.name, data={"reason": reason, "component": slot.component})
        self._kill_host_now(slot.name)
        self._apply_barrier_events(self.barriers.host_failed(slot.name, time.monotonic()))
        for path, queue in self.queues.items():
            if queue.host_failed(slot.name):
                self._serve_parked(path)
        step = self.ladder.host_failed(slot.name, reason, spares=self._spares(slot.component), restart=restart)
        log.warning("%s", step.message)
        if step.kind == "restart":
            self._recovering.add(slot.name)
            self._spawn_recovery(self._restart_host(slot, step))
        elif step.kind == "rematch":
            new = self._new_host(slot.component)
            if new is None:
                self._abort(f"{step.message}, but no host is left to replace it", slot.name, None)
                return
            self._replaced[slot.component] = self._replaced.get(slot.component, 0) + 1
            self.bus.emit(
                "host.rematched",
                host=slot.name,
                data={"replacement": new.name, "component": slot.component, "reason": step.message},
            )
            self._spawn_recovery(self._rematch(slot, new))
        elif step.kind == "continue":
            self.bus.emit("host.dropped", host=slot.name, data={"component": slot.component, "reason": step.message})
            self._spawn_recovery(self._kill_host(slot.name))
            self._maybe_release_start()
            self._check_complete()
        elif step.kind == "abort":
            self._abort(step.message, slot.name, None)

    def fail_host(self, host: str, reason: str = "marked failed by the user") -> None:
        """Mark ``host`` failed by hand (the ``fail`` command): it is replaced or dropped, as the ladder says."""
        slot = self.slots.get(host)
        if slot is None:
            raise PlushError(f"no host named {host!r} in this run (hosts: {', '.join(sorted(self.slots))})")
        if self.finished:
            raise PlushError("the run is over")
        if slot.state == "failed":
            raise PlushError(f"host {host} has failed already")
        self._host_failed(slot, reason, restart=False)

    def _abort(self, reason: str, host: str | None, block: str | None) -> None:
        if self.finished:
            return
        self.bus.emit("app.aborted", host=host, block=block, data={"reason": reason, "host": host, "block": block})
        self._finish(RunOutcome(False, reason, host, block))

    def _live_slots(self) -> list[HostSlot]:
        """Hosts that are, or are about to be again, part of the run (failed ones being restarted count)."""
        return [s for s in self.slots.values() if s.state != "failed" or s.name in self._recovering]

    def _spares(self, component: str) -> int:
        comp = next(c for c in self.project.components if c.name == component)
        live = self._live_slots()
        return local_spares(
            comp,
            live_in_component=sum(1 for s in live if s.component == component),
            started_total=len(self.slots),
            replaced=self._replaced.get(component, 0),
            max_local_hosts=self.settings.max_local_hosts,
        )

    def _new_host(self, component: str) -> HostSlot | None:
        """A new host for ``component`` (a rematch or a service refill), expected at its barriers; None when
        the pool has none left."""
        host = self._new_host_source(component)
        if host is None:
            return None
        name = host.name
        index = sum(1 for s in self.slots.values() if s.component == component)
        slot = self.slots[name] = HostSlot(name, component, index)
        self.ladder.add_host(name, component)
        self._expect_again(slot)
        return slot

    def _expect_again(self, slot: HostSlot) -> None:
        """Barriers of ``slot``'s component blocks expect it (again); a released one lets it pass late."""
        for cb in self.project.application.component_blocks:
            if cb.component == slot.component:
                for block in cb.blocks:
                    if isinstance(block, BarrierBlock):
                        self.barriers.add_expected(block.name, slot.name)

    def _spawn_recovery(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._recovery_tasks.add(task)
        task.add_done_callback(self._recovery_done)

    def _recovery_done(self, task: asyncio.Task[None]) -> None:
        self._recovery_tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            exc = task.exception()
            log.error("failure recovery went wrong", exc_info=exc)
            self._abort(f"internal error while recovering from a failure: {exc}", None, None)

    def _kill_host_now(self, name: str) -> None:
        """SIGKILL the host's agent group now (a stopped agent dies too), and its other processes soon."""
        if self._launcher is not None:
            self._launcher.signal_agent(name, signal.SIGKILL)
        self._spawn_recovery(self._sweep(name))

    async def _kill_host(self, name: str) -> None:
        """:meth:`_kill_host_now`, then wait (bounded) until the agent is gone and sweep once more."""
        agent = self._current_agent(name)
        self._kill_host_now(name)
        if agent is not None and agent.returncode is None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(agent.wait()), KILL_WAIT)
        await self._sweep(name)  # what a dying agent may still have started

    async def _sweep(self, host: str) -> None:
        """SIGKILL every process ``host`` still runs for this run (its launcher's ``kill_leftovers``). Hosts
        failing together share one call (for the local launcher: one pass over /proc, in a thread)."""
        self._sweep_hosts.add(host)
        if self._sweep_pass is None:
            self._sweep_pass = asyncio.get_running_loop().create_task(self._sweep_pass_run())
        await asyncio.shield(self._sweep_pass)

    async def _sweep_pass_run(self) -> None:
        await asyncio.sleep(0)  # let the other failures of this moment join the pass
        hosts, self._sweep_hosts = self._sweep_hosts, set()
        self._sweep_pass = None
        if self._launcher is not None:
            await self._launcher.kill_leftovers(self.rundir.run_id, hosts)

    async def _restart_host(self, slot: HostSlot, step: LadderStep) -> None:
        await self._kill_host(slot.name)
        self._recovering.discard(slot.name)
        if self.finished:
            return
        slot.state = "starting"
        slot.peer = None
        slot.ok = None
        slot.blocks.clear()
        self._expect_again(slot)
        self.bus.emit("host.restarted", host=slot.name, data={"component": slot.component, "reason": step.message})
        await self._start_agent(slot)

    async def _rematch(self, old: HostSlot, new: HostSlot) -> None:
        await self._kill_host(old.name)
        if not self.finished:
            await self._start_agent(new)

    async def _start_agent(self, slot: HostSlot) -> None:
        """Start ``slot``'s agent; it joins, is prepared, installs, and executes (the start barrier is past)."""
        assert self._launcher is not None
        self._rejoining.add(slot.name)
        try:
            agent = await self._launcher.start_agent(slot.name)
        except LaunchError as exc:
            self._host_failed(slot, f"cannot start its agent: {exc}")
            return
        self._watch_agents([agent])
        timer = asyncio.get_running_loop().call_later(self.settings.join_timeout, self._rejoin_timeout, slot, agent)
        self._join_timers.append(timer)

    def _rejoin_timeout(self, slot: HostSlot, agent: AgentHandle) -> None:
        if slot.state == "starting" and self._current_agent(slot.name) is agent:
            self._host_failed(slot, f"its new agent did not join within {self.settings.join_timeout:g}s")

    def _current_agent(self, name: str) -> AgentHandle | None:
        return self._launcher.agent(name) if self._launcher is not None else None

    def agent_pid(self, host: str) -> int | None:
        """The pid of ``host``'s current agent process (None before it started or after it exited)."""
        agent = self._current_agent(host)
        return agent.pid if agent is not None and agent.returncode is None else None

    def _watch_agents(self, agents: Sequence[AgentHandle]) -> None:
        for agent in agents:
            self._spawn_recovery(self._watch_agent(agent))

    async def _watch_agent(self, agent: AgentHandle) -> None:
        """An agent process that exits while its host is part of the run is a host failure, at once."""
        code = await agent.wait()
        slot = self.slots.get(agent.name)
        if slot is None or self.finished or self._current_agent(agent.name) is not agent:
            return
        if slot.state in ("finished", "stopped", "failed"):
            return
        how = f"killed by signal {-code}" if code < 0 else f"exit status {code}"
        self._host_failed(slot, f"its agent exited unexpectedly ({how})")

    async def _end_recovery(self) -> None:
        """The run is over: no timer fires, no host is restarted or replaced any more."""
        for handle in (self._refresh_timer, *self._join_timers):
            if handle is not None:
                handle.cancel()
        self._refresh_timer = None
        self._join_timers.clear()
        tasks = list(self._recovery_tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    # --- application restarts (exit policy restart_application) -----------------------------------------

    def _restart_application(self, slot: HostSlot, path: str, reason: str) -> None:
        """Stop every host's execution, reset block states, barriers and work queues, start from the top."""
        if self.finished:
            return
        limit = self.settings.max_application_restarts
        if self.app_restarts >= limit:
            self._abort(
                f"{reason} -> restart_application, but the application restarted {self.app_restarts} time(s) "
                f"already (max_application_restarts={limit})",
                slot.name,
                path,
            )
            return
        self.app_restarts += 1
        self.bus.emit("app.restarted", host=slot.name, block=path, data={"count": self.app_restarts, "reason": reason})
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.barriers = BarrierManager()
        self.queues = {}
        self._parked.clear()
        self._declare_barriers_and_queues()
        live = self._live_slots()
        now = time.monotonic()
        for gone in set(self.slots) - {s.name for s in live}:
            self.barriers.host_failed(gone, now)
        for s in live:
            s.blocks.clear()
            s.ok = None
            if s.peer is not None and s.state in ("running", "finished"):
                # messages of the ended execution are dropped until the host answers reset.done
                self._resetting.add(s.name)
                self._send(s.name, Message.of("reset", reason=reason))

    def _on_reset_done(self, slot: HostSlot, msg: Message) -> None:
        if slot.name not in self._resetting:
            return
        self._resetting.discard(slot.name)
        slot.state = "installed"
        self._go_execute([slot])

    # --- service mode: the pool is refreshed every reconnect_interval -----------------------------------

    def _arm_refresh(self) -> None:
        app = self.project.application
        if app.service and app.reconnect_interval and not self.finished:
            loop = asyncio.get_running_loop()
            self._refresh_timer = loop.call_later(app.reconnect_interval, self._refresh_pool)

    def _refresh_pool(self) -> None:
        """Clear failed marks and refill each component up to its pool's size (never beyond its max): failed
        hosts first (their agents are started again), then new local hosts if room is left. Emits
        ``pool.refreshed``."""
        self._refresh_timer = None
        if self.finished:
            return
        revived: list[str] = []
        added: list[str] = []
        for comp in self.project.components:
            failed = [
                s
                for s in self.slots.values()
                if s.component == comp.name and s.state == "failed" and s.name not in self._recovering
            ]
            for slot in failed:
                if self._room(comp.name, new=False) <= 0:
                    break
                self.ladder.revive(slot.name)
                self._recovering.add(slot.name)
                revived.append(slot.name)
                self._spawn_recovery(self._restart_host(slot, self._revived_step(slot)))
            while self._room(comp.name, new=True) > 0:
                new = self._new_host(comp.name)
                if new is None:
                    break
                added.append(new.name)
                self._spawn_recovery(self._start_agent(new))
        live = self._live_slots()
        self.bus.emit(
            "pool.refreshed",
            data={"revived": revived, "added": added, "live": len(live)},
        )
        self._arm_refresh()

    def _room(self, component: str, *, new: bool) -> int:
        """Hosts ``component`` may still get: up to the size of its pool (within its max) live hosts; a ``new``
        one also only while the run has started fewer than ``max_local_hosts`` local hosts in all."""
        comp = next(c for c in self.project.components if c.name == component)
        in_comp = sum(1 for s in self._live_slots() if s.component == component)
        room = min(self.pool_size[component], comp.num_hosts.max) - in_comp
        return max(0, min(room, self.settings.max_local_hosts - len(self.slots)) if new else room)

    @staticmethod
    def _revived_step(slot: HostSlot) -> LadderStep:
        return LadderStep("restart", slot.name, slot.component, f"{slot.name}: failed mark cleared by the refresh")
