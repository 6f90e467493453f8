"""The mesh: the connected agents of a controller, kept across application runs.

Role. :class:`Mesh` holds one :class:`Member` per host it was asked to connect, whose state is its host
lifecycle's (:class:`~plush.controller.hoststates.HostStates`, the only keeper of host state); it starts
their agents through a :class:`~plush.launch.base.Launcher` (which alone knows where a host is), runs the
TLS :class:`~plush.fabric.listener.ControllerListener` they join with the mesh's token, and carries every
message between them and the run in progress (its :class:`MeshClient`), if any. It is the lifecycles'
:class:`~plush.controller.hoststates.CommandSink`: it carries out what concerns agents and links (launch,
stop, close a link, kill leftovers) and passes the rest (prepare, go, reset, report a failure, ask the
healer, abort) to the run. What happens to a host -- an agent joins, exits, its link breaks or resumes, it
answers ``end``/``stop`` -- is fed to its lifecycle as a fact:

- a fresh ``join`` is welcomed when the host is ``connecting`` (``agent_joined``: the run prepares it if it
  is matched, else it waits idle for the next run);
- a resuming ``join`` is welcomed when the host is ``lost`` (:meth:`Links.resume`, ``link_resumed``);
- every other message passes reliable delivery (:meth:`Links.accept`) and goes to the run holding the host;
  once the run's end is decided only what :data:`LATE_KEPT` names still does (output, uploads, exits).

The mesh also carries the distributed shell's requests (``plush exec``) to connected agents, idle or in a
run, and their replies back (:class:`~plush.controller.execs.ExecTable`): it tells the table every
``exec.result`` and every host that joins or leaves the connected states; the file transfers' answers
(``plush copy``, ``plush gather``) go to :class:`~plush.controller.transfers.Transfers`.

The mesh ends a run on its hosts (:meth:`Mesh.end_run`: ``stop_requested``, ``end`` -> ``ended``, the
agents stay), disconnects hosts (``released``: ``stop`` -> ``stopped``, then the launcher makes sure the agent
is gone) and closes (every agent, the listener, the launcher).

(Longer than the house's ~400 lines: the routing of messages and the three ends -- of a run, of some hosts,
of the mesh -- share the waits for answers; they read together.)

Invariants: one pump task reads the listener; every other task (launches, agent watches and stops, sweeps)
belongs to the mesh's :class:`~plush.controller.supervisor.Supervisor` and ends with :meth:`Mesh.close`; at
most one run is attached; the mesh decides no run failure (the lifecycles and the run do).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from plush.config import Settings, state_dir
from plush.controller.agents import KILL_WAIT, AgentProcesses
from plush.controller.catalogue import HOST_JOINED, HOST_LEFT
from plush.controller.events import EventBus
from plush.controller.execs import ExecTable
from plush.controller.hoststates import HostStates
from plush.controller.lifecycle import (
    CONNECTED,
    CONNECTING,
    DONE,
    FAILED,
    GONE,
    JOINED,
    LOST,
    POOLED,
    REPLACED,
    STOPPING,
)
from plush.controller.lifecycle_commands import (
    CloseLink,
    Command,
    KillLeftovers,
    LaunchAgent,
    LifecycleTimeouts,
    SendStop,
    StopAgent,
)
from plush.controller.links import Links
from plush.controller.members import Member, MeshClient
from plush.controller.supervisor import Supervisor
from plush.controller.transfers import REPLIES as TRANSFER_REPLIES
from plush.controller.transfers import Transfers
from plush.fabric.listener import ControllerListener, Peer, PeerEvent
from plush.fabric.tls import ensure_ca, server_context
from plush.launch.base import AgentContact, AgentHandle, Launcher, LaunchErrors
from plush.protocol.messages import Message
from plush.protocol.secret import Secret
from plush.resources.host import Host

__all__ = ["AGENT_EXIT_WAIT", "LATE_KEPT", "LAUNCH_FAILED", "STOP_MARGIN", "Mesh"]

log = logging.getLogger(__name__)

#: seconds agents get to exit on their own after ``stop`` before the launcher signals them
AGENT_EXIT_WAIT = 2.0
#: seconds beyond ``stop_grace`` that agents get to answer ``stop`` or ``end``: a tree's SIGKILL rounds (up
#: to 5 s), the adopted orphans (1 s), the last reports
STOP_MARGIN = 10.0

#: what is still recorded from an agent after the run decided to stop: output, uploads, exits, block states
LATE_KEPT = frozenset({"output", "upload", "upload.end", "proc.exited", "proc.started", "block", "log"})

#: how the reason of a host whose agent could not be started begins (what follows: the launcher's words)
LAUNCH_FAILED = "cannot start its agent"


class Mesh:
    """The connected agents of a controller (see the module docstring)."""

    def __init__(
        self,
        settings: Settings,
        bus: EventBus,
        *,
        mesh_id: str,
        workspace: Path,
        launcher: Callable[[AgentContact], Launcher],
    ) -> None:
        self.settings = settings
        self.bus = bus
        self.mesh_id = mesh_id
        #: where the launcher keeps what it makes for its hosts (local sandbox hosts: their directories)
        self.workspace = workspace
        self._make_launcher = launcher
        self.launcher: Launcher | None = None
        self.listener: ControllerListener | None = None
        self.members: dict[str, Member] = {}
        self.client: MeshClient | None = None
        timeouts = LifecycleTimeouts.from_settings(settings, stop_margin=STOP_MARGIN, kill=KILL_WAIT)
        self.states = HostStates(timeouts, self, self._moved)
        self.links = Links(settings, bus, None)
        #: the distributed shell's requests in progress (``plush exec``), beside any run
        self.execs = ExecTable(self.links)
        #: the file side of ``plush copy`` / ``plush gather`` requests in progress (through :attr:`execs`)
        self.transfers = Transfers(self.execs, fanout=settings.relay_fanout)
        self.tasks = Supervisor("mesh", self._task_failed)
        self.agents = AgentProcesses(
            settings,
            self.tasks,
            on_exit=self._agent_exited,
            run_id=lambda: self.client.run_id if self.client is not None else "",
        )
        self._pump: asyncio.Task[None] | None = None
        self._launches: set[asyncio.Task[Any]] = set()
        self._pending: set[str] = set()  # hosts whose new agent is being launched
        self._ended_clean: set[str] = set()  # hosts whose agent answered ``ended``/``stopped`` in this end
        self._agent_stops: dict[str, asyncio.Task[Any]] = {}
        self._answered: dict[str, asyncio.Event] = {}  # hosts whose ``stopped`` an agent stop awaits
        self._stop_reason = "the run is over"
        self._waiting: set[str] = set()  # hosts whose leaving ``stopping`` is awaited
        self._settled = asyncio.Event()
        self._closing = False
        self.closed = False

    @property
    def started(self) -> bool:
        return self.listener is not None

    # --- start and membership ---------------------------------------------------------------------------

    async def start(self) -> None:
        """The listener (a fresh token) and the launcher; the pump starts reading."""
        ca = await asyncio.to_thread(ensure_ca, state_dir())
        self.transfers.ca = ca  # relayed copies: their certificate comes from the mesh's CA
        token = Secret.generate()
        listener = ControllerListener(
            ssl_context=server_context(ca),
            token=token,
            run_id=self.mesh_id,
            host=self.settings.listen_host,
            settings=self.settings,
            inbox_limit=256,
        )
        self.listener = listener
        await listener.start()
        contact = AgentContact(
            host=self.settings.listen_host, port=listener.port, ca_pem=ca.cert_pem, token=token, adopt=listener.adopt
        )
        self.launcher = self._make_launcher(contact)
        self.links.launcher = self.launcher
        self.agents.launcher = self.launcher
        self._pump = asyncio.get_running_loop().create_task(self._run_pump(listener))

    def add(self, host: Host) -> Member:
        """``host`` becomes a member (a gone, failed or replaced one starts anew: ``pooled``); its agent is not
        started yet."""
        name = host.name
        member = self.members.get(name)
        if member is not None and member.state in (FAILED, REPLACED):
            self.states.handle(name, "released")
        if member is None or member.state == GONE:
            member = self.members[name] = Member(host, self.states.add(name))
        return member

    def joined(self) -> list[Host]:
        """The hosts whose agent is connected now (idle or in a run), in the order they were added."""
        return [m.host for m in self.members.values() if m.state in CONNECTED]

    def idle(self, name: str) -> bool:
        """Whether ``name``'s agent is connected and in no run."""
        member = self.members.get(name)
        return member is not None and member.state == JOINED

    def _in_run(self, name: str) -> bool:
        return self.client is not None and self.client.has(name)

    def attach(self, client: MeshClient) -> None:
        """``client`` (a run) takes the messages of its hosts from now on."""
        if self.client is not None and not self.client.finished:
            raise RuntimeError("a run is attached to the mesh already")
        self.client = client

    def detach(self) -> None:
        self.client = None

    async def connect(self, hosts: Sequence[Host]) -> dict[str, str]:
        """Start the agents of ``hosts`` not connected yet and wait until each joined or failed (its agent
        exited, or did not join within ``join_timeout``); why each failed host failed."""
        loop = asyncio.get_running_loop()
        todo = []
        for host in hosts:
            member = self.add(host)
            if member.state == POOLED:
                member.waiter = loop.create_future()
                todo.append(member)
        if not todo:
            return {}
        await self.start_agents([m.host.name for m in todo])
        failed = {}
        for member in todo:
            assert member.waiter is not None
            why = await member.waiter
            member.waiter = None
            if why is not None:
                failed[member.host.name] = why
        return failed

    async def start_agents(self, names: Sequence[str]) -> None:
        """Start the agents of ``names`` (``pooled`` or ``matched`` members; they join on their own) and wait
        until the launcher has started them (not until they joined)."""
        self.states.handle_many((name, "launch_started", {}) for name in names)
        await self.launched()

    async def launched(self) -> None:
        """Wait until every launch asked for so far is done."""
        while self._launches:
            await asyncio.gather(*self._launches, return_exceptions=True)

    # --- the lifecycles' commands (CommandSink) ----------------------------------------------------------------

    def carry_out(self, commands: Sequence[Command]) -> None:
        launch: list[str] = []
        swept: set[str] = set()
        for cmd in commands:
            if isinstance(cmd, LaunchAgent):
                launch.append(cmd.host)
            elif isinstance(cmd, KillLeftovers):
                swept.add(cmd.host)
            elif isinstance(cmd, CloseLink):
                self.links.close(cmd.host, cmd.reason)
            elif isinstance(cmd, SendStop):
                self._send_stop(cmd.host)
            elif isinstance(cmd, StopAgent):
                self._stop_agent_soon(cmd.host)
        for name in swept.difference(launch):
            self.agents.kill_now(name)  # its agent's group now, what the host still runs soon
        if launch:
            self._pending.update(launch)
            task = self.tasks.spawn(self._launch(launch, swept.intersection(launch)), name=f"launch {len(launch)}")
            if task is not None:
                self._launches.add(task)
                task.add_done_callback(self._launches.discard)
        client = self.client
        if client is not None:
            rest = [c for c in commands if client.has(c.host) and not isinstance(c, _MESH_COMMANDS)]
            if rest:
                client.carry_out(rest)

    async def _launch(self, names: list[str], sweep_first: set[str]) -> None:
        """Start the agents of ``names`` (after sweeping what the old agents of ``sweep_first`` left)."""
        try:
            if sweep_first:
                await asyncio.gather(*(self.agents.sweep(n) for n in sweep_first))
            agents = await self.agents.start(names)
        except LaunchErrors as exc:  # some hosts failed, each for its own reason; the others started
            self._pending.difference_update(names)
            failed = exc.failed.items()
            self.states.handle_many((n, "launch_failed", {"reason": f"{LAUNCH_FAILED}: {why}"}) for n, why in failed)
            self._started(exc.started)
            return
        except Exception as exc:  # a launcher error: every host of the batch failed
            self._pending.difference_update(names)
            self.states.handle_many((n, "launch_failed", {"reason": f"{LAUNCH_FAILED}: {exc}"}) for n in names)
            return
        self._pending.difference_update(names)
        self._started(agents)

    def _started(self, agents: Sequence[AgentHandle]) -> None:
        for agent in agents:  # the join deadline counts from the agent's own start
            if self.states.state(agent.name) == CONNECTING:
                self.states.handle(agent.name, "agent_started", now=agent.started_at)

    def _send_stop(self, name: str) -> None:
        """``end`` to an agent whose host stays (the run is over), ``stop`` to one that leaves."""
        life = self.states.get(name)
        grace, reason = self.settings.stop_grace, self._stop_reason
        if life is not None and life.leaving:
            self.links.send(name, Message.of("stop", grace=grace, reason=reason))
        else:
            self.links.send(name, Message.of("end", grace=grace, reason=reason))

    def _stop_agent_soon(self, name: str) -> None:
        if name not in self._agent_stops:
            task = self.tasks.spawn(self._stop_agent(name), name=f"stop {name}")
            if task is not None:
                self._agent_stops[name] = task
                task.add_done_callback(lambda _t: self._agent_stops.pop(name, None))

    async def _stop_agent(self, name: str) -> None:
        """End ``name``'s agent: ``stop`` over its link if it is up and was not stopped yet (its answer
        awaited, bounded), a moment to exit by itself, then the launcher makes sure it is gone."""
        answered = self._answered.setdefault(name, asyncio.Event())
        link = self.links.links.get(name)
        if link is not None and link.up and not answered.is_set():
            grace = self.settings.stop_grace
            self.links.send(name, Message.of("stop", grace=grace, reason=self._stop_reason))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(answered.wait(), grace + STOP_MARGIN)
        self.links.close(name, self._stop_reason)
        agent = self.agents.current(name)
        if answered.is_set() and agent is not None and agent.returncode is None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(agent.wait()), AGENT_EXIT_WAIT)
        self._answered.pop(name, None)
        if self.launcher is not None:
            await self.launcher.stop_agent(name)

    # --- what happens to hosts ----------------------------------------------------------------------------------

    def _moved(self, name: str, old: str, new: str) -> None:
        """A host's lifecycle moved: the run counts it, the links watch a lost agent, waiters are told."""
        if self.client is not None and self.client.has(name):
            self.client.host_moved(name, old, new)
        member = self.members.get(name)
        life = member.life if member is not None else None
        reason = life.reason if life is not None else ""
        if new == LOST and old != LOST:
            self.links.disconnected(name, reason, self._lost_agent_gone)
        elif old == LOST and new != LOST:
            link = self.links.links.get(name)
            if link is not None and link.disconnected:  # failed or gone, not resumed
                self.links.close(name, reason)
        if member is not None and new in (FAILED, GONE) and old in (CONNECTING, POOLED):
            member.settle(reason or "not started")
        if self.execs and new != old:
            if new in CONNECTED:
                if old not in CONNECTED:
                    self.execs.moved(name, True)
            elif new != CONNECTING:
                self.execs.moved(name, False, reason)
        if new == GONE and old in (JOINED, STOPPING) and not self._closing:
            self.bus.emit(HOST_LEFT, host=name, data={"reason": reason})
        if old == STOPPING and name in self._waiting:
            self._waiting.discard(name)
            if not self._waiting:
                self._settled.set()

    def _lost_agent_gone(self, name: str, gone: str) -> None:
        """A lost host's agent will not resume (its launcher says so: stopped, or exited and not reaped yet): the
        host fails; its agent's exit, which the launcher's watch reports, is awaited before any restart."""
        self.states.offer(name, "agent_gone", reason=gone)

    def _agent_exited(self, name: str, code: int) -> None:
        """The current agent of ``name`` exited (while a new one is being launched, the old one: no news)."""
        if name in self._pending:
            return
        how = f"killed by signal {-code}" if code < 0 else f"exit status {code}"
        self._answered.setdefault(name, asyncio.Event()).set()
        state = self.states.state(name)
        if state == LOST:
            reason = f"exited ({how})"
        elif self._in_run(name) and state not in (JOINED, DONE, STOPPING):
            reason = f"its agent exited unexpectedly ({how})"
        else:
            reason = f"its agent exited ({how})"
        self.states.offer(name, "agent_exited", reason=reason)

    def current_agent(self, name: str) -> AgentHandle | None:
        return self.agents.current(name)

    def agent_pid(self, name: str) -> int | None:
        """The pid of ``name``'s current agent process (None before it started or after it exited)."""
        return self.agents.pid(name)

    def _task_failed(self, exc: BaseException) -> None:
        if self.client is not None and not self.client.finished:
            self.client.task_failed(exc)
        else:
            log.error("mesh: a task failed", exc_info=exc)

    # --- the inbox ---------------------------------------------------------------------------------------

    async def _run_pump(self, listener: ControllerListener) -> None:
        while True:
            event = await listener.next_event()
            try:
                self._on_event(event)
            except Exception as exc:  # a bug, a hostile agent, a full disk: the run decides
                if self.client is not None and not self.client.finished:
                    self.client.handling_failed(exc, event.peer.host)
                else:
                    log.exception("error handling %r from %s", event.message, event.peer.host)

    def _on_event(self, event: PeerEvent) -> None:
        peer, msg, reason = event
        name = peer.host or ""
        if msg is None:
            if self.links.is_current(name, peer):
                self._answered.setdefault(name, asyncio.Event()).set()
                self.states.offer(name, "link_lost", reason=reason or "connection closed")
            return
        if msg.type == "join":
            self._on_join(peer, name)
            return
        if not self.links.is_current(name, peer) or not self.links.accept(name, msg):
            return
        t = msg.type
        if t == "exec.result":  # the distributed shell: not the run's
            self.execs.answered(name, msg)
            return
        if t in TRANSFER_REPLIES:  # plush copy / plush gather: not the run's either
            self.transfers.message(name, msg)
            return
        if t in ("ended", "stopped"):
            self._ended_clean.add(name)
            if t == "stopped":  # the agent exits now: an agent stop in progress need not ask again
                self._answered.setdefault(name, asyncio.Event()).set()
            self.states.offer(name, "stopped")
        elif t == "hostmon":
            member = self.members.get(name)
            if member is not None:
                member.sample = msg["sample"]
        client = self.client
        if client is not None and client.has(name):
            if not client.finished:
                client.message(name, msg)
            elif t in LATE_KEPT:
                client.late(name, msg)
                if t in ("upload", "upload.end"):  # an agent still uploading gets its time
                    self.states.postpone(name, "stop", time.monotonic() + STOP_MARGIN)
        self.links.processed(name, msg)

    def _on_join(self, peer: Peer, name: str) -> None:
        join = peer.join
        assert join is not None
        state = self.states.state(name)
        if self._closing:
            _reject(peer, "the run is over")
        elif join.get("resume"):
            if state == LOST and self.client is not None and not self.client.finished:
                if self.links.resume(peer, name, join):
                    self.states.handle(name, "link_resumed")
            elif self.client is not None and self.client.finished and self._in_run(name):
                _reject(peer, "the run is over")
            else:
                _reject(peer, f"host {peer.host!r} cannot resume (it is {state or 'unknown'})")
        elif state != CONNECTING:
            _reject(peer, f"no host named {peer.host!r} is expected in this run")
        else:
            member = self.members[name]
            self.links.attach(name, peer, join)
            member.workdir = str(join["workdir"])
            member.joined_at = time.time()
            self._answered.pop(name, None)
            self._ended_clean.discard(name)
            member.settle(None)
            self.states.handle(name, "agent_joined")  # a matched host is prepared (the run sends prepare)
            self.bus.emit(HOST_JOINED, host=name, data={"component": member.life.component})

    # --- ends ----------------------------------------------------------------------------------------------

    async def _until_settled(self, names: Iterable[str]) -> None:
        """Wait until none of ``names`` is ``stopping`` (each answered, lost its link, or its lifecycle's
        ``stop`` timer fired)."""
        self._waiting = {n for n in names if self.states.state(n) == STOPPING}
        while self._waiting:
            self._settled.clear()
            await self._settled.wait()

    async def _agents_stopped(self, names: Iterable[str]) -> None:
        tasks = [t for n in names if (t := self._agent_stops.get(n)) is not None]
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    async def end_run(self, names: Iterable[str]) -> None:
        """The attached run is over; ``names`` are its hosts: each one in the application gets ``end``
        (``stop_requested``), its last reports still reach the run, its answer ``ended`` is awaited (bounded by
        its ``stop`` timer). The agents stay connected, idle; one that did not answer is disconnected. Then
        what the run's processes left is killed and the run is detached."""
        names = list(names)
        self._stop_reason = "the run is over"
        self._ended_clean.clear()
        self.states.handle_many((n, "stop_requested", {}) for n in names)
        await self._until_settled(names)
        await self.launched()
        await self._agents_stopped(names)
        await self._sweep_run(names)  # what a killed or hung agent left behind
        self.detach()

    async def _sweep_run(self, names: Iterable[str]) -> None:
        """Kill what the attached run's processes left on ``names``: on every host when the launcher sweeps them
        all at the cost of one, else only where the agent did not end the run cleanly (an agent that answered
        ``ended``/``stopped`` killed its own processes)."""
        client, launcher = self.client, self.launcher
        if client is None or launcher is None:
            return
        if launcher.sweep_all_is_cheap:
            await launcher.kill_leftovers(client.run_id, None)
            return
        unclean = [n for n in names if n not in self._ended_clean and self.agents.current(n) is not None]
        if unclean:
            await launcher.kill_leftovers(client.run_id, unclean)

    async def disconnect(self, names: Sequence[str] | None = None, *, reason: str = "disconnected") -> None:
        """Disconnect ``names`` (every member when None): each is ``released``: ``stop`` to each connected one,
        its ``stopped`` awaited (bounded), then its launcher makes sure the agent is gone. Each becomes
        ``gone``."""
        chosen = [n for n in (names if names is not None else list(self.members)) if n in self.members]
        self._stop_reason = reason
        self.states.handle_many((n, "released", {}) for n in chosen)
        await self._until_settled(chosen)
        await self._agents_stopped(chosen)

    async def close(self) -> None:
        """Stop every agent (``released``: ``stop``, the answers awaited: what a finished run still hears reaches
        it), close the listener, give the agents a moment to exit, stop what is left through the launcher,
        sweep the run's leftovers, end every task of the mesh."""
        if self.closed:
            return
        self._closing = True
        self._ended_clean.clear()
        client = self.client
        try:
            self.links.cancel_timers()
            await self.launched()
            await self.disconnect(reason="the run is over")
        except Exception:  # whatever went wrong, the agents below must still be stopped
            log.exception("error while stopping the agents")
        finally:
            self.closed = True
            self.states.close()
            self.links.sessions.close()
            if self._pump is not None:
                self._pump.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._pump
            try:
                if self.listener is not None:
                    await self.listener.close()
                await self.agents.exited(AGENT_EXIT_WAIT)
            finally:
                await self.tasks.close()
                if self.launcher is not None:
                    await self.launcher.stop_all()
                    if client is not None:  # what a killed agent left
                        await self._sweep_run([n for n in self.members if client.has(n)])
                    await self.launcher.close()  # and whatever else it holds (its SSH connections)
                for member in self.members.values():
                    member.settle("the mesh closed")
                self.detach()

    def statistics(self) -> dict[str, Any]:
        states: dict[str, int] = {}
        for member in self.members.values():
            states[member.state] = states.get(member.state, 0) + 1
        return {"members": len(self.members), "states": states, "tasks": len(self.tasks)}


#: the commands the mesh carries out itself; the run takes the others
_MESH_COMMANDS = (LaunchAgent, KillLeftovers, CloseLink, SendStop, StopAgent)


def _reject(peer: Peer, reason: str) -> None:
    peer.send(Message.of("reject", reason=reason))
    peer.close("rejected")
