"""The mesh: the agents of a set of hosts, their launcher, the listener they join, and their links.

Role. :class:`Mesh` starts agents through a :class:`~plush.launch.base.Launcher` (which alone knows where a
host is), runs the TLS :class:`~plush.fabric.listener.ControllerListener` they join with a fresh token, and
carries every message between them and its :class:`MeshClient` (the run): a fresh ``join`` is welcomed when
the client expects the host, a resuming one goes to :class:`~plush.controller.links.Links`, every other
message passes reliable delivery (:meth:`Links.accept`) and is handed to the client. It also watches each
agent process (an exit is the client's to judge), counts each host's ``join_timeout`` from its own agent's
start (one timer for all: the earliest deadline), kills a failed host (its agent's group now, what it left
soon: ``Launcher.kill_leftovers``, batched), and at the end stops every agent: ``stop`` to each live link,
the replies awaited (bounded), the listener closed, the launcher's agents stopped, leftovers swept.

Invariants: one pump task reads the listener; every other task of the mesh (agent watches, sweeps) belongs
to its :class:`~plush.controller.supervisor.Supervisor` and ends with :meth:`Mesh.close`; a host's join
deadline is its agent's start plus ``join_timeout``, judged only for the agent that is still the host's
current one; nothing here decides a failure (the client does).
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import logging
import signal
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Protocol

from plush.config import Settings, state_dir
from plush.controller.events import EventBus
from plush.controller.links import LinkClient, Links
from plush.controller.supervisor import Supervisor
from plush.fabric.listener import ControllerListener, PeerEvent
from plush.fabric.tls import ensure_ca, server_context
from plush.launch.base import AgentContact, AgentHandle, Launcher
from plush.protocol.messages import Message
from plush.protocol.secret import Secret

__all__ = ["AGENT_EXIT_WAIT", "KILL_WAIT", "STOP_MARGIN", "Mesh", "MeshClient"]

log = logging.getLogger(__name__)

#: seconds agents get to exit on their own after the run's ``stop`` before the launcher signals them
AGENT_EXIT_WAIT = 2.0
#: seconds beyond ``stop_grace`` that agents get to answer ``stop``: a tree's SIGKILL rounds (up to 5 s),
#: the adopted orphans (1 s), the last reports
STOP_MARGIN = 10.0
#: seconds to wait for a failed host's SIGKILLed agent to be gone before it is restarted
KILL_WAIT = 5.0

#: what is still recorded from an agent after the run decided to stop: output, uploads, exits, block states
LATE_KEPT = frozenset({"output", "upload", "upload.end", "proc.exited", "proc.started", "block", "log"})


class MeshClient(LinkClient, Protocol):
    """What the mesh tells, and asks of, the run that uses it."""

    def expects_join(self, name: str) -> bool:
        """Whether a fresh agent of host ``name`` may join now."""

    def joined(self, name: str) -> None:
        """A fresh agent of ``name`` joined and was welcomed."""

    def message(self, name: str, msg: Message) -> None:
        """A message from ``name``'s agent, after reliable delivery."""

    def agent_exited(self, name: str, code: int) -> None:
        """The current agent process of ``name`` exited with ``code`` (negative: the signal)."""

    def join_expired(self, names: list[str]) -> None:
        """The agents of ``names`` did not join within ``join_timeout`` of their start."""

    def handling_failed(self, exc: Exception, host: str | None) -> None:
        """Handling a message from ``host`` raised ``exc`` (an OSError: a file could not be written)."""


class Mesh:
    """Agents, listener and links of one run's hosts (see the module docstring)."""

    def __init__(
        self,
        settings: Settings,
        bus: EventBus,
        client: MeshClient,
        *,
        run_id: str,
        launcher: Callable[[AgentContact], Launcher],
        on_error: Callable[[BaseException], None],
    ) -> None:
        self.settings = settings
        self.bus = bus
        self.client = client
        self.run_id = run_id
        self._make_launcher = launcher
        self.launcher: Launcher | None = None
        self.listener: ControllerListener | None = None
        self.links = Links(settings, bus, client, None)
        self.tasks = Supervisor("mesh", on_error)
        self._pump: asyncio.Task[None] | None = None
        self._joins: list[tuple[float, int, str, AgentHandle]] = []  # (deadline, tie, host, agent): a heap
        self._join_timer: asyncio.TimerHandle | None = None
        self._tie = 0
        self._sweep_hosts: set[str] = set()
        self._sweep_pass: asyncio.Task[None] | None = None

    # --- start ------------------------------------------------------------------------------------------

    async def start(self) -> None:
        """The listener (a fresh token) and the launcher; the pump starts reading."""
        ca = await asyncio.to_thread(ensure_ca, state_dir())
        token = Secret.generate()
        listener = ControllerListener(
            ssl_context=server_context(ca),
            token=token,
            run_id=self.run_id,
            host=self.settings.listen_host,
            settings=self.settings,
            inbox_limit=256,
        )
        self.listener = listener
        await listener.start()
        contact = AgentContact(host=self.settings.listen_host, port=listener.port, ca_pem=ca.cert_pem, token=token)
        self.launcher = self._make_launcher(contact)
        self.links.launcher = self.launcher
        self._pump = asyncio.get_running_loop().create_task(self._run_pump(listener))

    async def start_agents(self, names: Sequence[str]) -> Sequence[AgentHandle]:
        """Start the agents of ``names`` (they join on their own); each is watched and has its join deadline."""
        assert self.launcher is not None
        agents = await self.launcher.start_agents(names)
        self._watch(agents)
        return agents

    async def start_agent(self, name: str) -> AgentHandle:
        """Start (again) the agent of ``name``; raises :class:`~plush.errors.LaunchError`."""
        assert self.launcher is not None
        agent = await self.launcher.start_agent(name)
        self._watch([agent])
        return agent

    def _watch(self, agents: Iterable[AgentHandle]) -> None:
        for agent in agents:
            self.tasks.spawn(self._watch_agent(agent), name=f"watch {agent.name}")
            self._tie += 1
            heapq.heappush(self._joins, (agent.started_at + self.settings.join_timeout, self._tie, agent.name, agent))
        self._arm_join_timer()

    async def _watch_agent(self, agent: AgentHandle) -> None:
        code = await agent.wait()
        if self.current_agent(agent.name) is agent:
            self.client.agent_exited(agent.name, code)

    def _arm_join_timer(self) -> None:
        if self._join_timer is not None:
            self._join_timer.cancel()
            self._join_timer = None
        if self._joins:
            delay = max(0.0, self._joins[0][0] - time.monotonic())
            self._join_timer = asyncio.get_running_loop().call_later(delay, self._join_deadline)

    def _join_deadline(self) -> None:
        self._join_timer = None
        now = time.monotonic()
        expired = []
        while self._joins and self._joins[0][0] <= now:
            _, _, name, agent = heapq.heappop(self._joins)
            if self.current_agent(name) is agent and self.client.host_state(name) == "starting":
                expired.append(name)
        if expired:
            self.client.join_expired(expired)
        self._arm_join_timer()

    def current_agent(self, name: str) -> AgentHandle | None:
        return self.launcher.agent(name) if self.launcher is not None else None

    def agent_pid(self, name: str) -> int | None:
        """The pid of ``name``'s current agent process (None before it started or after it exited)."""
        agent = self.current_agent(name)
        return agent.pid if agent is not None and agent.returncode is None else None

    # --- the inbox ---------------------------------------------------------------------------------------

    async def _run_pump(self, listener: ControllerListener) -> None:
        while True:
            event = await listener.next_event()
            try:
                self._on_event(event)
            except Exception as exc:  # a bug, a hostile agent, a full disk: the client decides
                self.client.handling_failed(exc, event.peer.host)

    def _on_event(self, event: PeerEvent) -> None:
        peer, msg, reason = event
        name = peer.host or ""
        if msg is None:
            if self.links.is_current(name, peer):
                self.links.lost(name, reason or "connection closed")
            return
        if msg.type == "join":
            join = peer.join
            assert join is not None
            if join.get("resume"):
                self.links.resume(peer, name, join)
            elif not self.client.expects_join(name):
                peer.send(Message.of("reject", reason=f"no host named {peer.host!r} is expected in this run"))
                peer.close("rejected")
            else:
                self.links.attach(name, peer, join)
                self.client.joined(name)
            return
        if not self.links.is_current(name, peer):
            return
        if self.links.accept(name, msg):
            self.client.message(name, msg)
            self.links.processed(name, msg)

    # --- failed hosts --------------------------------------------------------------------------------------

    def kill_now(self, name: str) -> None:
        """SIGKILL the host's agent group now (a stopped agent dies too), and its other processes soon."""
        if self.launcher is not None:
            self.launcher.signal_agent(name, signal.SIGKILL)
        self.tasks.spawn(self.sweep(name), name=f"sweep {name}")

    async def kill(self, name: str) -> None:
        """:meth:`kill_now`, then wait (bounded) until the agent is gone and sweep once more."""
        agent = self.current_agent(name)
        self.kill_now(name)
        if agent is not None and agent.returncode is None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(agent.wait()), KILL_WAIT)
        await self.sweep(name)  # what a dying agent may still have started

    async def sweep(self, name: str) -> None:
        """SIGKILL every process ``name`` still runs for this run (its launcher's ``kill_leftovers``). Hosts
        failing together share one call (for the local launcher: one pass over /proc, in a thread)."""
        self._sweep_hosts.add(name)
        if self._sweep_pass is None:
            self._sweep_pass = self.tasks.spawn(self._sweep_pass_run(), name="sweep pass")
        if self._sweep_pass is not None:
            await asyncio.shield(self._sweep_pass)

    async def _sweep_pass_run(self) -> None:
        await asyncio.sleep(0)  # let the other failures of this moment join the pass
        hosts, self._sweep_hosts = self._sweep_hosts, set()
        self._sweep_pass = None
        if self.launcher is not None:
            await self.launcher.kill_leftovers(self.run_id, hosts)

    # --- the end ------------------------------------------------------------------------------------------

    async def close(self, late: Callable[[str, Message], None]) -> None:
        """Stop every agent: ``stop`` to each, replies awaited (see :meth:`_stop_agents`), the listener
        closed, the launcher's agents stopped, what they left swept; every task of the mesh ended."""
        if self._join_timer is not None:
            self._join_timer.cancel()
            self._join_timer = None
        if self._pump is not None:
            self._pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pump
        try:
            if self.listener is not None:
                await self._stop_agents(self.listener, late)
        except Exception:  # whatever went wrong, the agents below must still be stopped
            log.exception("error while stopping the agents")
        finally:
            try:
                if self.listener is not None:
                    await self.listener.close()
                if self.launcher is not None:
                    await _agents_exited(self.launcher, AGENT_EXIT_WAIT)
            finally:
                await self.tasks.close()
                if self.launcher is not None:
                    await self.launcher.stop_all()
                    await self.launcher.kill_leftovers(self.run_id, None)  # what a killed or hung agent left

    async def _stop_agents(self, listener: ControllerListener, late: Callable[[str, Message], None]) -> None:
        """Send ``stop`` to every connected agent and wait (bounded) until each replied or went away.

        The wait is ``stop_grace`` + :data:`STOP_MARGIN`, and at least :data:`STOP_MARGIN` after the last
        upload received (agents upload the outputs of the blocks that did not complete before they reply).
        An agent that comes back meanwhile (a resuming join) is rejected: the run is over, it stops. What
        the agents still report of their processes (:data:`LATE_KEPT`) goes to ``late``."""
        links = self.links
        links.cancel_timers()
        live = links.live_peers()
        for name in live:
            links.send(name, Message.of("stop", grace=self.settings.stop_grace, reason="the run is over"))
        deadline = time.monotonic() + self.settings.stop_grace + STOP_MARGIN
        waiting = set(live)
        try:
            while waiting and time.monotonic() < deadline:
                try:
                    event = await asyncio.wait_for(listener.next_event(), deadline - time.monotonic())
                except TimeoutError:
                    break
                name = event.peer.host or ""
                msg = event.message
                known = name in links.links
                current = links.is_current(name, event.peer)
                if msg is not None and msg.type == "join":
                    event.peer.send(Message.of("reject", reason="the run is over"))
                    event.peer.close("rejected")
                elif msg is None or msg.type == "stopped":
                    if current or not known:
                        waiting.discard(name)
                elif msg.type in LATE_KEPT and current and links.accept(name, msg):
                    late(name, msg)
                    if msg.type in ("upload", "upload.end"):
                        deadline = max(deadline, time.monotonic() + STOP_MARGIN)
        finally:
            links.sessions.close()


async def _agents_exited(launcher: Launcher, within: float) -> None:
    """Give agents that replied ``stopped`` a moment to exit by themselves (closing their link, sweeping
    their orphans) before the launcher signals the stragglers: a SIGTERM must not cut a clean exit short."""
    agents = launcher.alive()
    if agents:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.gather(*(a.wait() for a in agents)), within)
