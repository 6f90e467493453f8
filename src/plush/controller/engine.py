"""The run engine: one application run on a set of hosts, over a mesh of their agents.

Theory of operation. :class:`RunEngine` is the thin asyncio adapter between the mesh and the parts of a
run, each of which owns its state:

- the :class:`~plush.controller.mesh.Mesh` (the controller's, kept across runs, or one of the run's own):
  the launcher, the listener, each host's link (reliable delivery, resumption:
  :mod:`~plush.controller.links`), agent exits, and each host's lifecycle -- the only host state
  (:mod:`~plush.controller.hoststates`): the run feeds it and carries out its run commands
  (:meth:`RunEngine.carry_out`);
- the :class:`~plush.controller.install.Installer`: ``prepare`` (shared parts encoded once per run),
  ``go install``, the start barrier, the files served;
- the :class:`~plush.controller.coordination.Coordinator`: barriers and workflow queues;
- the :class:`~plush.controller.healing.Healer`: the failure ladder, restarts, rematches, limits,
  application restarts, the service pool refresh;
- the :class:`~plush.controller.outputs.OutputSink`: process reports, log files, uploads.

The engine keeps the run's hosts (:class:`~plush.controller.runstate.RunHosts`, with a count per state),
routes each agent's messages to the part that handles them, and keeps the run's course:

1. **connect**: the hosts whose agent is connected (idle in the mesh) are prepared at once; for the others
   the mesh starts an agent, which joins (``join`` -> ``welcome``) within ``join_timeout`` of its own start
   and is then prepared (the model, its host record, settings).
2. **install**: ``go install``; unless the application is a service, the start barrier holds execution
   until every live host has installed.
3. **execute**: ``go execute``; each agent walks its component blocks and reports block states, process
   starts/exits, output and uploads, barrier arrivals and workflow requests.
4. **failures**: the healer.
5. **finish**: when every live host reported ``finished`` the run succeeded; a failed block whose policy
   says ``abort``, a ladder abort, an install failure or :meth:`RunEngine.abort` end it as failed;
   :meth:`RunEngine.stop` ends it as *stopped* on request (``app.stopped``; a service's normal end). Then
   every agent ends the application (processes stopped, the outputs of blocks that did not complete
   uploaded): with ``end`` when the agents stay connected (``keep``: the controller's mesh), else with
   ``stop`` before the run's own mesh closes and the launcher stops the agents.

Every state change is an :class:`~plush.controller.events.Event` on the bus. Every task of the run belongs
to its :class:`~plush.controller.supervisor.Supervisor` (recoveries, files served) or the mesh's (agent
watches, sweeps): none outlives :meth:`RunEngine.run`. Completion and the start barrier are O(1) per
message (counts per state).

Size: about 430 lines: the adapter's one table of handlers, the run's course and the run's side of the
lifecycle commands read together; the parts hold the logic.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from plush.config import Settings
from plush.controller.catalogue import (
    AGENT_LOG,
    APP_ABORTED,
    APP_STOPPED,
    HOST_FINISHED,
    RUN_FINISHED,
    RUN_STARTED,
    block_event,
)
from plush.controller.coordination import Coordinator
from plush.controller.events import RUN_STORAGE_FAILED, EventBus
from plush.controller.healing import Healer
from plush.controller.install import Installer
from plush.controller.lifecycle import MATCHED
from plush.controller.lifecycle_commands import (
    AbortRun,
    AskHealer,
    Command,
    ReportFailed,
    SendGo,
    SendPrepare,
    SendReset,
)
from plush.controller.mesh import LAUNCH_FAILED, Mesh
from plush.controller.outputs import OutputSink
from plush.controller.rundir import RunDir
from plush.controller.runstate import HostSlot, OutputCallback, RunHosts, RunOutcome
from plush.controller.supervisor import Supervisor
from plush.errors import StorageError
from plush.launch.base import Launcher
from plush.protocol.messages import Message
from plush.resources.host import Host
from plush.spec.model import Project

__all__ = ["HostSlot", "OutputCallback", "RunEngine", "RunOutcome"]

log = logging.getLogger(__name__)


class RunEngine:
    """Runs ``project`` on the hosts ``hosts`` assigns to its components, over ``mesh`` (the agents of those
    already connected are prepared at once, the others started).

    ``new_host(component)`` is a fresh host for a component (a rematch, a service refill) or None when
    there is none. ``keep``: the agents stay connected after the run (``end``; the mesh belongs to the
    controller); otherwise the run closes the mesh at its end (``stop``: the agents exit)."""

    def __init__(
        self,
        project: Project,
        *,
        settings: Settings,
        rundir: RunDir,
        bus: EventBus,
        hosts: Mapping[str, Sequence[Host]],
        new_host: Callable[[str], Host | None],
        mesh: Mesh,
        keep: bool = False,
        on_output: OutputCallback | None = None,
        heal_start: bool = False,
    ) -> None:
        """``heal_start``: a host of the run's start whose agent could not be started goes to the failure
        ladder (its host's fault: SSH hosts) instead of ending the run (this machine's fault: the sandbox)."""
        self.project = project
        self.heal_start = heal_start
        self.settings = settings
        self.rundir = rundir
        self.bus = bus
        self.hosts = RunHosts()
        self._assigned = [(h, comp.name) for comp in project.components for h in hosts.get(comp.name, ())]
        for host, component in self._assigned:
            self.hosts.add(host.name, component)
        self.keep = keep
        self._outcome: asyncio.Future[RunOutcome] | None = None
        #: seconds since the run started at which each phase ended (``agents_started``, ``all_joined``, ...)
        self.timings: dict[str, float] = {}
        self._t0 = time.monotonic()
        #: the first failed write to the run directory (the run stopped because of it)
        self.storage_error: StorageError | None = None
        # --- the parts ---
        self.tasks = Supervisor("run", self.task_failed)
        self.mesh = mesh
        self.outputs = OutputSink(rundir, bus, on_output, on_storage_failed=self._write_failed)
        self.installer = Installer(
            self, self.mesh, self.tasks, resetting=lambda: bool(self.healer.resetting), instances=self.outputs.instances
        )
        self.coordinator = Coordinator(self)
        self.healer = Healer(
            self,
            self.coordinator,
            self.mesh,
            self.tasks,
            pool_size={c.name: len(hosts.get(c.name, ())) for c in project.components},
            new_host=new_host,
        )
        self._handlers: dict[str, Callable[[HostSlot, Message], None]] = {
            "prepared": self.installer.on_prepared,
            "installed": self.installer.on_installed,
            "install.failed": self.installer.on_install_failed,
            "fetch": self.installer.on_fetch,
            "block": self._on_block,
            "proc.started": self.outputs.on_proc_started,
            "proc.exited": self.outputs.on_proc_exited,
            "output": self.outputs.on_output_message,
            "upload": self.outputs.on_upload,
            "upload.end": self.outputs.on_upload_end,
            "finished": self._on_finished,
            "hostmon": self.healer.on_hostmon,
            "log": self._on_log,
            "barrier.enter": self.coordinator.on_barrier_enter,
            "barrier.leave": self.coordinator.on_barrier_leave,
            "work.next": self.coordinator.on_work_next,
            "work.done": self.coordinator.on_work_done,
            "reset.done": self.healer.on_reset_done,
        }

    # --- what tests and the controller's face reach ------------------------------------------------------

    @property
    def slots(self) -> RunHosts:
        return self.hosts

    @property
    def _launcher(self) -> Launcher | None:
        return self.mesh.launcher

    @property
    def _listener(self) -> Any:
        return self.mesh.listener

    @property
    def app_restarts(self) -> int:
        return self.healer.app_restarts

    def agent_pid(self, host: str) -> int | None:
        """The pid of ``host``'s current agent process (None before it started or after it exited)."""
        return self.mesh.agent_pid(host)

    def drop_link(self, host: str, reason: str = "link dropped by drop_link()") -> bool:
        """Test and operations hook: abort ``host``'s connection as a broken network would (see
        :meth:`~plush.controller.links.Links.drop_link`)."""
        return self.mesh.links.drop_link(host, reason)

    def fail_host(self, host: str, reason: str = "marked failed by the user") -> None:
        """Mark ``host`` failed by hand (the ``fail`` command): it is replaced or dropped, as the ladder says."""
        self.healer.fail_host(host, reason)

    def release_barrier(self, name: str) -> None:
        """Force the release of barrier ``name`` (the user's ``release`` command)."""
        self.coordinator.release_barrier(name)

    # --- the run --------------------------------------------------------------------------------------

    async def run(self) -> RunOutcome:
        loop = asyncio.get_running_loop()
        self._outcome = loop.create_future()
        self._t0 = time.monotonic()
        self.bus.emit(RUN_STARTED, data={"run": self.rundir.run_id, "hosts": len(self.hosts)})
        await self.installer.start()
        mesh = self.mesh
        mesh.attach(self)
        try:
            if not mesh.started:
                await mesh.start()
            for host, _ in self._assigned:
                self.hosts.bind(self.hosts[host.name], mesh.add(host).life)
            # a connected agent is prepared at once (no agent starts); the others are matched, then launched
            mesh.states.handle_many((h.name, "matched", {"component": c}) for h, c in self._assigned)
            await mesh.start_agents([h.name for h, _ in self._assigned if mesh.states.state(h.name) == MATCHED])
            self.mark("agents_started")
            self.healer.arm_refresh()
            outcome = await self._outcome
        except asyncio.CancelledError:
            self.finish(RunOutcome(False, "interrupted by the user"))
            raise
        finally:
            self.healer.close()
            await self.tasks.close()
            self.coordinator.close()
            self.mark("stopping")
            try:
                if self.keep:
                    await mesh.end_run(self.hosts.names())
                else:
                    await mesh.close()
            finally:
                await self.outputs.close()  # every log and output written and closed (off the loop)
                self.mark("stopped")
        if self.storage_error is not None and outcome.ok:
            outcome = RunOutcome(False, str(self.storage_error))
        outcome = RunOutcome(
            outcome.ok, outcome.reason, outcome.host, outcome.block, dict(self.timings), stopped=outcome.stopped
        )
        self.bus.emit(
            RUN_FINISHED,
            data={
                "ok": outcome.ok,
                "stopped": outcome.stopped,
                "reason": outcome.reason,
                "timings": {k: round(v, 4) for k, v in self.timings.items()},
            },
        )
        return outcome

    def abort(self, reason: str = "aborted by the user") -> None:
        """The user's abort: the run ends as failed, ``reason`` its root cause."""
        self.finish(RunOutcome(False, reason))

    def abort_run(self, reason: str, host: str | None, block: str | None) -> None:
        """A part of the run decided to end it as failed: ``app.aborted``, then the end."""
        if self.finished:
            return
        self.bus.emit(APP_ABORTED, host=host, block=block, data={"reason": reason, "host": host, "block": block})
        self.finish(RunOutcome(False, reason, host, block))

    def stop(self, reason: str = "stopped by request") -> None:
        """End the run on request: processes stopped, outputs collected, agents stopped; the run's status is
        *stopped* (``app.stopped``, then ``run.finished`` with ``stopped``), not a failure. No-op once the
        run's end is decided."""
        if self._outcome is None or self.finished:
            return
        self.bus.emit(APP_STOPPED, data={"reason": reason})
        self.finish(RunOutcome(False, reason, stopped=True))

    def storage_failed(self, error: StorageError) -> None:
        """The run directory cannot be written (disk full, read-only): say so at once and stop the run."""
        first = self.storage_error is None
        if first:
            self.storage_error = error
            self.bus.emit(RUN_STORAGE_FAILED, data={"path": error.path, "error": str(error)})
        self.abort_run(str(error), None, None)

    def _write_failed(self, exc: OSError) -> None:
        where = exc.filename or self.rundir.root
        what = str(where) if exc.filename else f"the run directory {where}"
        self.storage_failed(StorageError(f"cannot write {what}: {exc.strerror or exc}", path=str(where)))

    def task_failed(self, exc: BaseException) -> None:
        log.error("failure recovery went wrong", exc_info=exc)
        self.abort_run(f"internal error while recovering from a failure: {exc}", None, None)

    def finish(self, outcome: RunOutcome) -> None:
        if self._outcome is not None and not self._outcome.done():
            self._outcome.set_result(outcome)

    @property
    def outcome(self) -> RunOutcome | None:
        """How the run ended, once that is decided."""
        if self._outcome is None or not self._outcome.done():
            return None
        return self._outcome.result()

    @property
    def finished(self) -> bool:
        return self._outcome is not None and self._outcome.done()

    def mark(self, name: str) -> None:
        self.timings.setdefault(name, time.monotonic() - self._t0)

    def send(self, host: str, msg: Message) -> None:
        self.mesh.links.send(host, msg)

    # --- what the mesh tells (MeshClient) ------------------------------------------------------------------

    @property
    def run_id(self) -> str:
        return self.rundir.run_id

    def has(self, name: str) -> bool:
        return name in self.hosts

    def host_moved(self, name: str, old: str, new: str) -> None:
        self.hosts.moved(name)

    def carry_out(self, commands: Sequence[Command]) -> None:
        """The run's commands of a lifecycle batch. Nothing is carried out once the run's end is decided.
        Hosts that fail before their first join (not a restart's or a replacement's) end the run, but with
        ``heal_start`` a host whose agent could not be started (:data:`LAUNCH_FAILED`) goes to the ladder
        without a restart in place (rematch, or on without it while its component keeps its min)."""
        if self.finished:
            return
        first: list[AskHealer] = []
        for cmd in commands:
            if isinstance(cmd, SendPrepare):
                self.installer.prepare(cmd.host)
            elif isinstance(cmd, SendGo):
                self.installer.send_go(cmd.host, cmd.stage)
            elif isinstance(cmd, SendReset):
                self.send(cmd.host, Message.of("reset", reason=cmd.reason))
            elif isinstance(cmd, ReportFailed):
                self.healer.report_failed(cmd.host, cmd.reason)
            elif isinstance(cmd, AskHealer):
                if self.heal_start and cmd.reason.startswith(LAUNCH_FAILED):
                    self.healer.decide(cmd.host, cmd.reason, restart=False)
                elif self.hosts[cmd.host].joined_at is None and cmd.host not in self.healer.rejoining:
                    first.append(cmd)
                else:
                    self.healer.decide(cmd.host, cmd.reason, restart=cmd.restart)
            elif isinstance(cmd, AbortRun):
                self.finish(RunOutcome(False, cmd.reason, host=cmd.host))
        if first:
            self._first_start_failed(first)

    def _first_start_failed(self, failures: list[AskHealer]) -> None:
        """Hosts of the run's start whose agent did not start or join: the run ends (their agent.log says why)."""
        names = sorted(f.host for f in failures)
        late = [f.host for f in failures if f.reason.startswith("its agent did not join")]
        if len(late) == len(failures):
            reason = (
                f"{len(names)} host(s) did not join within {self.settings.join_timeout:g}s: "
                f"{', '.join(names[:10])} (see their agent.log under {self.rundir.root / 'hosts'})"
            )
        else:
            reason = "; ".join(f"{f.host}: {f.reason}" for f in sorted(failures, key=lambda f: f.host)[:10])
        self.finish(RunOutcome(False, reason, host=names[0]))

    def handling_failed(self, exc: Exception, host: str | None) -> None:
        if isinstance(exc, OSError):  # a log or an output file could not be written: the run cannot go on
            self._write_failed(exc)
            return
        log.error("error handling a message from %s", host, exc_info=exc)  # a bug or a hostile agent
        self.finish(RunOutcome(False, f"internal error handling a message from {host}: {exc}"))

    def message(self, name: str, msg: Message) -> None:
        slot = self.hosts[name]
        t = msg.type
        if self.healer.drops(slot, t):
            return  # a report of the execution that the application restart ended
        handler = self._handlers.get(t)
        if handler is not None:
            handler(slot, msg)
        elif t in ("heartbeat", "pong", "ping"):
            return
        else:
            log.debug("%s: ignored %r", slot.name, t)

    def late(self, name: str, msg: Message) -> None:
        """A report that arrived while the agents stop: output, uploads and exits are still recorded."""
        try:
            self.message(name, msg)
        except OSError as exc:
            self._write_failed(exc)

    # --- what the parts ask of each other ---------------------------------------------------------------

    def maybe_release_start(self) -> None:
        self.installer.maybe_release_start()

    def go_execute(self, slots: list[HostSlot]) -> None:
        self.installer.go_execute(slots)

    # --- execution ------------------------------------------------------------------------------------

    def _on_block(self, slot: HostSlot, msg: Message) -> None:
        path, state = msg["path"], msg["state"]
        slot.blocks[path] = state
        data = {k: msg.get(k) for k in ("reason", "action") if msg.get(k) is not None}
        self.bus.emit(block_event(state), host=slot.name, block=path, data=data)
        if state == "failed":
            action = msg.get("action") or "abort"
            reason = f"block {path} failed on {slot.name}: {msg.get('reason', '')}"
            if action == "restart_application":
                self.healer.restart_application(slot, path, reason)
            else:
                self.abort_run(f"{reason} -> {action}", slot.name, path)

    def _on_finished(self, slot: HostSlot, msg: Message) -> None:
        if not self.mesh.states.offer(slot.name, "all_done"):
            return
        slot.ok = bool(msg["ok"])
        self.bus.emit(HOST_FINISHED, host=slot.name, data={"ok": slot.ok})
        self.check_complete()

    def check_complete(self) -> None:
        """The application completes when every live host finished (failed hosts that were dropped do not
        count; the ladder saw to it that each component kept its ``min``). O(1) until it does."""
        if self.finished or self.healer.resetting or not self.hosts.all_done():
            return
        self.mark("all_finished")
        bad = [s.name for s in self.hosts.live() if not s.ok]
        self.finish(RunOutcome(not bad, f"hosts failed: {', '.join(bad)}" if bad else ""))

    def _on_log(self, slot: HostSlot, msg: Message) -> None:
        self.bus.emit(AGENT_LOG, host=slot.name, data={"level": msg["level"], "text": msg["text"]})

    def statistics(self) -> dict[str, Any]:
        return {"hosts": len(self.hosts), "states": self.hosts.statistics()}
