"""The run engine: one application run on a set of hosts, from the first agent start to the last stop.

Theory of operation. :class:`RunEngine` owns every part of one run and drives it from one inbox:

1. **connect**: a TLS listener with a fresh per-run token; the launcher starts one agent per host; each
   agent joins (``join`` → ``welcome``) and is sent ``prepare`` (the model, its host record, settings).
2. **install**: every prepared host gets ``go install``; hosts report ``installed``. Unless the
   application is a service, the *start barrier* holds execution until every host has installed.
3. **execute**: ``go execute``; each agent walks its component blocks and reports block states, process
   starts/exits, output and uploads (:mod:`~plush.controller.outputs`), barrier arrivals and workflow
   requests (:mod:`~plush.controller.coordination`).
4. **failures**: a failed host climbs the :class:`~plush.controller.failures.FailureLadder`; application
   restarts, host limits and the service pool refresh live in :mod:`~plush.controller.healing`. A broken
   link whose agent still runs first gets ``reconnect_window`` seconds to resume
   (:mod:`~plush.controller.links`, which also carries every message to and from agents).
5. **finish**: when every live host reported ``finished`` the run succeeded; a failed block whose policy
   says ``abort``, a ladder abort, an install failure or :meth:`abort` end it as failed; :meth:`stop` ends it
   as *stopped* on request (``app.stopped``; a service's normal end). Either way every agent is sent ``stop``
   (processes stopped, the outputs of blocks that did not complete uploaded, output flushed), then the
   launcher stops the agents.

This module keeps the lifecycle (run, handshake, prepare, install, files, completion, stop) and the message
dispatch table; each other concern is a mixin over :class:`~plush.controller.runstate.EngineState`, which
declares the state they share. Every state change is an :class:`~plush.controller.events.Event` on the bus.
Decisions (barriers, work, exit policies, the ladder) live in pure objects; the engine moves messages
between them and the fabric.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from typing import IO, Any

from plush.barriers.manager import BarrierManager
from plush.barriers.rules import BarrierRule
from plush.barriers.workqueue import WorkQueue
from plush.config import Settings, state_dir
from plush.controller.coordination import CoordinationMixin
from plush.controller.events import RUN_STORAGE_FAILED, EventBus
from plush.controller.failures import FailureLadder
from plush.controller.healing import HealingMixin
from plush.controller.links import LinksMixin
from plush.controller.outputs import OutputsMixin, _Upload
from plush.controller.recovery import HostLimits
from plush.controller.rundir import RunDir
from plush.controller.runstate import HostSlot, OutputCallback, RunOutcome
from plush.controller.sessions import SessionTable
from plush.errors import StorageError
from plush.fabric.listener import ControllerListener, Peer, PeerEvent
from plush.fabric.tls import ensure_ca, server_context
from plush.files.catalog import FileCatalog
from plush.launch.base import AgentContact, Launcher
from plush.protocol.messages import Message
from plush.protocol.secret import Secret
from plush.resources.host import Host
from plush.spec.model import BarrierBlock, Project, WorkflowBlock, to_dict

__all__ = ["HostSlot", "OutputCallback", "RunEngine", "RunOutcome"]

log = logging.getLogger(__name__)

#: seconds agents get to exit on their own after the run's ``stop`` before the launcher signals them
AGENT_EXIT_WAIT = 2.0
#: seconds beyond ``stop_grace`` that agents get to answer ``stop``: a tree's SIGKILL rounds (up to 5 s),
#: the adopted orphans (1 s), the last reports
STOP_MARGIN = 10.0


class RunEngine(CoordinationMixin, LinksMixin, HealingMixin, OutputsMixin):
    """Runs ``project`` on the hosts ``hosts`` assigns to its components, whose agents ``launcher`` starts.

    ``new_host(component)`` is a fresh host for a component (a rematch, a service refill) or None when
    there is none; ``launcher(contact)`` makes the launcher of the run's hosts."""

    def __init__(
        self,
        project: Project,
        *,
        settings: Settings,
        rundir: RunDir,
        bus: EventBus,
        hosts: Mapping[str, Sequence[Host]],
        new_host: Callable[[str], Host | None],
        launcher: Callable[[AgentContact], Launcher],
        on_output: OutputCallback | None = None,
    ) -> None:
        self.project = project
        self.settings = settings
        self.rundir = rundir
        self.bus = bus
        self.on_output = on_output
        self.slots: dict[str, HostSlot] = {}
        #: the hosts each component's pool really has: on the local sandbox, the count the run started with
        self.pool_size = {c.name: len(hosts.get(c.name, ())) for c in project.components}
        for comp in project.components:
            for i, host in enumerate(hosts.get(comp.name, ())):
                self.slots[host.name] = HostSlot(host.name, comp.name, i)
        self._new_host_source = new_host
        self._make_launcher = launcher
        self.barriers = BarrierManager()
        self.queues: dict[str, WorkQueue] = {}
        self._parked: dict[str, deque[str]] = {}
        self._logs: dict[tuple[str, str, int, str], IO[bytes]] = {}
        self._uploads: dict[tuple[str, str, str], _Upload] = {}
        self._outcome: asyncio.Future[RunOutcome] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._catalog: FileCatalog | None = None
        self._listener: ControllerListener | None = None
        #: reliable delivery per host: numbering, retention until acknowledged, dedupe, replay on resume
        self.sessions = SessionTable(self._send_ack)
        #: seconds since the run started at which each phase ended (``agents_started``, ``all_joined``, ...)
        self.timings: dict[str, float] = {}
        self._t0 = time.monotonic()
        self._declare_barriers_and_queues()
        # --- failure handling (see "failures" below) ---
        self._launcher: Launcher | None = None
        self.ladder = FailureLadder(
            {s.name: s.component for s in self.slots.values()},
            {c.name: c.num_hosts.min for c in project.components},
            host_restarts=settings.host_restarts,
        )
        self._replaced: dict[str, int] = {}  # component -> replacement hosts given so far
        self._recovering: set[str] = set()  # hosts whose agent is being (re)started after a failure
        self._recovery_tasks: set[asyncio.Task[None]] = set()
        self._limits = HostLimits(
            project.components, interval=settings.hostmon_interval, samples=settings.limit_samples
        )
        self._started = False  # the start barrier was released: a host that installs later executes at once
        self._resetting: set[str] = set()  # hosts that have not answered ``reset`` yet (application restart)
        self.app_restarts = 0
        self._instances: dict[tuple[str, str], int] = {}  # (host, process path) -> last instance started
        self._refresh_timer: asyncio.TimerHandle | None = None
        self._rejoining: set[str] = set()  # hosts started by the recovery: their own join timer covers them
        self._join_timers: list[asyncio.TimerHandle] = []
        self._sweep_hosts: set[str] = set()  # hosts whose processes the next /proc pass kills
        self._sweep_pass: asyncio.Task[None] | None = None
        #: the first failed write to the run directory (the run stopped because of it)
        self.storage_error: StorageError | None = None

    # --- set-up ---------------------------------------------------------------------------------------

    def _declare_barriers_and_queues(self) -> None:
        app = self.project.application
        for cb in app.component_blocks:
            hosts = [s.name for s in self.slots.values() if s.component == cb.component]
            for block in cb.blocks:
                if isinstance(block, BarrierBlock):
                    self.barriers.declare(block.name, BarrierRule.from_block(block), hosts)
                elif isinstance(block, WorkflowBlock):
                    self.queues[str(app.path / cb.name / block.name)] = WorkQueue(block.data_files)

    def _host_env(self, slot: HostSlot) -> dict[str, str]:
        env = {
            "PLUSH_HOST": slot.name,
            "PLUSH_HOST_INDEX": str(slot.index),
            "PLUSH_COMPONENT": slot.component,
            "PLUSH_RUN_ID": self.rundir.run_id,
            "PLUSH_RUN_DIR": str(self.rundir.shared),
            "PLUSH_WORKDIR": str(self.rundir.workdir(slot.name)),
            "PLUSH_ADDR": self._launcher.address(slot.name) if self._launcher is not None else "",
        }
        for comp in self.project.components:
            names = [s.name for s in self.slots.values() if s.component == comp.name]
            env[f"PLUSH_HOSTS_{_env_name(comp.name)}"] = ",".join(names)
        return env

    # --- the run --------------------------------------------------------------------------------------

    async def run(self) -> RunOutcome:
        loop = asyncio.get_running_loop()
        self._outcome = loop.create_future()
        self._t0 = time.monotonic()
        self.bus.emit("run.started", data={"run": self.rundir.run_id, "hosts": len(self.slots)})
        self._catalog = FileCatalog.for_project(self.project)
        await self._catalog.hash_all()
        ca = await asyncio.to_thread(ensure_ca, state_dir())
        token = Secret.generate()
        listener = ControllerListener(
            ssl_context=server_context(ca),
            token=token,
            run_id=self.rundir.run_id,
            host=self.settings.listen_host,
            settings=self.settings,
            inbox_limit=256,
        )
        self._listener = listener
        await listener.start()
        launcher = self._make_launcher(
            AgentContact(host=self.settings.listen_host, port=listener.port, ca_pem=ca.cert_pem, token=token)
        )
        self._launcher = launcher
        pump = asyncio.create_task(self._pump(listener))
        join_timer = loop.call_later(self.settings.join_timeout, self._join_timeout)
        try:
            self._watch_agents(await launcher.start_agents(list(self.slots)))
            self._mark("agents_started")
            self._arm_refresh()
            outcome = await self._outcome
        except asyncio.CancelledError:
            self._finish(RunOutcome(False, "interrupted by the user"))
            raise
        finally:
            join_timer.cancel()
            await self._end_recovery()
            if self._timer is not None:
                self._timer.cancel()
            self._mark("stopping")
            pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pump
            try:
                await self._stop_everything(listener)
            except Exception:  # whatever went wrong, the agents below must still be stopped
                log.exception("error while stopping the agents")
            finally:
                try:
                    await listener.close()
                    await _agents_exited(launcher, AGENT_EXIT_WAIT)
                finally:
                    await launcher.stop_all()
                    await launcher.kill_leftovers(self.rundir.run_id, None)  # what a killed or hung agent left
                    try:
                        self._close_files()
                    except OSError as exc:
                        self._write_failed(exc)
                    self._mark("stopped")
        if self.storage_error is not None and outcome.ok:
            outcome = RunOutcome(False, str(self.storage_error))
        outcome = RunOutcome(
            outcome.ok, outcome.reason, outcome.host, outcome.block, dict(self.timings), stopped=outcome.stopped
        )
        self.bus.emit(
            "run.finished",
            data={
                "ok": outcome.ok,
                "stopped": outcome.stopped,
                "reason": outcome.reason,
                "timings": {k: round(v, 4) for k, v in self.timings.items()},
            },
        )
        return outcome

    def abort(self, reason: str = "aborted by the user") -> None:
        self._finish(RunOutcome(False, reason))

    def stop(self, reason: str = "stopped by request") -> None:
        """End the run on request: processes stopped, outputs collected, agents stopped; the run's status is
        *stopped* (``app.stopped``, then ``run.finished`` with ``stopped``), not a failure. No-op once the
        run's end is decided."""
        if self._outcome is None or self.finished:
            return
        self.bus.emit("app.stopped", data={"reason": reason})
        self._finish(RunOutcome(False, reason, stopped=True))

    def storage_failed(self, error: StorageError) -> None:
        """The run directory cannot be written (disk full, read-only): say so at once and stop the run."""
        first = self.storage_error is None
        if first:
            self.storage_error = error
            self.bus.emit(RUN_STORAGE_FAILED, data={"path": error.path, "error": str(error)})
        self._abort(str(error), None, None)

    def _write_failed(self, exc: OSError) -> None:
        where = exc.filename or self.rundir.root
        what = str(where) if exc.filename else f"the run directory {where}"
        self.storage_failed(StorageError(f"cannot write {what}: {exc.strerror or exc}", path=str(where)))

    def _finish(self, outcome: RunOutcome) -> None:
        if self._outcome is not None and not self._outcome.done():
            self._outcome.set_result(outcome)

    @property
    def finished(self) -> bool:
        return self._outcome is not None and self._outcome.done()

    def _join_timeout(self) -> None:
        missing = sorted(s.name for s in self.slots.values() if s.state == "starting" and s.name not in self._rejoining)
        if missing:
            self._finish(
                RunOutcome(
                    False,
                    f"{len(missing)} host(s) did not join within {self.settings.join_timeout:g}s: "
                    f"{', '.join(missing[:10])} (see their agent.log under {self.rundir.root / 'hosts'})",
                    host=missing[0],
                )
            )

    async def _stop_everything(self, listener: ControllerListener) -> None:
        """Send ``stop`` to every connected agent and wait (bounded) until each replied or went away.

        The wait is ``stop_grace`` + :data:`STOP_MARGIN`, and at least :data:`STOP_MARGIN` after the last
        upload received (agents upload the outputs of the blocks that did not complete before they reply).
        An agent that comes back meanwhile (a resuming join) is rejected: the run is over, it stops."""
        for each in self.slots.values():
            if each.reconnect_timer is not None:
                each.reconnect_timer.cancel()
                each.reconnect_timer = None
        live = [s for s in self.slots.values() if s.peer is not None and not s.peer.closed and not s.disconnected]
        for each in live:
            self._send(each.name, Message.of("stop", grace=self.settings.stop_grace, reason="the run is over"))
        deadline = time.monotonic() + self.settings.stop_grace + STOP_MARGIN
        waiting = {s.name for s in live}
        try:
            while waiting and time.monotonic() < deadline:
                try:
                    event = await asyncio.wait_for(listener.next_event(), deadline - time.monotonic())
                except TimeoutError:
                    break
                host = event.peer.host or ""
                msg = event.message
                slot = self.slots.get(host)
                current = slot is not None and slot.peer is event.peer
                if msg is not None and msg.type == "join":
                    event.peer.send(Message.of("reject", reason="the run is over"))
                    event.peer.close("rejected")
                elif msg is None or msg.type == "stopped":
                    if current or slot is None:
                        waiting.discard(host)
                elif msg.type in _LATE_KEPT and slot is not None and current and self._accept(slot, msg):
                    try:
                        self._on_message(slot, msg)  # late output and uploads are kept
                    except OSError as exc:
                        self._write_failed(exc)
                    if msg.type in ("upload", "upload.end"):
                        deadline = max(deadline, time.monotonic() + STOP_MARGIN)
        finally:
            self.sessions.close()

    # --- the inbox ------------------------------------------------------------------------------------

    async def _pump(self, listener: ControllerListener) -> None:
        while True:
            event = await listener.next_event()
            try:
                self._on_event(event)
            except OSError as exc:  # a log or an output file could not be written: the run cannot go on
                self._write_failed(exc)
            except Exception as exc:  # a bug or a hostile agent must not hang the run
                log.exception("error handling %r", event.message)
                self._finish(RunOutcome(False, f"internal error handling a message from {event.peer.host}: {exc}"))

    def _on_event(self, event: PeerEvent) -> None:
        peer, msg, reason = event
        host = peer.host
        slot = self.slots.get(host or "")
        if msg is None:
            if slot is not None and slot.peer is peer:
                self._host_lost(slot, reason or "connection closed")
            return
        if msg.type == "join":
            self._on_join(peer, slot)
            return
        if slot is None or slot.peer is not peer:
            return
        if self._accept(slot, msg):
            self._on_message(slot, msg)
            if "q" in msg.fields:
                self.sessions.processed(slot.name)

    def _on_join(self, peer: Peer, slot: HostSlot | None) -> None:
        join = peer.join
        assert join is not None
        if join.get("resume"):
            self._on_resume(peer, slot, join)
            return
        if slot is None or slot.state != "starting":
            peer.send(Message.of("reject", reason=f"no host named {peer.host!r} is expected in this run"))
            peer.close("rejected")
            return
        slot.peer = peer
        slot.state = "joined"
        slot.joined_at = time.time()
        slot.disconnected = False
        if slot.reconnect_timer is not None:
            slot.reconnect_timer.cancel()
            slot.reconnect_timer = None
        slot.agent_pid = int(join["pid"])
        self.sessions.open(slot.name)  # a fresh agent: a fresh conversation
        peer.send(Message.of("welcome", host=slot.name))
        assert self._catalog is not None
        self._send(
            slot.name,
            Message.of(
                "prepare",
                spec=to_dict(self.project),
                host={
                    "name": slot.name,
                    "component": slot.component,
                    "index": slot.index,
                    "attrs": {},
                    "env": self._host_env(slot),
                    "packages": self._catalog.packages_info(),
                },
                settings=self.settings.agent_settings().to_dict(),
            ),
        )
        self.bus.emit("host.joined", host=slot.name, data={"component": slot.component})
        if all(s.state != "starting" for s in self.slots.values()):
            self._mark("all_joined")

    def _mark(self, name: str) -> None:
        self.timings.setdefault(name, time.monotonic() - self._t0)

    def _on_message(self, slot: HostSlot, msg: Message) -> None:
        t = msg.type
        if t in _DROPPED_WHILE_RESETTING and slot.name in self._resetting:
            return  # a report of the execution that the application restart ended
        handler = _HANDLERS.get(t)
        if handler is not None:
            handler(self, slot, msg)
        elif t in ("heartbeat", "pong", "ping"):
            return
        else:
            log.debug("%s: ignored %r", slot.name, t)

    # --- handshake and install ----------------------------------------------------------------------

    def _on_prepared(self, slot: HostSlot, msg: Message) -> None:
        slot.state = "installing"
        self.bus.emit("host.prepared", host=slot.name)
        assert slot.peer is not None
        self._send(slot.name, Message.of("go", stage="install"))

    def _on_installed(self, slot: HostSlot, msg: Message) -> None:
        slot.state = "installed"
        self.bus.emit("host.installed", host=slot.name, data={"software": msg["software"]})
        if self._resetting:
            return  # the application restarts: every installed host executes once all have reset
        if self.project.application.service or self._started:
            self._go_execute([slot])  # a service host, or a restarted or replacement host, starts at once
        else:
            self._maybe_release_start()

    def _maybe_release_start(self) -> None:
        """The start barrier: execution begins once every live host has installed."""
        live = self._live_slots()
        if self._started or not live or not all(s.state == "installed" for s in live):
            return
        self._started = True
        self._mark("all_installed")
        self.bus.emit("barrier.start_released", data={"hosts": len(live)})
        self._go_execute(live)

    def _go_execute(self, slots: list[HostSlot]) -> None:
        for slot in slots:
            slot.state = "running"
            assert slot.peer is not None
            seeds = {path: n for (host, path), n in self._instances.items() if host == slot.name}
            self._send(slot.name, Message.of("go", stage="execute", instances=seeds))

    def _on_install_failed(self, slot: HostSlot, msg: Message) -> None:
        slot.state = "failed"
        reason = f"installing software {msg['software']!r} failed on {slot.name}: {msg['reason']}"
        self.bus.emit(
            "host.install_failed", host=slot.name, data={"software": msg["software"], "reason": msg["reason"]}
        )
        self._finish(RunOutcome(False, reason, host=slot.name))

    def _on_fetch(self, slot: HostSlot, msg: Message) -> None:
        asyncio.get_running_loop().create_task(self._serve_file(slot, msg["req"], msg["key"]))

    async def _serve_file(self, slot: HostSlot, req: int, key: str) -> None:
        peer = slot.peer
        assert peer is not None and self._catalog is not None
        entry = self._catalog.entries.get(key)
        if entry is None or entry.path is None:
            self._send(slot.name, Message.of("file.error", req=req, reason=f"no file known as {key!r}"))
            return
        digest = hashlib.sha256()
        size = 0
        try:
            for chunk in self._catalog.open_chunks(key):
                digest.update(chunk)
                size += len(chunk)
                self._send(slot.name, Message.binary("file.data", chunk, req=req))
                await peer.drain()
        except OSError as exc:
            self._send(slot.name, Message.of("file.error", req=req, reason=str(exc)))
            return
        self._send(slot.name, Message.of("file.end", req=req, size=size, sha256=digest.hexdigest()))
        self.bus.emit("file.sent", host=slot.name, data={"key": key, "size": size})

    # --- execution ------------------------------------------------------------------------------------

    def _on_block(self, slot: HostSlot, msg: Message) -> None:
        path, state = msg["path"], msg["state"]
        slot.blocks[path] = state
        data = {k: msg.get(k) for k in ("reason", "action") if msg.get(k) is not None}
        self.bus.emit(f"block.{state}", host=slot.name, block=path, data=data)
        if state == "failed":
            action = msg.get("action") or "abort"
            reason = f"block {path} failed on {slot.name}: {msg.get('reason', '')}"
            if action == "restart_application":
                self._restart_application(slot, path, reason)
            else:
                self._abort(f"{reason} -> {action}", slot.name, path)

    def _on_finished(self, slot: HostSlot, msg: Message) -> None:
        slot.state = "finished"
        slot.ok = bool(msg["ok"])
        self.bus.emit("host.finished", host=slot.name, data={"ok": slot.ok})
        self._check_complete()

    def _check_complete(self) -> None:
        """The application completes when every live host finished (failed hosts that were dropped do not
        count; the ladder saw to it that each component kept its ``min``)."""
        if self.finished or self._resetting:
            return
        live = self._live_slots()
        if not live or any(s.state != "finished" for s in live):
            return
        self._mark("all_finished")
        bad = [s.name for s in live if not s.ok]
        self._finish(RunOutcome(not bad, f"hosts failed: {', '.join(bad)}" if bad else ""))

    def _on_log(self, slot: HostSlot, msg: Message) -> None:
        self.bus.emit("agent.log", host=slot.name, data={"level": msg["level"], "text": msg["text"]})

    def statistics(self) -> dict[str, Any]:
        states: dict[str, int] = {}
        for slot in self.slots.values():
            states[slot.state] = states.get(slot.state, 0) + 1
        return {"hosts": len(self.slots), "states": states}


async def _agents_exited(launcher: Launcher, within: float) -> None:
    """Give agents that replied ``stopped`` a moment to exit by themselves (closing their link, sweeping
    their orphans) before the launcher signals the stragglers: a SIGTERM must not cut a clean exit short."""
    agents = launcher.alive()
    if agents:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.gather(*(a.wait() for a in agents)), within)


#: reports of an ended execution that an application restart drops until the host answers ``reset.done``
_DROPPED_WHILE_RESETTING = frozenset(
    {"block", "barrier.enter", "barrier.leave", "work.next", "work.done", "finished", "upload", "upload.end"}
)

#: what is still recorded from an agent after the run decided to stop: output, uploads, exits, block states
_LATE_KEPT = frozenset({"output", "upload", "upload.end", "proc.exited", "proc.started", "block", "log"})


def _env_name(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name).upper()


_HANDLERS: dict[str, Callable[[RunEngine, HostSlot, Message], None]] = {
    "prepared": RunEngine._on_prepared,
    "installed": RunEngine._on_installed,
    "install.failed": RunEngine._on_install_failed,
    "fetch": RunEngine._on_fetch,
    "block": RunEngine._on_block,
    "proc.started": RunEngine._on_proc_started,
    "proc.exited": RunEngine._on_proc_exited,
    "output": RunEngine._on_output,
    "upload": RunEngine._on_upload,
    "upload.end": RunEngine._on_upload_end,
    "finished": RunEngine._on_finished,
    "hostmon": RunEngine._on_hostmon,
    "log": RunEngine._on_log,
    "barrier.enter": RunEngine._on_barrier_enter,
    "barrier.leave": RunEngine._on_barrier_leave,
    "work.next": RunEngine._on_work_next,
    "work.done": RunEngine._on_work_done,
    "reset.done": RunEngine._on_reset_done,
}
