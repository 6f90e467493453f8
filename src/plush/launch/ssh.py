"""The SSH launcher: agents on hosts reached by SSH, bootstrapped from nothing but sshd and a python3.

Role: the :class:`~plush.launch.base.Launcher` of ``type="ssh"`` pool hosts. For each host it takes the
connection of its SSH target (:class:`~plush.launch.sshconn.SSHConnections`: one per address, port and user,
shared by every logical host behind it), probes the host once per target (:mod:`plush.launch.remote`: a
Python >= 3.8, the cached zipapp, ``$HOME``), copies the agent zipapp (:mod:`plush.launch.bundle`) only when
the host lacks that hash, opens one SSH remote port forward per connection to the controller's listener, and
starts the agent (``python3 ~/.cache/plush/agent-<hash>.pyz --connect 127.0.0.1:<forwarded port> ...``) in a
directory of its own (``~/.plush/<workspace>/hosts/<name>/``), detached from the SSH session (``setsid``).

The agent's link: TCP+TLS to the controller's listener, carried through the SSH connection by the remote
forward (the agent dials 127.0.0.1 on its host; no port is opened on the controller's network side; TLS with
the mesh's CA and token as for local agents). If the SSH connection drops, the agents go on (they keep their
processes for ``agent_grace``, redialling); the launcher re-dials SSH with back-off and forwards the same
remote port again, so they resume. An agent's exit is learnt from its start command (``exit N``) or, after
such a re-dial, by watching its pid (the code is then unknown: 255).

Failures: every host that cannot be bootstrapped is a line of :class:`LaunchErrors` (its cause in words:
authentication failed, host key changed, connection refused, timed out, no python3, python3 too old, sshd
refused the connection (MaxStartups)); the others start.

Not yet: the fabric over an SSH channel (the agent speaking on its session's stdin/stdout) and leftover
sweeps by run id on SSH hosts (capability ``kill_leftovers`` not declared; the agent's guard ends what a
killed agent left).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Callable, Coroutine, Iterable, Sequence

import asyncssh

from plush.errors import LaunchError
from plush.launch.base import AgentContact, Launcher, LaunchErrors
from plush.launch.bundle import AgentBundle, agent_bundle
from plush.launch.remote import Probe, ProbeFailed, host_dir, probe_script, read_probe, signal_script, start_script
from plush.launch.remote import upload_script as upload_command
from plush.launch.sshconn import SSHConnections, SSHFailure, SSHTarget
from plush.resources.host import Host

__all__ = ["SSHAgent", "SSHLauncher", "ssh_target"]

log = logging.getLogger(__name__)

#: seconds for a probe, an upload or an agent's start to answer
_COMMAND_TIMEOUT = 60.0
_REDIAL_BACKOFF = (0.5, 5.0)
_WATCH_INTERVAL = 1


def _text(data: bytes | str | None) -> str:
    return data.decode("utf-8", "replace") if isinstance(data, bytes) else data or ""


def ssh_target(host: Host) -> SSHTarget:
    """Where ``host``'s SSH connection goes: its address, its ``ssh_port`` attribute, its user."""
    port = host.get("ssh_port")
    return SSHTarget(host.address, int(port) if isinstance(port, float) else None, host.user)


class SSHAgent:
    """One agent started over SSH (its remote pid; its exit as its start command or a watch reports it)."""

    def __init__(self, name: str, target: SSHTarget, pid: int) -> None:
        self.name = name
        self.target = target
        self._pid = pid
        self.started_at = time.monotonic()
        self._code: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._tail: list[str] = []

    def __repr__(self) -> str:
        return f"<SSHAgent {self.name} pid={self._pid} rc={self.returncode}>"

    @property
    def pid(self) -> int:
        return self._pid

    @property
    def returncode(self) -> int | None:
        return self._code.result() if self._code.done() else None

    async def wait(self) -> int:
        return await asyncio.shield(self._code)

    def set_exit(self, code: int, tail: Sequence[str] = ()) -> None:
        if not self._code.done():
            self._tail = list(tail)
            self._code.set_result(code)

    def stderr_tail(self, lines: int = 20) -> str:
        return "\n".join(self._tail[-lines:])


class SSHLauncher(Launcher):
    """Starts agents on SSH hosts (see the module docstring)."""

    capabilities = frozenset({"start_agent", "close", "signal"})

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
        self._forwards: dict[SSHTarget, int] = {}
        self._forwarding: dict[SSHTarget, asyncio.Lock] = {}
        self._tasks: set[asyncio.Task[object]] = set()
        self._closing = False

    def _spawn(self, coro: Coroutine[object, object, object]) -> None:
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
        probe = await self._probe(conn, target, probe_python)
        if not probe.cached:
            await self._upload(conn, target)
        port = await self._forward(conn, target)
        return await self._launch(conn, target, name, probe, port)

    async def _run(self, conn: asyncssh.SSHClientConnection, command: str, stdin: bytes | None = None) -> str:
        try:
            async with asyncio.timeout(_COMMAND_TIMEOUT):
                result = await conn.run(command, input=stdin, encoding=None, check=False)
        except TimeoutError as exc:
            raise SSHFailure(f"timed out running the bootstrap (after {_COMMAND_TIMEOUT:g} s)") from exc
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

    async def _upload(self, conn: asyncssh.SSHClientConnection, target: SSHTarget) -> None:
        task = self._uploads.get(target)
        if task is None or (task.done() and task.exception() is not None):

            async def upload() -> None:
                await self._run(conn, upload_command(self.bundle.name), self.bundle.data)
                self.uploads += 1

            task = self._uploads[target] = asyncio.get_running_loop().create_task(upload())
        await asyncio.shield(task)

    async def _forward(self, conn: asyncssh.SSHClientConnection, target: SSHTarget) -> int:
        """The remote port that reaches the controller's listener through ``conn`` (one per connection; the
        same port again after a re-dial)."""
        lock = self._forwarding.setdefault(target, asyncio.Lock())
        async with lock:
            port = self._forwards.get(target)
            if port is not None:
                return port
            try:
                listener = await conn.forward_remote_port("127.0.0.1", 0, self.contact.host, self.contact.port)
            except (asyncssh.Error, OSError) as exc:
                why = f"sshd refused the port forward to the controller (AllowTcpForwarding?): {exc}"
                raise SSHFailure(why) from exc
            port = self._forwards[target] = listener.get_port()
            self._spawn(self._keep(conn, target))
            return port

    async def _launch(
        self, conn: asyncssh.SSHClientConnection, target: SSHTarget, name: str, probe: Probe, port: int
    ) -> SSHAgent:
        args = ["--connect", f"127.0.0.1:{port}", "--host", name]
        args += ["--server-name", self.contact.server_name or self.contact.host]
        try:
            hdir = host_dir(self.workspace, name)
        except ValueError as exc:
            raise LaunchError(name, f"an SSH host name must be a plain file name: {exc}") from exc
        command = start_script(probe.python, self.bundle.name, hdir, args)
        try:
            process = await conn.create_process(command, encoding="utf-8", errors="replace")
            process.stdin.write(self.contact.token.reveal() + "\n" + self.contact.ca_pem.decode())
            process.stdin.write_eof()
            async with asyncio.timeout(_COMMAND_TIMEOUT):
                first = await process.stdout.readline()
        except TimeoutError as exc:
            raise SSHFailure("timed out starting the agent") from exc
        except (asyncssh.Error, OSError) as exc:
            raise SSHFailure(f"the SSH connection failed while starting the agent: {exc}") from exc
        word, _, pid = first.strip().partition(" ")
        if word != "pid" or not pid.isdigit():
            rest = first + (await process.stdout.read())
            raise SSHFailure(f"the agent did not start: {rest.strip()[-300:] or 'no answer'}")
        agent = SSHAgent(name, target, int(pid))
        self.agents[name] = agent
        self._spawn(self._follow(agent, process))
        return agent

    async def _follow(self, agent: SSHAgent, process: asyncssh.SSHClientProcess[str]) -> None:
        """Read the start command's ``exit N`` (the agent's exit); an EOF without it: the connection dropped."""
        lines: list[str] = []
        code: int | None = None
        with contextlib.suppress(asyncssh.Error, OSError):
            async for line in process.stdout:
                word, _, rest = line.strip().partition(" ")
                if code is None and word == "exit" and rest.lstrip("-").isdigit():
                    code = int(rest)
                elif code is not None:
                    lines.append(line.rstrip("\n"))
        if code is not None:
            agent.set_exit(code, lines)

    # --- keeping the connections ----------------------------------------------------------------------------

    async def _keep(self, conn: asyncssh.SSHClientConnection, target: SSHTarget) -> None:
        """When ``conn`` drops while agents behind it run: re-dial with back-off (up to ``agent_grace``),
        forward the same remote port again, and watch the agents' pids."""
        await conn.wait_closed()
        if self._closing:
            return
        mine = [a for a in self.agents.values() if a.target == target and a.returncode is None]
        if not mine:
            self._forwards.pop(target, None)
            return
        log.warning("SSH connection to %s lost; re-dialling (agents keep running)", target.address)
        self.conns.forget(target)
        deadline = time.monotonic() + max(self.agent_grace, 1.0)
        delay = _REDIAL_BACKOFF[0]
        port = self._forwards[target]
        while not self._closing:
            try:
                conn = await self.conns.connection(target)
                await conn.forward_remote_port("127.0.0.1", port, self.contact.host, self.contact.port)
            except (SSHFailure, asyncssh.Error, OSError) as exc:
                if time.monotonic() + delay > deadline:
                    log.warning("SSH connection to %s not back: %s", target.address, exc)
                    for agent in mine:
                        agent.set_exit(255, [f"its SSH connection was lost and not re-established: {exc}"])
                    return
                await asyncio.sleep(delay)
                delay = min(delay * 2, _REDIAL_BACKOFF[1])
                continue
            for agent in mine:
                self._spawn(self._watch_pid(conn, agent))
            self._spawn(self._keep(conn, target))
            return

    async def _watch_pid(self, conn: asyncssh.SSHClientConnection, agent: SSHAgent) -> None:
        pid = agent.pid
        command = f"while kill -0 {pid} 2>/dev/null; do sleep {_WATCH_INTERVAL}; done; echo gone"
        with contextlib.suppress(asyncssh.Error, OSError):
            result = await conn.run(command, check=False)
            if "gone" in str(result.stdout):
                agent.set_exit(255, ["exited while its SSH connection was re-established (code unknown)"])

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
        self._spawn(self._signal(agent, sig))
        return True

    async def _signal(self, agent: SSHAgent, sig: int) -> None:
        with contextlib.suppress(SSHFailure, asyncssh.Error, OSError):
            conn = await self.conns.connection(agent.target)
            await conn.run(signal_script(agent.pid, sig), check=False)

    async def stop_agent(self, name: str, grace: float | None = None) -> None:
        """SIGTERM the agent's group, SIGKILL after ``grace`` seconds, wait (bounded) for its exit."""
        agent = self.agents.get(name)
        if agent is None or agent.returncode is not None:
            return
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
            self._closing = True
            for task in list(self._tasks):
                task.cancel()
            if self._tasks:
                await asyncio.gather(*self._tasks, return_exceptions=True)
            await self.conns.close()
