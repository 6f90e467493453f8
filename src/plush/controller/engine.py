"""The run engine: one application run on a set of hosts, from the first agent start to the last stop.

Theory of operation. :class:`RunEngine` owns every part of one run and drives it from one inbox:

1. **connect**: a TLS listener with a fresh per-run token; the launcher starts one agent per host; each
   agent joins (``join`` → ``welcome``) and is sent ``prepare`` (the model, its host record, settings).
2. **install**: every prepared host gets ``go install``; hosts report ``installed``. Unless the
   application is a service, the *start barrier* holds execution until every host has installed.
3. **execute**: ``go execute``; each agent walks its component blocks and reports block states, process
   starts/exits, output (written to the run's log files and handed to ``on_output``), uploads, barrier
   arrivals (fed to the pure :class:`~plush.barriers.manager.BarrierManager`, whose releases go back as
   ``barrier.release``) and workflow requests (a :class:`~plush.barriers.workqueue.WorkQueue` per workflow
   block; a request that finds the queue empty while items are in flight elsewhere is parked until an item
   comes back or the queue is finished, so every item runs exactly once).
4. **failures** (section "failures" below): a failed host (its agent exited, went silent, stayed over the
   component's limits, or :meth:`fail_host`) climbs the :class:`~plush.controller.failures.FailureLadder`:
   restart in place, rematch to a new local host, go on while each component keeps its ``min``, abort. A
   block failed with ``restart_application`` restarts every host's execution from the top (``reset``; at
   most ``max_application_restarts`` times). A service refills its pool every ``reconnect_interval``.
5. **finish**: when every live host reported ``finished`` the run succeeded; a failed block whose policy
   says ``abort``, a ladder abort, an install failure or :meth:`abort` end it as failed. Either way every agent
   is sent ``stop`` (processes stopped, outputs flushed), then the launcher stops the agents.

Every state change is an :class:`~plush.controller.events.Event` on the bus. Decisions (barriers, work,
exit policies) live in pure objects; this module moves messages between them and the fabric.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import signal
import socket
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from plush.barriers.manager import BarrierManager
from plush.barriers.rules import Admitted, BarrierError, BarrierEvent, BarrierRule, PassedLate, Released
from plush.barriers.workqueue import WorkQueue
from plush.config import Settings, state_dir
from plush.controller.events import EventBus
from plush.controller.failures import FailureLadder, LadderStep
from plush.controller.recovery import HostLimits, kill_host_processes, local_spares
from plush.controller.rundir import RunDir
from plush.controller.sessions import AGENT_POLL, SessionTable, agent_process_state, numbered
from plush.errors import LaunchError, PlushError, ProtocolError
from plush.fabric.listener import ControllerListener, Peer, PeerEvent
from plush.fabric.tls import ensure_ca, server_context
from plush.files.catalog import FileCatalog
from plush.launch.base import AgentContact
from plush.launch.local import LocalAgent, LocalLauncher
from plush.protocol.messages import Message
from plush.protocol.secret import Secret
from plush.spec.model import BarrierBlock, Project, WorkflowBlock, to_dict

__all__ = ["HostSlot", "OutputCallback", "RunEngine", "RunOutcome"]

log = logging.getLogger(__name__)

#: seconds agents get to exit on their own after the run's ``stop`` before the launcher signals them
AGENT_EXIT_WAIT = 2.0
#: seconds to wait for a failed host's SIGKILLed agent to be gone before it is restarted
KILL_WAIT = 5.0

#: ``on_output(host, process_path, instance, stream, data)``
OutputCallback = Callable[[str, str, int, str, bytes], None]


@dataclass
class HostSlot:
    """The controller's view of one host of the run."""

    name: str
    component: str
    index: int
    state: str = "starting"  # starting joined prepared installing installed running finished failed stopped
    peer: Peer | None = None
    ok: bool | None = None
    blocks: dict[str, str] = field(default_factory=dict)
    joined_at: float | None = None
    #: the link broke while the agent still runs: the engine waits ``reconnect_window`` for it to resume
    disconnected: bool = False
    disconnected_at: float | None = None
    reconnect_timer: asyncio.TimerHandle | None = None
    #: the agent's process id and machine, from its join (to tell a broken link from a dead agent)
    agent_pid: int | None = None
    agent_hostname: str | None = None


@dataclass(frozen=True)
class RunOutcome:
    """How a run ended: ``ok``; otherwise ``reason`` names the root cause, with its host and block."""

    ok: bool
    reason: str = ""
    host: str | None = None
    block: str | None = None
    timings: dict[str, float] = field(default_factory=dict)


class _Upload:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.file = path.open("wb")
        self.digest = hashlib.sha256()
        self.size = 0


class RunEngine:
    """Runs ``project`` on local sandbox hosts (``hosts``: component name → host count)."""

    def __init__(
        self,
        project: Project,
        *,
        settings: Settings,
        rundir: RunDir,
        bus: EventBus,
        hosts: dict[str, int],
        on_output: OutputCallback | None = None,
    ) -> None:
        self.project = project
        self.settings = settings
        self.rundir = rundir
        self.bus = bus
        self.on_output = on_output
        self.slots: dict[str, HostSlot] = {}
        k = 0
        for comp in project.components:
            for i in range(hosts.get(comp.name, comp.num_hosts.min)):
                k += 1
                self.slots[f"local-{k}"] = HostSlot(f"local-{k}", comp.name, i)
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
        self._launcher: LocalLauncher | None = None
        self.ladder = FailureLadder(
            {s.name: s.component for s in self.slots.values()},
            {c.name: c.num_hosts.min for c in project.components},
            host_restarts=settings.host_restarts,
        )
        self._next_host = k  # local-<n> names of new hosts go on from here
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
            "PLUSH_ADDR": "127.0.0.1",
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
        launcher = LocalLauncher(
            self.rundir.root,
            AgentContact(host=self.settings.listen_host, port=listener.port, ca_pem=ca.cert_pem, token=token),
            stop_grace=self.settings.stop_grace,
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
                    kill_host_processes(self.rundir.run_id, None)  # what a killed or hung agent left behind
                    self._close_files()
                    self._mark("stopped")
        outcome = RunOutcome(outcome.ok, outcome.reason, outcome.host, outcome.block, dict(self.timings))
        self.bus.emit(
            "run.finished",
            data={
                "ok": outcome.ok,
                "reason": outcome.reason,
                "timings": {k: round(v, 4) for k, v in self.timings.items()},
            },
        )
        return outcome

    def abort(self, reason: str = "aborted by the user") -> None:
        self._finish(RunOutcome(False, reason))

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

        An agent that comes back meanwhile (a resuming join) is rejected: the run is over, it stops."""
        for each in self.slots.values():
            if each.reconnect_timer is not None:
                each.reconnect_timer.cancel()
                each.reconnect_timer = None
        live = [s for s in self.slots.values() if s.peer is not None and not s.peer.closed and not s.disconnected]
        for each in live:
            self._send(each.name, Message.of("stop", grace=self.settings.stop_grace, reason="the run is over"))
        deadline = time.monotonic() + self.settings.stop_grace + 5.0
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
                    self._on_message(slot, msg)  # late output and uploads are kept
        finally:
            self.sessions.close()

    # --- the inbox ------------------------------------------------------------------------------------

    async def _pump(self, listener: ControllerListener) -> None:
        while True:
            event = await listener.next_event()
            try:
                self._on_event(event)
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
        slot.agent_pid, slot.agent_hostname = int(join["pid"]), str(join["hostname"])
        self.sessions.open(slot.name)  # a fresh agent: a fresh conversation
        peer.send(Message.of("welcome", host=slot.name))
        assert self._catalog is not None
        s = self.settings
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
                settings={
                    "heartbeat_interval": s.heartbeat_interval,
                    "stop_grace": s.stop_grace,
                    "hostmon_interval": s.hostmon_interval,
                    "restart_backoff_initial": s.restart_backoff_initial,
                    "restart_backoff_max": s.restart_backoff_max,
                    "silence_timeout": s.silence_timeout,
                    "ping_timeout": s.ping_timeout,
                    "agent_grace": s.agent_grace,
                    "output_buffer_bytes": s.output_buffer_bytes,
                },
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

    def _on_proc_started(self, slot: HostSlot, msg: Message) -> None:
        key = (slot.name, msg["path"])
        self._instances[key] = max(self._instances.get(key, 0), int(msg["instance"]))
        self.bus.emit(
            "process.started", host=slot.name, block=msg["path"], instance=msg["instance"], data={"pid": msg["pid"]}
        )

    def _on_proc_exited(self, slot: HostSlot, msg: Message) -> None:
        path, instance = msg["path"], msg["instance"]
        for stream in ("stdout", "stderr"):
            fh = self._logs.pop((slot.name, path, instance, stream), None)
            if fh is not None:
                fh.close()
        data = {k: msg.get(k) for k in ("code", "signal", "action", "rule") if msg.get(k) is not None}
        if msg.get("action") not in (None, "success", "stopped"):
            tail = _tail(self.rundir.log(slot.name, path, instance, "stderr"))
            if tail:
                data["stderr_tail"] = tail
        self.bus.emit("process.exited", host=slot.name, block=path, instance=instance, data=data)

    def _on_output(self, slot: HostSlot, msg: Message) -> None:
        path, instance, stream = msg["path"], msg["instance"], msg["stream"]
        key = (slot.name, path, instance, stream)
        fh = self._logs.get(key)
        if fh is None:
            target = self.rundir.log(slot.name, path, instance, stream)
            target.parent.mkdir(parents=True, exist_ok=True)
            fh = self._logs[key] = target.open("ab")
        data = msg.payload or b""
        fh.write(data)
        if self.on_output is not None:
            self.on_output(slot.name, path, instance, stream, data)

    def _on_upload(self, slot: HostSlot, msg: Message) -> None:
        key = (slot.name, msg["path"], msg["name"])
        up = self._uploads.get(key)
        if up is None:
            try:
                up = self._uploads[key] = _Upload(self.rundir.output(slot.name, msg["name"]))
            except ValueError as exc:
                log.warning("%s: refused upload: %s", slot.name, exc)
                return
        data = msg.payload or b""
        up.file.write(data)
        up.digest.update(data)
        up.size += len(data)

    def _on_upload_end(self, slot: HostSlot, msg: Message) -> None:
        up = self._uploads.pop((slot.name, msg["path"], msg["name"]), None)
        if up is None:
            return
        up.file.close()
        ok = up.size == msg["size"] and up.digest.hexdigest() == msg["sha256"]
        self.bus.emit(
            "output.collected", host=slot.name, block=msg["path"], data={"name": msg["name"], "size": up.size, "ok": ok}
        )

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

    def _on_hostmon(self, slot: HostSlot, msg: Message) -> None:
        self.bus.emit("host.sample", host=slot.name, data=msg["sample"])
        reasons = self._limits.observe(slot.name, slot.component, msg["sample"], time.monotonic())
        if reasons and not self.finished and slot.state != "failed":
            self.bus.emit("host.over_limits", host=slot.name, data={"reasons": reasons})
            self._host_failed(slot, "over its limits: " + "; ".join(reasons), restart=False)

    def _on_log(self, slot: HostSlot, msg: Message) -> None:
        self.bus.emit("agent.log", host=slot.name, data={"level": msg["level"], "text": msg["text"]})

    def _host_lost(self, slot: HostSlot, reason: str) -> None:
        """The connection to ``slot``'s agent is gone (closed, broken, or declared dead by liveness).

        If the agent still runs (and is not stopped), only the link broke: the host is *disconnected* and
        gets ``reconnect_window`` seconds to resume (see :meth:`_on_resume`); otherwise it has failed."""
        if slot.state in ("finished", "stopped", "failed") or self.finished:
            slot.state = "stopped" if slot.state == "finished" else slot.state
            return
        gone = self._agent_gone(slot)
        if gone is None and self._resumable(slot):
            self._disconnected(slot, reason)
            return
        if gone is not None and gone.startswith("exited") and self._launched(slot):
            # the launcher's watcher reports this exit itself (_watch_agent): let it, so that one death is
            # one failure; a fallback fails the host if nobody did within a moment
            loop = asyncio.get_running_loop()
            loop.call_later(AGENT_POLL, self._lost_fallback, slot.name, slot.agent_pid, reason, gone)
            return
        self._host_failed(slot, reason if gone is None else f"{reason}; its agent {gone}")

    # --- failures: the host failure ladder, application restarts, the service pool ---------------------
    #
    # A host fails when its agent process exits (watched through the launcher), when liveness declares its
    # connection dead (``_host_lost``), when its samples stay over the component's limits, or by hand
    # (``fail_host``). Its agent's process group and every process of the host (found by PLUSH_RUN_ID and
    # PLUSH_HOST in /proc) are killed first, so a hung agent woken later cannot touch the run; barriers stop
    # expecting it and its work items go back to the queue. Then the ladder decides: restart the agent in
    # place, rematch to a new local host ``local-<n>`` (see recovery.local_spares), go on without it while
    # its component keeps its min, or abort. A restarted or replacement host rejoins, installs (cached) and
    # executes its component blocks from the start (instance numbers go on), passing released barriers late.

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

    def _new_host(self, component: str) -> HostSlot:
        """A new local host for ``component`` (a rematch or a service refill), expected at its barriers."""
        self._next_host += 1
        name = f"local-{self._next_host}"
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
        agent = self._launcher.agents.get(name) if self._launcher is not None else None
        if agent is not None:
            agent.signal_group(signal.SIGKILL)
        self._spawn_recovery(self._sweep(name))

    async def _kill_host(self, name: str) -> None:
        """:meth:`_kill_host_now`, then wait (bounded) until the agent is gone and sweep once more."""
        agent = self._launcher.agents.get(name) if self._launcher is not None else None
        self._kill_host_now(name)
        if agent is not None and agent.returncode is None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(agent.wait()), KILL_WAIT)
        await self._sweep(name)  # what a dying agent may still have started

    async def _sweep(self, host: str) -> None:
        """SIGKILL every process of ``host`` found in /proc (by PLUSH_RUN_ID and PLUSH_HOST). Hosts failing
        together share one pass over /proc, in a thread (the event loop goes on meanwhile)."""
        self._sweep_hosts.add(host)
        if self._sweep_pass is None:
            self._sweep_pass = asyncio.get_running_loop().create_task(self._sweep_pass_run())
        await asyncio.shield(self._sweep_pass)

    async def _sweep_pass_run(self) -> None:
        await asyncio.sleep(0)  # let the other failures of this moment join the pass
        hosts, self._sweep_hosts = self._sweep_hosts, set()
        self._sweep_pass = None
        await asyncio.to_thread(kill_host_processes, self.rundir.run_id, hosts)

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

    def _rejoin_timeout(self, slot: HostSlot, agent: LocalAgent) -> None:
        if slot.state == "starting" and self._current_agent(slot.name) is agent:
            self._host_failed(slot, f"its new agent did not join within {self.settings.join_timeout:g}s")

    def _current_agent(self, name: str) -> LocalAgent | None:
        return self._launcher.agents.get(name) if self._launcher is not None else None

    def agent_pid(self, host: str) -> int | None:
        """The pid of ``host``'s current agent process (None before it started or after it exited)."""
        agent = self._current_agent(host)
        return agent.pid if agent is not None and agent.returncode is None else None

    def _watch_agents(self, agents: Sequence[LocalAgent]) -> None:
        for agent in agents:
            self._spawn_recovery(self._watch_agent(agent))

    async def _watch_agent(self, agent: LocalAgent) -> None:
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
        """Clear failed marks and refill each component up to its max: failed hosts first (their agents are
        started again), then new local hosts. Emits ``pool.refreshed``."""
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
                added.append(new.name)
                self._spawn_recovery(self._start_agent(new))
        live = self._live_slots()
        self.bus.emit(
            "pool.refreshed",
            data={"revived": revived, "added": added, "live": len(live)},
        )
        self._arm_refresh()

    def _room(self, component: str, *, new: bool) -> int:
        """Hosts ``component`` may still get: up to its max live hosts; a ``new`` one also only while the run
        has started fewer than ``max_local_hosts`` local hosts in all."""
        comp = next(c for c in self.project.components if c.name == component)
        in_comp = sum(1 for s in self._live_slots() if s.component == component)
        room = comp.num_hosts.max - in_comp
        return max(0, min(room, self.settings.max_local_hosts - len(self.slots)) if new else room)

    @staticmethod
    def _revived_step(slot: HostSlot) -> LadderStep:
        return LadderStep("restart", slot.name, slot.component, f"{slot.name}: failed mark cleared by the refresh")

    # --- barriers -------------------------------------------------------------------------------------

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

    def _send(self, host: str, msg: Message) -> None:
        """Every message to an agent after ``welcome`` goes through here.

        Run messages (and ``go``) are numbered and kept until the agent acknowledges them, so that they are
        replayed if the agent resumes after a broken link; while the host is disconnected they are only
        kept. Other messages (``prepare``, ``stop``) go to a live link or nowhere."""
        slot = self.slots.get(host)
        if slot is None:
            return
        peer = slot.peer
        up = peer is not None and not peer.closed and not slot.disconnected
        session = self.sessions.get(host)
        if session is not None and numbered(msg.type):
            frame = session.number(msg)
            if up:
                assert peer is not None
                with contextlib.suppress(ConnectionResetError):  # kept: replayed when the agent resumes
                    peer.send_bytes(frame, msg)
        elif up:
            assert peer is not None
            peer.send(msg)

    # --- reconnection ---------------------------------------------------------------------------------

    def drop_link(self, host: str, reason: str = "link dropped by drop_link()") -> bool:
        """Test and operations hook: abort ``host``'s connection at once, as a broken network would (no
        close handshake). The agent keeps running and is expected to resume within ``reconnect_window``.
        False when the host has no open link."""
        slot = self.slots.get(host)
        if slot is None or slot.peer is None or slot.peer.closed:
            return False
        slot.peer.abort(reason)
        return True

    def _send_ack(self, host: str, q: int) -> None:
        slot = self.slots.get(host)
        peer = slot.peer if slot is not None else None
        if slot is not None and peer is not None and not peer.closed and not slot.disconnected:
            with contextlib.suppress(ConnectionResetError):
                peer.send(Message.of("ack", q=q))

    def _accept(self, slot: HostSlot, msg: Message) -> bool:
        """Reliable delivery of a message from ``slot``'s agent: an ``ack`` releases kept messages, a
        numbered message already processed (a replay) is dropped. True when the engine should process it."""
        session = self.sessions.get(slot.name)
        if msg.type == "ack":
            if session is not None:
                session.acked(int(msg["q"]))
            return False
        return session is None or session.accept(msg)

    def _resumable(self, slot: HostSlot) -> bool:
        return (
            self.settings.reconnect_window > 0
            and self.sessions.get(slot.name) is not None
            and slot.state not in ("starting", "joined", "finished", "stopped", "failed")
        )

    def _agent_gone(self, slot: HostSlot) -> str | None:
        """Why ``slot``'s agent can no longer resume ("exited", "is stopped"), or None when it runs or this
        machine cannot tell (an agent on another machine gets the window)."""
        launcher = self._launcher
        agent = launcher.agents.get(slot.name) if launcher is not None else None
        if agent is not None and agent.pid == slot.agent_pid:
            if agent.returncode is not None:
                return f"exited ({agent.returncode})"
            return agent_process_state(agent.pid)
        if slot.agent_pid is not None and slot.agent_hostname == socket.gethostname():
            return agent_process_state(slot.agent_pid)
        return None

    def _launched(self, slot: HostSlot) -> bool:
        """Whether ``slot``'s agent is the one this run's launcher started (and watches)."""
        launcher = self._launcher
        agent = launcher.agents.get(slot.name) if launcher is not None else None
        return agent is not None and agent.pid == slot.agent_pid

    def _lost_fallback(self, name: str, pid: int | None, reason: str, gone: str) -> None:
        slot = self.slots.get(name)
        if slot is None or self.finished or slot.agent_pid != pid:
            return
        if slot.state not in ("starting", "finished", "stopped", "failed"):  # nobody failed it meanwhile
            self._host_failed(slot, f"{reason}; its agent {gone}")

    def _disconnected(self, slot: HostSlot, reason: str) -> None:
        slot.disconnected = True
        slot.disconnected_at = now = time.monotonic()
        window = self.settings.reconnect_window
        self.bus.emit("host.disconnected", host=slot.name, data={"reason": reason, "window": window})
        self._watch_reconnect(slot.name, now + window, reason)

    def _watch_reconnect(self, name: str, deadline: float, reason: str) -> None:
        """While ``name`` is disconnected: fail it once its agent is gone or the window is over."""
        slot = self.slots.get(name)
        if slot is None:
            return
        slot.reconnect_timer = None
        if not slot.disconnected or self.finished:
            return
        if not self._resumable(slot):  # failed, restarted or replaced meanwhile: no longer ours to decide
            slot.disconnected = False
            return
        gone = self._agent_gone(slot)
        now = time.monotonic()
        if gone is not None or now >= deadline:
            slot.disconnected = False
            window = self.settings.reconnect_window
            why = f"its agent {gone}" if gone else f"its agent did not reconnect within {window:g}s"
            self._host_failed(slot, f"{reason}; {why}")
            return
        slot.reconnect_timer = asyncio.get_running_loop().call_later(
            min(AGENT_POLL, deadline - now), self._watch_reconnect, name, deadline, reason
        )

    def _on_resume(self, peer: Peer, slot: HostSlot | None, join: Message) -> None:
        """A ``join`` with ``resume``: the agent of ``slot`` comes back after its link broke. Re-attach it,
        tell it what we processed (``resume``) and replay what it has not, before anything new."""
        session = self.sessions.get(slot.name) if slot is not None else None
        if slot is None or session is None or self.finished or not self._resumable(slot):
            state = slot.state if slot is not None else "unknown"
            why = "the run is over" if self.finished else f"host {peer.host!r} cannot resume (it is {state})"
            peer.send(Message.of("reject", reason=why))
            peer.close("rejected")
            return
        old = slot.peer
        if old is not None and old is not peer and not old.closed:
            old.abort("replaced by the agent's resumed connection")  # its end is ignored: not current
        if slot.reconnect_timer is not None:
            slot.reconnect_timer.cancel()
            slot.reconnect_timer = None
        down_for = time.monotonic() - slot.disconnected_at if slot.disconnected and slot.disconnected_at else 0.0
        slot.peer = peer
        slot.disconnected = False
        slot.agent_pid, slot.agent_hostname = int(join["pid"]), str(join["hostname"])
        peer.send(Message.of("welcome", host=slot.name))
        peer.send(Message.of("resume", received=session.received))
        try:
            replay = list(session.replay(int(join.get("received", 0))))
        except ProtocolError as exc:
            peer.abort(f"bad resume: {exc}")
            self._host_failed(slot, f"its agent resumed with a bad sequence number: {exc}")
            return
        for mtype, frame in replay:
            peer.send_bytes(frame, Message(mtype))
        self.bus.emit(
            "host.reconnected",
            host=slot.name,
            data={"replayed": len(replay), "received": session.received, "down_for": round(down_for, 3)},
        )

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

    # --- files ----------------------------------------------------------------------------------------

    def _close_files(self) -> None:
        for fh in self._logs.values():
            fh.close()
        self._logs.clear()
        for up in self._uploads.values():
            up.file.close()
        self._uploads.clear()

    def statistics(self) -> dict[str, Any]:
        states: dict[str, int] = {}
        for slot in self.slots.values():
            states[slot.state] = states.get(slot.state, 0) + 1
        return {"hosts": len(self.slots), "states": states}


async def _agents_exited(launcher: LocalLauncher, within: float) -> None:
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


def _tail(path: Path, lines: int = 10, limit: int = 4096) -> str:
    """The last ``lines`` lines (at most ``limit`` bytes) of a log file; empty when there is none."""
    try:
        with path.open("rb") as fh:
            fh.seek(0, 2)
            size = fh.tell()
            fh.seek(max(0, size - limit))
            data = fh.read()
    except OSError:
        return ""
    return "\n".join(data.decode("utf-8", "replace").splitlines()[-lines:])


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
