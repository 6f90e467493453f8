"""The SSH launcher: agents on hosts reached by SSH, bootstrapped from nothing but sshd and a python3.

Role: the :class:`~plush.launch.base.Launcher` of ``type="ssh"`` pool hosts. For each host it takes the
connection of its SSH target (:class:`~plush.launch.sshconn.SSHConnections`: one per address, port and user,
shared by every logical host behind it) and starts the agent in a directory of its own
(``~/.plush/<workspace>/hosts/<name>/``) with ONE command when the host has a Python and the agent of this
hash (:mod:`plush.launch.remote`). When the command says what is missing, it probes the host once per target
(a Python >= 3.8, the cached agent, ``$HOME``), copies the agent zipapp (:mod:`plush.launch.bundle`) only when
the host lacks that hash (it is unpacked there with its bytecode, once), and starts again. With
``ssh_link = "tcp"`` the probe comes first, as every start's.

The agent's link (the ``ssh_link`` setting, :mod:`plush.launch.sshlinks`): ``channel`` (the default) -- the
agent speaks the protocol on its SSH session's stdin/stdout, handed to the listener as a Peer; after a drop
a new session relays to the agent's Unix socket -- or ``tcp`` -- TCP+TLS through an SSH remote port forward,
the agent redialling. Either way the agent outlives its SSH connection (it keeps its processes for
``agent_grace``) and the launcher re-dials SSH with back-off so that it resumes.

Failures: every host that cannot be bootstrapped is a line of :class:`LaunchErrors` (its cause in words:
authentication failed, host key changed, connection refused, timed out, no python3, python3 too old, sshd
refused the connection (MaxStartups)); the others start.

Leftovers: every process the agents start carries this launcher's mark (``PLUSH_SSH_RUN=<token>``);
:meth:`SSHLauncher.kill_leftovers` runs the agent's sweep on each target (``--sweep RUN_ID MARK HOST...``:
the processes of the run's hosts that carry the mark, found in ``/proc`` and SIGKILLed), as the local launcher
does on its machine.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import signal
from collections.abc import Callable, Collection, Coroutine, Iterable, Sequence

import asyncssh

from plush.errors import LaunchError
from plush.launch.base import AgentContact, Launcher, LaunchErrors
from plush.launch.bundle import AgentBundle, agent_bundle
from plush.launch.remote import (
    PYTHON_CANDIDATES,
    Probe,
    ProbeFailed,
    StartAnswer,
    probe_script,
    read_probe,
    signal_script,
    sweep_script,
)
from plush.launch.remote import upload_script as upload_command
from plush.launch.sshconn import SSHConnections, SSHFailure, SSHTarget
from plush.launch.sshlinks import COMMAND_TIMEOUT, ChannelLinks, ForwardLinks, SSHAgent
from plush.resources.host import Host

__all__ = ["SSHAgent", "SSHLauncher", "ssh_target"]

log = logging.getLogger(__name__)


def _text(data: bytes | str | None) -> str:
    return data.decode("utf-8", "replace") if isinstance(data, bytes) else data or ""


def ssh_target(host: Host) -> SSHTarget:
    """Where ``host``'s SSH connection goes: its address, its ``ssh_port`` attribute, its user, and its
    ``ssh_config`` attribute (the OpenSSH client config it is reached with; absent: the ``ssh_config`` setting)."""
    port = host.get("ssh_port")
    config = host.get("ssh_config")
    own = config if isinstance(config, str) and config.strip() else None
    return SSHTarget(host.address, int(port) if isinstance(port, float) else None, host.user, own)


class SSHLauncher(Launcher):
    """Starts agents on SSH hosts (see the module docstring)."""

    capabilities = frozenset({"start_agent", "close", "signal", "kill_leftovers"})

    def __init__(
        self,
        workspace: str,
        contact: AgentContact,
        host_of: Callable[[str], Host | None],
        *,
        connections: SSHConnections,
        stop_grace: float = 5.0,
        agent_grace: float = 60.0,
        bundle: AgentBundle | None = None,
        link: str = "channel",
    ) -> None:
        self.workspace = workspace
        self.contact = contact
        self.host_of = host_of
        self.conns = connections
        self.stop_grace = stop_grace
        self.agent_grace = agent_grace
        self.bundle = bundle or agent_bundle()
        self.agents: dict[str, SSHAgent] = {}
        #: uploads of the zipapp done by this launcher (a host that had it gets none)
        self.uploads = 0
        self._probes: dict[tuple[SSHTarget, str | None], asyncio.Task[Probe]] = {}
        self._uploads: dict[SSHTarget, asyncio.Task[None]] = {}
        self._tasks: set[asyncio.Task[object]] = set()
        self.closing = False
        #: this launcher's mark (``PLUSH_SSH_RUN``) on every process its agents start: sweeps kill only those
        self.token = "ssh-" + secrets.token_hex(8)
        if link not in ("channel", "tcp"):
            raise ValueError(f"ssh_link is 'channel' or 'tcp', not {link!r}")
        #: how agents are linked: over their SSH session, or TCP+TLS through a port forward
        self.links: ChannelLinks | ForwardLinks = ChannelLinks(self) if link == "channel" else ForwardLinks(self)

    def spawn(self, coro: Coroutine[object, object, object]) -> None:
        task: asyncio.Task[object] = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- starting -------------------------------------------------------------------------------------------

    async def start_agent(self, name: str) -> SSHAgent:
        (agent,) = await self.start_agents([name])
        return agent

    async def start_agents(self, names: Iterable[str]) -> Sequence[SSHAgent]:
        """Bootstrap every host at once (admission control bounds the handshakes per sshd); raises
        :class:`LaunchErrors` naming each host that failed, with the agents that did start."""
        names = list(names)
        results = await asyncio.gather(*(self._start(n) for n in names), return_exceptions=True)
        started: list[SSHAgent] = []
        failed: dict[str, str] = {}
        for name, result in zip(names, results, strict=True):
            if isinstance(result, SSHAgent):
                started.append(result)
            elif isinstance(result, (SSHFailure, ProbeFailed, LaunchError)):
                failed[name] = str(result)
            elif isinstance(result, BaseException) and not isinstance(result, Exception):
                raise result
            else:
                failed[name] = f"{type(result).__name__}: {result}"
        if failed:
            raise LaunchErrors(started, failed)
        return started

    async def _start(self, name: str) -> SSHAgent:
        host = self.host_of(name)
        if host is None:
            raise LaunchError(name, "not in the pool")
        target = ssh_target(host)
        python = host.get("python")
        probe_python = str(python) if python is not None else None
        conn = await self.conns.connection(target)
        if isinstance(self.links, ChannelLinks):
            return await self._start_channel(self.links, conn, target, name, probe_python)
        probe = await self._probe(conn, target, probe_python)
        if not probe.cached:
            await self._upload(conn, target, probe.python)
        return await self.links.launch(conn, target, name, probe.python)

    async def _start_channel(
        self, links: ChannelLinks, conn: asyncssh.SSHClientConnection, target: SSHTarget, name: str, python: str | None
    ) -> SSHAgent:
        """ONE command per host when all is there (a Python, the unpacked agent of this hash): it starts the
        agent. Else its answer says what is missing, and the probe (once per target) says whether the host has
        a Python of 3.8 or newer (the words of the failure when not): the agent is then uploaded (once per
        target) and started again with the Python found."""
        pythons: tuple[str, ...] = (python,) if python else PYTHON_CANDIDATES
        answer: StartAnswer | None = None
        for _attempt in range(3):
            started = await links.launch_one(conn, target, name, pythons)
            if isinstance(started, SSHAgent):
                return started
            answer = started
            probe = await self._probe(conn, target, python)  # raises the words of a missing or old Python
            if not probe.cached:
                await self._upload(conn, target, probe.python)
            elif answer.word != "missing" and pythons == (probe.python,):
                break  # the Python and the agent are there: the agent itself did not start
            pythons = (probe.python,)
        text = answer.text if answer is not None and answer.text else "the unpacked agent is still missing"
        raise SSHFailure(f"the agent did not start: {text[-300:]}")

    async def _run(self, conn: asyncssh.SSHClientConnection, command: str, stdin: bytes | None = None) -> str:
        try:
            async with asyncio.timeout(COMMAND_TIMEOUT):
                result = await conn.run(command, input=stdin, encoding=None, check=False)
        except TimeoutError as exc:
            raise SSHFailure(f"timed out running the bootstrap (after {COMMAND_TIMEOUT:g} s)") from exc
        except (asyncssh.Error, OSError) as exc:
            raise SSHFailure(f"the SSH connection failed during the bootstrap: {exc}") from exc
        out = _text(result.stdout)
        if result.exit_status not in (0, None):
            err = _text(result.stderr).strip()
            raise SSHFailure(f"the bootstrap command failed (exit {result.exit_status}): {err[-300:]}")
        return out

    async def _probe(self, conn: asyncssh.SSHClientConnection, target: SSHTarget, python: str | None) -> Probe:
        key = (target, python)
        task = self._probes.get(key)
        if task is None or (task.done() and task.exception() is not None):

            async def probe() -> Probe:
                return read_probe(await self._run(conn, probe_script(self.bundle.name, python)), python)

            task = self._probes[key] = asyncio.get_running_loop().create_task(probe())
        return await asyncio.shield(task)

    async def _upload(self, conn: asyncssh.SSHClientConnection, target: SSHTarget, python: str) -> None:
        """Copy the zipapp to ``target`` and unpack it there with ``python`` (once per target: concurrent
        callers share it)."""
        task = self._uploads.get(target)
        if task is None or (task.done() and task.exception() is not None):

            async def upload() -> None:
                await self._run(conn, upload_command(self.bundle.name, python), self.bundle.data)
                self.uploads += 1

            task = self._uploads[target] = asyncio.get_running_loop().create_task(upload())
        await asyncio.shield(task)

    # --- the rest of the interface ------------------------------------------------------------------------------

    def agent(self, name: str) -> SSHAgent | None:
        return self.agents.get(name)

    def alive(self) -> list[SSHAgent]:
        return [a for a in self.agents.values() if a.returncode is None]

    def address(self, name: str) -> str:
        """The host's address as its SSH config resolves it (``HostName``), else its pool address."""
        host = self.host_of(name)
        if host is None:
            return name
        return self.conns.hostname(ssh_target(host))

    def agent_state(self, name: str, pid: int | None) -> str | None:
        agent = self.agents.get(name)
        if agent is None or pid is None or agent.pid != pid or agent.returncode is None:
            return None
        return f"exited ({agent.returncode})"

    def signal_agent(self, name: str, sig: int) -> bool:
        agent = self.agents.get(name)
        if agent is None or agent.returncode is not None:
            return False
        self.spawn(self._signal(agent, sig))
        return True

    async def _signal(self, agent: SSHAgent, sig: int) -> None:
        with contextlib.suppress(SSHFailure, asyncssh.Error, OSError):
            conn = await self.conns.connection(agent.target)
            await conn.run(signal_script(agent.pid, sig), check=False)

    async def kill_leftovers(self, run_id: str, hosts: Collection[str] | None) -> list[int]:
        """SIGKILL what the processes of run ``run_id`` left on the SSH hosts ``hosts`` (every host this launcher
        started an agent on, when None): one remote ``/proc`` pass per SSH target, over its connection
        (re-dialled if need be), for the processes that carry this launcher's mark; the remote pids killed.
        A target that cannot be reached is skipped, with a warning."""
        targets: dict[SSHTarget, tuple[str, list[str]]] = {}
        for agent in self.agents.values():
            if hosts is None or agent.name in hosts:
                targets.setdefault(agent.target, (agent.python, []))[1].append(agent.name)
        chosen = [(t, py, None if hosts is None else names) for t, (py, names) in targets.items()]
        found = await asyncio.gather(*(self._sweep(t, py, run_id, names) for t, py, names in chosen))
        return sorted(pid for pids in found for pid in pids)

    async def _sweep(self, target: SSHTarget, python: str, run_id: str, names: list[str] | None) -> list[int]:
        command = sweep_script(python, self.bundle.name, run_id, self.token, names)
        try:
            conn = await self.conns.connection(target)
            out = await self._run(conn, command)
        except SSHFailure as exc:
            log.warning("cannot sweep the leftovers of run %s on %s: %s", run_id, target.address, exc)
            return []
        pids = [int(w) for w in out.split() if w.isdigit()]
        if pids:
            log.info("killed %d leftover process(es) of run %s on %s", len(pids), run_id, target.address)
        return pids

    async def stop_agent(self, name: str, grace: float | None = None) -> None:
        """SIGTERM the agent's group, SIGKILL after ``grace`` seconds, wait (bounded) for its exit."""
        agent = self.agents.get(name)
        if agent is None or agent.returncode is not None:
            return
        agent.stopping = True  # its link is not re-opened any more
        grace = self.stop_grace if grace is None else grace
        if grace > 0:
            await self._signal(agent, signal.SIGTERM)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(agent.wait(), grace)
        if agent.returncode is None:
            await self._signal(agent, signal.SIGKILL)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(agent.wait(), 5.0)
        agent.set_exit(-signal.SIGKILL)

    async def stop_all(self, grace: float | None = None) -> None:
        await asyncio.gather(*(self.stop_agent(n, grace) for n in list(self.agents)), return_exceptions=True)

    async def close(self) -> None:
        try:
            await self.stop_all()
        finally:
            self.closing = True
            for task in list(self._tasks):
                task.cancel()
            if self._tasks:
                await asyncio.gather(*self._tasks, return_exceptions=True)
            await self.conns.close()
