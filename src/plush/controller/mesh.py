"""The mesh: the connected agents of a controller, kept across application runs.

Role. :class:`Mesh` holds one :class:`Member` per host it was asked to connect, starts their agents through
a :class:`~plush.launch.base.Launcher` (which alone knows where a host is), runs the TLS
:class:`~plush.fabric.listener.ControllerListener` they join with the mesh's token, and carries every
message between them and the run in progress (its :class:`MeshClient`), if any:

- a fresh ``join`` is welcomed when the mesh started that host's agent and it has not joined yet; the run
  then prepares it (if the host is one of its), else it waits idle for the next run;
- a resuming ``join`` goes to :class:`~plush.controller.links.Links` (the run's reconnect window);
- every other message passes reliable delivery (:meth:`Links.accept`) and goes to the run holding the host;
  once the run's end is decided only what :data:`LATE_KEPT` names still does (output, uploads, exits).

Its :class:`~plush.controller.agents.AgentProcesses` watch each agent process (an exit is the run's to
judge, or makes an idle host gone), count each host's ``join_timeout`` from its own agent's start, and kill
a failed host (its agent's group now, what it left soon: ``Launcher.kill_leftovers``, batched). The mesh
ends a run on its hosts (:meth:`Mesh.end_run`: ``end`` -> ``ended``, the agents stay), disconnects hosts
(``stop`` -> ``stopped``, then the launcher makes sure the agent is gone) and closes (every agent, the
listener, the launcher).

(Longer than the house's ~400 lines: the routing of messages and the three ends -- of a run, of some hosts,
of the mesh -- share the state of the answers awaited; they read together.)

Invariants: one pump task reads the listener; every other task (agent watches, sweeps) belongs to the
mesh's :class:`~plush.controller.supervisor.Supervisor` and ends with :meth:`Mesh.close`; at most one run is
attached; a host's join deadline is judged only for the agent that is still its current one; the mesh
decides no run failure (the run does), and an idle host that loses its link or its agent is simply gone.
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
from plush.controller.agents import AgentProcesses
from plush.controller.catalogue import HOST_JOINED, HOST_LEFT
from plush.controller.events import EventBus
from plush.controller.links import Links
from plush.controller.members import Member, MeshClient, NoRun
from plush.controller.supervisor import Supervisor
from plush.fabric.listener import ControllerListener, Peer, PeerEvent
from plush.fabric.tls import ensure_ca, server_context
from plush.launch.base import AgentContact, AgentHandle, Launcher
from plush.protocol.messages import Message
from plush.protocol.secret import Secret
from plush.resources.host import Host

__all__ = ["AGENT_EXIT_WAIT", "LATE_KEPT", "STOP_MARGIN", "Mesh"]

log = logging.getLogger(__name__)

#: seconds agents get to exit on their own after ``stop`` before the launcher signals them
AGENT_EXIT_WAIT = 2.0
#: seconds beyond ``stop_grace`` that agents get to answer ``stop`` or ``end``: a tree's SIGKILL rounds (up
#: to 5 s), the adopted orphans (1 s), the last reports
STOP_MARGIN = 10.0

#: what is still recorded from an agent after the run decided to stop: output, uploads, exits, block states
LATE_KEPT = frozenset({"output", "upload", "upload.end", "proc.exited", "proc.started", "block", "log"})


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
        self.links = Links(settings, bus, NoRun(), None)
        self.tasks = Supervisor("mesh", self._task_failed)
        self.agents = AgentProcesses(
            settings,
            self.tasks,
            on_exit=self._agent_exited,
            on_expired=self._join_expired,
            run_id=lambda: self.client.run_id if self.client is not None else "",
        )
        self._pump: asyncio.Task[None] | None = None
        self._awaiting: set[str] = set()  # hosts whose ``ended`` / ``stopped`` is awaited
        self._replied: asyncio.Event = asyncio.Event()
        self._await_until = 0.0
        self._closing = False
        self.closed = False

    @property
    def started(self) -> bool:
        return self.listener is not None

    # --- start and membership ---------------------------------------------------------------------------

    async def start(self) -> None:
        """The listener (a fresh token) and the launcher; the pump starts reading."""
        ca = await asyncio.to_thread(ensure_ca, state_dir())
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
        contact = AgentContact(host=self.settings.listen_host, port=listener.port, ca_pem=ca.cert_pem, token=token)
        self.launcher = self._make_launcher(contact)
        self.links.launcher = self.launcher
        self.agents.launcher = self.launcher
        self._pump = asyncio.get_running_loop().create_task(self._run_pump(listener))

    def add(self, host: Host) -> Member:
        """``host`` becomes a member (a gone or failed one starts anew); its agent is not started yet."""
        member = self.members.get(host.name)
        if member is None or member.state in ("gone", "failed"):
            member = self.members[host.name] = Member(host, state="failed", reason="not started")
        return member

    def joined(self) -> list[Host]:
        """The hosts whose agent is connected now (idle or in a run), in the order they were added."""
        return [m.host for m in self.members.values() if m.state == "joined"]

    def idle(self, name: str) -> bool:
        """Whether ``name``'s agent is connected and in no run."""
        member = self.members.get(name)
        return member is not None and member.state == "joined" and not self._in_run(name)

    def _in_run(self, name: str) -> bool:
        return self.client is not None and self.client.host_state(name) is not None

    def attach(self, client: MeshClient) -> None:
        """``client`` (a run) takes the messages of its hosts from now on."""
        if self.client is not None and not self.client.finished:
            raise RuntimeError("a run is attached to the mesh already")
        self.client = client
        self.links.client = client

    def detach(self) -> None:
        self.client = None
        self.links.client = NoRun()

    async def connect(self, hosts: Sequence[Host]) -> dict[str, str]:
        """Start the agents of ``hosts`` not connected yet and wait until each joined or failed (its agent
        exited, or did not join within ``join_timeout``); why each failed host failed."""
        loop = asyncio.get_running_loop()
        todo = []
        for host in hosts:
            member = self.add(host)
            if member.state in ("joined", "connecting"):
                continue
            member.waiter = loop.create_future()
            todo.append(member)
        if not todo:
            return {}
        try:
            await self.start_agents([m.host.name for m in todo])
        except Exception as exc:  # a launcher error: every host of the batch failed
            for member in todo:
                self._fail_member(member, f"cannot start its agent: {exc}")
        failed = {}
        for member in todo:
            assert member.waiter is not None
            why = await member.waiter
            member.waiter = None
            if why is not None:
                failed[member.host.name] = why
        return failed

    async def start_agents(self, names: Sequence[str]) -> Sequence[AgentHandle]:
        """Start the agents of ``names`` (members; they join on their own): watched, each with its deadline."""
        for name in names:
            member = self.members[name]
            member.state, member.reason = "connecting", ""
        return await self.agents.start(names)

    async def start_agent(self, name: str) -> AgentHandle:
        """Start (again) the agent of member ``name``; raises :class:`~plush.errors.LaunchError`."""
        (agent,) = await self.start_agents([name])
        return agent

    def _agent_exited(self, name: str, code: int) -> None:
        """The current agent of ``name`` exited: the run's to judge, or an idle host is gone."""
        if self._in_run(name):
            assert self.client is not None
            self.client.agent_exited(name, code)
            return
        member = self.members.get(name)
        if member is not None and member.state in ("connecting", "joined"):
            how = f"killed by signal {-code}" if code < 0 else f"exit status {code}"
            self._fail_member(member, f"its agent exited ({how})", gone=member.state == "joined")

    def _fail_member(self, member: Member, reason: str, *, gone: bool = False) -> None:
        """An idle or connecting member failed (or, ``gone``, left): its link closed, its agent ended."""
        name = member.host.name
        member.state, member.reason = ("gone" if gone else "failed"), reason
        self.links.close(name, reason)
        member.settle(reason)
        if gone and not self._closing:
            self.bus.emit(HOST_LEFT, host=name, data={"reason": reason})
        if self.launcher is not None:
            self.tasks.spawn(self.launcher.stop_agent(name, 0.0), name=f"end {name}")

    def _join_expired(self, names: list[str]) -> None:
        """The agents of ``names`` did not join within ``join_timeout`` of their start: the run's hosts go to
        the run; an agent started by ``connect`` failed."""
        expired = []
        for name in names:
            member = self.members.get(name)
            if member is None or member.state != "connecting":
                continue
            if self._in_run(name):
                expired.append(name)
            else:
                self._fail_member(member, f"its agent did not join within {self.settings.join_timeout:g}s")
        if expired and self.client is not None:
            self.client.join_expired(expired)

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
                self._answered(name)
                if self._in_run(name):
                    self.links.lost(name, reason or "connection closed")
                else:
                    member = self.members.get(name)
                    if member is not None and member.state == "joined":
                        self._fail_member(member, f"its link broke ({reason or 'connection closed'})", gone=True)
            return
        if msg.type == "join":
            self._on_join(peer, name)
            return
        if not self.links.is_current(name, peer) or not self.links.accept(name, msg):
            return
        t = msg.type
        if t in ("ended", "stopped") and name in self._awaiting:
            self._answered(name)
        elif t == "hostmon":
            member = self.members.get(name)
            if member is not None:
                member.sample = msg["sample"]
        client = self.client
        if client is not None and client.host_state(name) is not None:
            if not client.finished:
                client.message(name, msg)
            elif t in LATE_KEPT:
                client.late(name, msg)
                if t in ("upload", "upload.end"):
                    self._await_until = max(self._await_until, time.monotonic() + STOP_MARGIN)
        self.links.processed(name, msg)

    def _on_join(self, peer: Peer, name: str) -> None:
        join = peer.join
        assert join is not None
        if self._closing:
            _reject(peer, "the run is over")
        elif join.get("resume"):
            if self._in_run(name):
                self.links.resume(peer, name, join)
            else:
                _reject(peer, f"host {peer.host!r} cannot resume (it is in no run)")
        else:
            member = self.members.get(name)
            if member is None or member.state != "connecting":
                _reject(peer, f"no host named {peer.host!r} is expected in this run")
                return
            self.links.attach(name, peer, join)
            member.state, member.reason = "joined", ""
            member.workdir = str(join["workdir"])
            member.joined_at = time.time()
            member.settle(None)
            client = self.client
            in_run = client is not None and client.host_state(name) is not None
            if in_run and client is not None and not client.finished:
                client.joined(name)
                component = client.host_component(name)
            else:
                component = None
            self.bus.emit(HOST_JOINED, host=name, data={"component": component})

    # --- failed hosts --------------------------------------------------------------------------------------

    def kill_now(self, name: str) -> None:
        """A host of the run failed: SIGKILL its agent group now, and its other processes soon."""
        member = self.members.get(name)
        if member is not None:
            member.state = "failed"
        self.agents.kill_now(name)

    async def kill(self, name: str) -> None:
        """:meth:`kill_now`, then wait (bounded) until the agent is gone and sweep once more."""
        member = self.members.get(name)
        if member is not None:
            member.state = "failed"
        await self.agents.kill(name)

    # --- ends ----------------------------------------------------------------------------------------------

    async def _await_answers(self, names: Iterable[str], msg: Message) -> set[str]:
        """Send ``msg`` (``end`` or ``stop``) to ``names`` and wait until each answered or lost its link,
        for ``stop_grace`` + :data:`STOP_MARGIN` and at least :data:`STOP_MARGIN` after the last upload
        received; the hosts that did not answer."""
        self._awaiting = set(names)
        for name in self._awaiting:
            self.links.send(name, Message(msg.type, dict(msg.fields)))
        self._await_until = time.monotonic() + self.settings.stop_grace + STOP_MARGIN
        while self._awaiting and (left := self._await_until - time.monotonic()) > 0:
            self._replied.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._replied.wait(), left)
        silent, self._awaiting = self._awaiting, set()
        return silent

    def _answered(self, name: str) -> None:
        if name in self._awaiting:
            self._awaiting.discard(name)
            if not self._awaiting:
                self._replied.set()

    async def end_run(self, names: Iterable[str]) -> None:
        """The attached run is over; ``names`` are its hosts prepared for it: each gets ``end``, its last
        reports still reach the run, its answer ``ended`` is awaited (bounded). The agents stay connected,
        idle; one that did not answer is disconnected. Then what the run's processes left is killed and the
        run is detached."""
        self.links.cancel_timers()
        up = [n for n in names if self.links.get(n).up]
        grace = self.settings.stop_grace
        silent = await self._await_answers(up, Message.of("end", grace=grace, reason="the run is over"))
        if silent:
            await self.disconnect(sorted(silent), reason=f"it did not end the run within {grace + STOP_MARGIN:g}s")
        client = self.client
        if client is not None and self.launcher is not None:
            await self.launcher.kill_leftovers(client.run_id, None)  # what a killed or hung agent left behind
        self.detach()

    async def disconnect(self, names: Sequence[str] | None = None, *, reason: str = "disconnected") -> None:
        """Disconnect ``names`` (every member when None): ``stop`` to each connected one, its ``stopped``
        awaited (bounded), then its launcher makes sure the agent is gone. Each becomes ``gone``."""
        chosen = [self.members[n] for n in (names if names is not None else list(self.members)) if n in self.members]
        linked = [m.host.name for m in chosen if m.state == "joined" and self.links.get(m.host.name).up]
        if linked:
            grace = self.settings.stop_grace
            await self._await_answers(linked, Message.of("stop", grace=grace, reason=reason))
        for member in chosen:
            if member.state in ("gone",):
                continue
            was = member.state
            member.state, member.reason = "gone", reason
            self.links.close(member.host.name, reason)
            member.settle(reason)
            if was == "joined" and not self._closing:
                self.bus.emit(HOST_LEFT, host=member.host.name, data={"reason": reason})
        if self.launcher is not None:
            await asyncio.gather(*(self.launcher.stop_agent(m.host.name) for m in chosen))

    async def close(self) -> None:
        """Stop every agent (``stop``, the answers awaited: what a finished run still hears reaches it), close
        the listener, give the agents a moment to exit, stop what is left through the launcher, sweep the
        run's leftovers, end every task of the mesh."""
        if self.closed:
            return
        self._closing = True
        self.agents.close()
        client = self.client
        try:
            self.links.cancel_timers()
            live = [n for n, m in self.members.items() if m.state == "joined" and self.links.get(n).up]
            grace = self.settings.stop_grace
            await self._await_answers(live, Message.of("stop", grace=grace, reason="the run is over"))
        except Exception:  # whatever went wrong, the agents below must still be stopped
            log.exception("error while stopping the agents")
        finally:
            self.closed = True
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
                    if client is not None:
                        await self.launcher.kill_leftovers(client.run_id, None)  # what a killed agent left
                for member in self.members.values():
                    member.settle("the mesh closed")
                    if member.state != "failed":
                        member.state = "gone"
                self.detach()

    def statistics(self) -> dict[str, Any]:
        states: dict[str, int] = {}
        for member in self.members.values():
            states[member.state] = states.get(member.state, 0) + 1
        return {"members": len(self.members), "states": states, "tasks": len(self.tasks)}


def _reject(peer: Peer, reason: str) -> None:
    peer.send(Message.of("reject", reason=reason))
    peer.close("rejected")
