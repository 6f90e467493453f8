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
4. **finish**: when every host reported ``finished`` the run succeeded; a failed block whose policy says
   ``abort``, a host lost, an install failure or :meth:`abort` end it as failed. Either way every agent
   is sent ``stop`` (processes stopped, outputs flushed), then the launcher stops the agents.

Every state change is an :class:`~plush.controller.events.Event` on the bus. Decisions (barriers, work,
exit policies) live in pure objects; this module moves messages between them and the fabric.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from plush.barriers.manager import BarrierManager
from plush.barriers.rules import Admitted, BarrierError, BarrierEvent, BarrierRule, PassedLate, Released
from plush.barriers.workqueue import WorkQueue
from plush.config import Settings, state_dir
from plush.controller.events import EventBus
from plush.controller.rundir import RunDir
from plush.fabric.listener import ControllerListener, Peer, PeerEvent
from plush.fabric.tls import ensure_ca, server_context
from plush.files.catalog import FileCatalog
from plush.launch.base import AgentContact
from plush.launch.local import LocalLauncher
from plush.protocol.messages import Message
from plush.protocol.secret import Secret
from plush.spec.model import BarrierBlock, Project, WorkflowBlock, to_dict

__all__ = ["HostSlot", "OutputCallback", "RunEngine", "RunOutcome"]

log = logging.getLogger(__name__)

#: seconds agents get to exit on their own after the run's ``stop`` before the launcher signals them
AGENT_EXIT_WAIT = 2.0

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
        #: seconds since the run started at which each phase ended (``agents_started``, ``all_joined``, ...)
        self.timings: dict[str, float] = {}
        self._t0 = time.monotonic()
        self._declare_barriers_and_queues()

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
        pump = asyncio.create_task(self._pump(listener))
        join_timer = loop.call_later(self.settings.join_timeout, self._join_timeout)
        try:
            await launcher.start_agents(list(self.slots))
            self._mark("agents_started")
            outcome = await self._outcome
        except asyncio.CancelledError:
            self._finish(RunOutcome(False, "interrupted by the user"))
            raise
        finally:
            join_timer.cancel()
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
        missing = sorted(s.name for s in self.slots.values() if s.state == "starting")
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
        """Send ``stop`` to every connected agent and wait (bounded) until each replied or went away."""
        live = [s for s in self.slots.values() if s.peer is not None and not s.peer.closed]
        for slot in live:
            self._send(slot.name, Message.of("stop", grace=self.settings.stop_grace, reason="the run is over"))
        deadline = time.monotonic() + self.settings.stop_grace + 5.0
        waiting = {s.name for s in live}
        while waiting and time.monotonic() < deadline:
            try:
                event = await asyncio.wait_for(listener.next_event(), deadline - time.monotonic())
            except TimeoutError:
                break
            host = event.peer.host or ""
            if event.message is None or event.message.type == "stopped":
                waiting.discard(host)
            elif event.message.type in _LATE_KEPT and host in self.slots and self.slots[host].peer is event.peer:
                self._on_message(self.slots[host], event.message)  # late output and uploads are kept

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
        self._on_message(slot, msg)

    def _on_join(self, peer: Peer, slot: HostSlot | None) -> None:
        if slot is None or slot.state != "starting":
            peer.send(Message.of("reject", reason=f"no host named {peer.host!r} is expected in this run"))
            peer.close("rejected")
            return
        slot.peer = peer
        slot.state = "joined"
        slot.joined_at = time.time()
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
        if self.project.application.service:
            self._go_execute([slot])
        elif all(s.state == "installed" for s in self.slots.values()):
            self._mark("all_installed")
            self.bus.emit("barrier.start_released", data={"hosts": len(self.slots)})
            self._go_execute(list(self.slots.values()))

    def _go_execute(self, slots: list[HostSlot]) -> None:
        for slot in slots:
            slot.state = "running"
            assert slot.peer is not None
            self._send(slot.name, Message.of("go", stage="execute"))

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
            self._finish(
                RunOutcome(
                    False, f"block {path} failed on {slot.name}: {msg.get('reason', '')} -> {action}", slot.name, path
                )
            )

    def _on_proc_started(self, slot: HostSlot, msg: Message) -> None:
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
        if all(s.state == "finished" for s in self.slots.values()):
            self._mark("all_finished")
            bad = [s.name for s in self.slots.values() if not s.ok]
            self._finish(RunOutcome(not bad, f"hosts failed: {', '.join(bad)}" if bad else ""))

    def _on_hostmon(self, slot: HostSlot, msg: Message) -> None:
        self.bus.emit("host.sample", host=slot.name, data=msg["sample"])

    def _on_log(self, slot: HostSlot, msg: Message) -> None:
        self.bus.emit("agent.log", host=slot.name, data={"level": msg["level"], "text": msg["text"]})

    def _host_lost(self, slot: HostSlot, reason: str) -> None:
        """The connection to ``slot``'s agent is gone (closed, broken, or declared dead by liveness)."""
        if slot.state in ("finished", "stopped", "failed") or self.finished:
            slot.state = "stopped" if slot.state == "finished" else slot.state
            return
        self._host_failed(slot, reason)

    def _host_failed(self, slot: HostSlot, reason: str) -> None:
        """``slot``'s host has failed: it is no longer expected anywhere; then the failure ladder decides."""
        slot.state = "failed"
        self.bus.emit("host.failed", host=slot.name, data={"reason": reason})
        self._apply_barrier_events(self.barriers.host_failed(slot.name, time.monotonic()))
        for path, queue in self.queues.items():
            if queue.host_failed(slot.name):
                self._serve_parked(path)
        self._finish(RunOutcome(False, f"host {slot.name} failed: {reason}", host=slot.name))

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
        """Every message to an agent after ``welcome`` goes through here."""
        slot = self.slots.get(host)
        if slot is not None and slot.peer is not None and not slot.peer.closed:
            slot.peer.send(msg)

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
}
