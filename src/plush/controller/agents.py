"""The mesh's agents as processes: started through the launcher, watched, timed, killed, swept.

Role. :class:`AgentProcesses` is the part of the :class:`~plush.controller.mesh.Mesh` that talks to its
:class:`~plush.launch.base.Launcher`: it starts agents (:meth:`AgentProcesses.start`), watches each one's
exit (a task of the mesh's supervisor; the exit of a host's *current* agent is reported, a replaced
agent's is not), and kills a failed host: its
agent's process group at once (``Launcher.signal_agent``), then what the host still runs for the run in
progress (``Launcher.kill_leftovers``: hosts failing in the same moment share one call, for the local
launcher one pass over ``/proc`` in a thread).

Invariants: every task it spawns belongs to the mesh's supervisor; it decides nothing (the hosts'
lifecycles do, and keep their join deadlines); where a host is, it asks the launcher.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable, Sequence

from plush.config import Settings
from plush.controller.supervisor import Supervisor
from plush.launch.base import AgentHandle, Launcher, LaunchErrors

__all__ = ["KILL_WAIT", "AgentProcesses"]

#: seconds to wait for a failed host's SIGKILLed agent to be gone before it is restarted
KILL_WAIT = 5.0


class AgentProcesses:
    """Agent processes of the mesh (see the module docstring)."""

    def __init__(
        self,
        settings: Settings,
        tasks: Supervisor,
        *,
        on_exit: Callable[[str, int], None],
        run_id: Callable[[], str],
    ) -> None:
        self.settings = settings
        self.tasks = tasks
        self._on_exit = on_exit
        self._run_id = run_id
        self.launcher: Launcher | None = None
        self._sweep_hosts: set[str] = set()
        self._sweep_pass: asyncio.Task[None] | None = None

    async def start(self, names: Sequence[str]) -> Sequence[AgentHandle]:
        """Start the agents of ``names``; each is watched (those started when the launcher raises
        :class:`~plush.launch.base.LaunchErrors` too)."""
        assert self.launcher is not None
        if not names:
            return []
        try:
            agents = await self.launcher.start_agents(names)
        except LaunchErrors as exc:  # some started: they are watched too
            for agent in exc.started:
                self.tasks.spawn(self._watch(agent), name=f"watch {agent.name}")
            raise
        for agent in agents:
            self.tasks.spawn(self._watch(agent), name=f"watch {agent.name}")
        return agents

    def current(self, name: str) -> AgentHandle | None:
        """The agent last started for ``name`` (running or not)."""
        return self.launcher.agent(name) if self.launcher is not None else None

    def pid(self, name: str) -> int | None:
        """The pid of ``name``'s current agent process (None before it started or after it exited)."""
        agent = self.current(name)
        return agent.pid if agent is not None and agent.returncode is None else None

    async def _watch(self, agent: AgentHandle) -> None:
        code = await agent.wait()
        if self.current(agent.name) is agent:
            self._on_exit(agent.name, code)

    # --- killing ---------------------------------------------------------------------------------------------

    def kill_now(self, name: str) -> None:
        """SIGKILL the host's agent group now (a stopped agent dies too), and its other processes soon."""
        if self.launcher is not None:
            self.launcher.signal_agent(name, signal.SIGKILL)
        self.tasks.spawn(self.sweep(name), name=f"sweep {name}")

    async def kill(self, name: str) -> None:
        """:meth:`kill_now`, then wait (bounded) until the agent is gone and sweep once more."""
        agent = self.current(name)
        self.kill_now(name)
        if agent is not None and agent.returncode is None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(agent.wait()), KILL_WAIT)
        await self.sweep(name)  # what a dying agent may still have started

    async def sweep(self, name: str) -> None:
        """SIGKILL every process ``name`` still runs for the run in progress; hosts failing together share
        one ``kill_leftovers`` call."""
        self._sweep_hosts.add(name)
        if self._sweep_pass is None:
            self._sweep_pass = self.tasks.spawn(self._sweep_pass_run(), name="sweep pass")
        if self._sweep_pass is not None:
            await asyncio.shield(self._sweep_pass)

    async def _sweep_pass_run(self) -> None:
        await asyncio.sleep(0)  # let the other failures of this moment join the pass
        hosts, self._sweep_hosts = self._sweep_hosts, set()
        self._sweep_pass = None
        run_id = self._run_id()
        if self.launcher is not None and run_id:
            await self.launcher.kill_leftovers(run_id, hosts)

    async def exited(self, within: float) -> None:
        """Give the agents a moment (``within`` seconds) to exit by themselves."""
        agents = self.launcher.alive() if self.launcher is not None else []
        if agents:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.gather(*(a.wait() for a in agents)), within)

    def statistics(self) -> dict[str, int]:
        return {"alive": len(self.launcher.alive()) if self.launcher else 0}
