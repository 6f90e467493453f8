"""How an SSH host's agent is linked to the controller: over its SSH session (the default), or TCP+TLS.

Role: the two link kinds of :class:`~plush.launch.ssh.SSHLauncher` (the ``ssh_link`` setting; docs/ssh.md,
"The agent's link"). Each starts the agent of one host on an open SSH connection, knows when it exits, and
keeps its link going when the SSH connection drops.

- :class:`ChannelLinks` (``ssh_link = "channel"``): the agent is the SSH session's command itself
  (``exec``: its pid is the shell's, printed as the one-line preamble) and speaks the protocol on the
  session's stdin/stdout (:mod:`plush.agent.stdio`); the session is handed to the listener as a Peer
  (:mod:`plush.fabric.sshstdio`). No port is opened on either side. The session's exit status is the
  agent's. When its link ends while the agent runs (the SSH connection dropped, or a peer was declared
  dead), the agent keeps its processes for ``agent_grace`` and waits on its Unix socket; the launcher
  re-dials SSH (back-off, up to ``agent_grace`` since the last joined link) and opens a session running the
  relay (:mod:`plush.agent.relay`) to that socket, over which the agent resumes. A relay that finds no
  agent says so (exit 3): the agent has exited (code unknown: 255, unless its first session told).
- :class:`ForwardLinks` (``ssh_link = "tcp"``): the agent is started detached (``setsid``) and dials
  TCP+TLS to ``127.0.0.1:<port>`` on its host, an SSH remote port forward to the controller's listener (one
  per connection); after a drop the launcher re-dials and forwards the same port again, and the agent
  redials itself. Its exit comes from its start command (``exit N``) or, after a re-dial, from watching its
  pid (255).

Invariants: an agent's exit is set once (the first to know wins); nothing here decides about the run: a link
that ends is the listener's news to the mesh, as for any Peer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Coroutine, Sequence
from typing import Protocol

import asyncssh

from plush.agent.relay import EXIT_WAIT as RELAY_EXIT_WAIT
from plush.agent.relay import NO_AGENT
from plush.fabric.sshstdio import StdioSession
from plush.launch.base import AgentContact
from plush.launch.bundle import AgentBundle
from plush.launch.remote import StartAnswer, host_dir, read_start, relay_script, start_script, stdio_start_script
from plush.launch.sshconn import SSHConnections, SSHFailure, SSHTarget

__all__ = ["COMMAND_TIMEOUT", "ChannelLinks", "ForwardLinks", "SSHAgent"]

log = logging.getLogger(__name__)

#: seconds for a probe, an upload or an agent's start to answer
COMMAND_TIMEOUT = 60.0
_REDIAL_BACKOFF = (0.5, 5.0)
_WATCH_INTERVAL = 1
#: seconds an agent whose link ended gets to exit (its session then says how) before a relay is opened
_EXIT_MOMENT = 1.0


class SSHAgent:
    """One agent started over SSH (its remote pid; its exit as its session or a watch reports it)."""

    def __init__(self, name: str, target: SSHTarget, pid: int, python: str = "python3", hdir: str = "") -> None:
        self.name = name
        self.target = target
        self._pid = pid
        self.python = python
        self.hdir = hdir
        self.started_at = time.monotonic()
        #: set by the launcher's stop: its link is not re-opened any more
        self.stopping = False
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


class LinkOwner(Protocol):
    """What a link kind asks of its launcher (:class:`plush.launch.ssh.SSHLauncher` is the one)."""

    workspace: str
    contact: AgentContact
    conns: SSHConnections
    agent_grace: float
    bundle: AgentBundle
    agents: dict[str, SSHAgent]
    closing: bool
    token: str

    def spawn(self, coro: Coroutine[object, object, object]) -> None: ...


def _hdir(launcher: LinkOwner, name: str) -> str:
    try:
        return host_dir(launcher.workspace, name)
    except ValueError as exc:
        raise SSHFailure(f"an SSH host name must be a plain file name: {exc}") from exc


class ChannelLinks:
    """Agents speaking on their SSH session's stdio, relays after a drop (see the module docstring)."""

    def __init__(self, launcher: LinkOwner) -> None:
        self.launcher = launcher

    async def launch_one(
        self, conn: asyncssh.SSHClientConnection, target: SSHTarget, name: str, pythons: Sequence[str]
    ) -> SSHAgent | StartAnswer:
        """Start the agent with ONE command (:func:`~plush.launch.remote.stdio_start_script`): the agent, or the
        answer that says what the host lacks (the launcher provides it and calls again)."""
        launcher = self.launcher
        if launcher.contact.adopt is None:
            raise SSHFailure("this controller's listener cannot take SSH sessions (no adopt)")
        hdir = _hdir(launcher, name)
        command = stdio_start_script(pythons, launcher.bundle.name, hdir, ["--host", name], launcher.token)
        session = await self._open(conn, command, name)
        try:
            # a command that answered what is missing may have ended already: its answer is read all the same
            with contextlib.suppress(BrokenPipeError, asyncssh.Error, OSError):
                session.write((launcher.contact.token.reveal() + "\n").encode())
            async with asyncio.timeout(COMMAND_TIMEOUT):
                first = await session.preamble
        except EOFError as exc:  # no line: the command failed (what it said on stderr), or the session dropped
            session.close()
            rest = session.stderr_tail().strip()[-300:]
            return StartAnswer("other", text=rest or str(exc))
        except TimeoutError as exc:
            session.close()
            rest = session.stderr_tail().strip()[-300:]
            raise SSHFailure(f"the agent did not start: {rest or exc}") from exc
        answer = read_start(first)
        if answer.word != "pid":
            session.close()
            return answer
        agent = SSHAgent(name, target, answer.pid, answer.python, hdir)
        launcher.agents[name] = agent
        session.attach(launcher.contact.adopt(f"ssh:{name}"))
        launcher.spawn(self._exit_of(agent, session, conn))
        launcher.spawn(self._tend(agent, session, session))
        return agent

    async def _open(self, conn: asyncssh.SSHClientConnection, command: str, name: str) -> StdioSession:
        try:
            async with asyncio.timeout(self.launcher.conns.connect_timeout):
                _chan, session = await conn.create_session(lambda: StdioSession(f"ssh:{name}"), command, encoding=None)
        except TimeoutError as exc:
            conn.close()  # a connection that cannot open a session is dead: the next call dials anew
            raise SSHFailure("timed out opening an SSH session") from exc
        except (asyncssh.Error, OSError) as exc:
            raise SSHFailure(f"the SSH connection failed while opening a session: {exc}") from exc
        assert isinstance(session, StdioSession)
        return session

    async def _exit_of(self, agent: SSHAgent, session: StdioSession, conn: asyncssh.SSHClientConnection) -> None:
        """The agent's first session ends when the agent exits (its exit status) or the connection drops."""
        await session.closed
        code: int | None = session.exit_status
        if session.exit_signal is not None:
            number = getattr(signal, f"SIG{session.exit_signal}", None)
            code = -int(number) if number is not None else 255
        if code is None:
            return  # the connection dropped: the agent lives on, or a relay finds it gone
        tail: list[str] = []
        if code != 0 and not conn.is_closed():  # why: the end of its log
            with contextlib.suppress(asyncssh.Error, OSError, TimeoutError):
                async with asyncio.timeout(5.0):
                    done = await conn.run(f'tail -n 20 "$HOME"/{agent.hdir}/agent.log', check=False)
                tail = str(done.stdout or "").splitlines()
        agent.set_exit(code, tail)

    async def _tend(self, agent: SSHAgent, first: StdioSession, session: StdioSession) -> None:
        """Re-open the agent's link (a relay) each time it ends while the agent runs."""
        launcher = self.launcher
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(launcher.agent_grace, 1.0)
        while True:
            await session.link_over
            if session.joined:
                deadline = loop.time() + max(launcher.agent_grace, 1.0)
            # an agent that closed its link to exit: its first session's exit status, or its relay, says so
            moment = _EXIT_MOMENT if session is first else _EXIT_MOMENT + RELAY_EXIT_WAIT
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(session.closed), moment)
            if session is not first and session.exit_status == NO_AGENT:
                with contextlib.suppress(TimeoutError):  # the first session, if it still lives, has the code
                    await asyncio.wait_for(asyncio.shield(first.closed), _EXIT_MOMENT)
                agent.set_exit(255, ["exited while its SSH session was re-established (code unknown)"])
                return
            if agent.returncode is not None or agent.stopping or launcher.closing:
                return
            relay = await self._reopen(agent, deadline)
            if relay is None:
                return
            session = relay

    async def _reopen(self, agent: SSHAgent, deadline: float) -> StdioSession | None:
        """A relay session to ``agent`` (re-dialling SSH with back-off until ``deadline``), or None."""
        launcher = self.launcher
        loop = asyncio.get_running_loop()
        delay = _REDIAL_BACKOFF[0]
        script = relay_script(agent.python, launcher.bundle.name, agent.hdir)
        while agent.returncode is None and not agent.stopping and not launcher.closing:
            session: StdioSession | None = None
            try:
                conn = await launcher.conns.connection(agent.target)
                session = await self._open(conn, script, agent.name)
                try:
                    async with asyncio.timeout(launcher.conns.connect_timeout):
                        await session.preamble
                except TimeoutError as exc:
                    conn.close()
                    raise SSHFailure("timed out starting a relay") from exc
            except (SSHFailure, asyncssh.Error, OSError, EOFError) as exc:
                if session is not None and session.exit_status == NO_AGENT:  # its directory is gone
                    agent.set_exit(255, ["exited while its SSH session was re-established (code unknown)"])
                    return None
                if loop.time() + delay > deadline:
                    log.warning("the link of %s not back: %s", agent.name, exc)
                    agent.set_exit(255, [f"its SSH connection was lost and not re-established: {exc}"])
                    return None
                await asyncio.sleep(delay)
                delay = min(delay * 2, _REDIAL_BACKOFF[1])
                continue
            adopt = launcher.contact.adopt
            try:
                peer = adopt(f"ssh:{agent.name}") if adopt is not None else None
            except ConnectionError:
                peer = None
            if peer is None:  # the controller is closing
                session.close()
                return None
            session.attach(peer)
            return session
        return None


class ForwardLinks:
    """Agents dialling TCP+TLS through an SSH remote port forward (see the module docstring)."""

    def __init__(self, launcher: LinkOwner) -> None:
        self.launcher = launcher
        self._forwards: dict[SSHTarget, int] = {}
        self._forwarding: dict[SSHTarget, asyncio.Lock] = {}

    async def launch(self, conn: asyncssh.SSHClientConnection, target: SSHTarget, name: str, python: str) -> SSHAgent:
        port = await self._forward(conn, target)
        launcher = self.launcher
        contact = launcher.contact
        args = ["--connect", f"127.0.0.1:{port}", "--host", name]
        args += ["--server-name", contact.server_name or contact.host]
        hdir = _hdir(launcher, name)
        command = start_script(python, launcher.bundle.name, hdir, args, launcher.token)
        try:
            process = await conn.create_process(command, encoding="utf-8", errors="replace")
            process.stdin.write(contact.token.reveal() + "\n" + contact.ca_pem.decode())
            process.stdin.write_eof()
            async with asyncio.timeout(COMMAND_TIMEOUT):
                first = await process.stdout.readline()
        except TimeoutError as exc:
            raise SSHFailure("timed out starting the agent") from exc
        except (asyncssh.Error, OSError) as exc:
            raise SSHFailure(f"the SSH connection failed while starting the agent: {exc}") from exc
        word, _, pid = first.strip().partition(" ")
        if word != "pid" or not pid.isdigit():
            rest = first + (await process.stdout.read())
            raise SSHFailure(f"the agent did not start: {rest.strip()[-300:] or 'no answer'}")
        agent = SSHAgent(name, target, int(pid), python, hdir)
        launcher.agents[name] = agent
        launcher.spawn(self._follow(agent, process))
        return agent

    async def _forward(self, conn: asyncssh.SSHClientConnection, target: SSHTarget) -> int:
        """The remote port that reaches the controller's listener through ``conn`` (one per connection; the
        same port again after a re-dial)."""
        lock = self._forwarding.setdefault(target, asyncio.Lock())
        contact = self.launcher.contact
        async with lock:
            port = self._forwards.get(target)
            if port is not None:
                return port
            try:
                listener = await conn.forward_remote_port("127.0.0.1", 0, contact.host, contact.port)
            except (asyncssh.Error, OSError) as exc:
                why = f"sshd refused the port forward to the controller (AllowTcpForwarding?): {exc}"
                raise SSHFailure(why) from exc
            port = self._forwards[target] = listener.get_port()
            self.launcher.spawn(self._keep(conn, target))
            return port

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

    async def _keep(self, conn: asyncssh.SSHClientConnection, target: SSHTarget) -> None:
        """When ``conn`` drops while agents behind it run: re-dial with back-off (up to ``agent_grace``),
        forward the same remote port again, and watch the agents' pids."""
        launcher = self.launcher
        await conn.wait_closed()
        if launcher.closing:
            return
        mine = [a for a in launcher.agents.values() if a.target == target and a.returncode is None]
        if not mine:
            self._forwards.pop(target, None)
            return
        log.warning("SSH connection to %s lost; re-dialling (agents keep running)", target.address)
        launcher.conns.forget(target)
        deadline = time.monotonic() + max(launcher.agent_grace, 1.0)
        delay = _REDIAL_BACKOFF[0]
        port = self._forwards[target]
        contact = launcher.contact
        while not launcher.closing:
            try:
                conn = await launcher.conns.connection(target)
                await conn.forward_remote_port("127.0.0.1", port, contact.host, contact.port)
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
                launcher.spawn(self._watch_pid(conn, agent))
            launcher.spawn(self._keep(conn, target))
            return

    async def _watch_pid(self, conn: asyncssh.SSHClientConnection, agent: SSHAgent) -> None:
        pid = agent.pid
        command = f"while kill -0 {pid} 2>/dev/null; do sleep {_WATCH_INTERVAL}; done; echo gone"
        with contextlib.suppress(asyncssh.Error, OSError):
            result = await conn.run(command, check=False)
            if "gone" in str(result.stdout):
                agent.set_exit(255, ["exited while its SSH connection was re-established (code unknown)"])
