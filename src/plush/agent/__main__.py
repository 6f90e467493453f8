"""``python -m plush.agent``: start an agent, join the controller, and hand over to the runtime.

    python -m plush.agent --connect 127.0.0.1:PORT --ca CA.pem --token-file TOKEN --host local-3 --workdir DIR
    python3 agent-<hash>.pyz --stdio agent.sock --token-file TOKEN --host node1 --workdir DIR   (over SSH)

The token is read from a file (0600, written by the launcher) or from stdin with ``--token-file -``; it is
never a command-line argument and never logged. The agent dials the controller with TLS trusting only
``--ca``, joins, waits for ``prepare``, replies ``prepared`` and runs the runtime until it returns (a clean
stop: exit 0) or its channel ends (exit 1). Before ``prepared`` a lost link ends the agent at once; after it,
the runtime talks to an :class:`~plush.agent.session.AgentSession`, which outlives broken connections:
processes keep running, their output is kept (in RAM, then in a spool next to the working directory, up to
``output_buffer_bytes``), the agent redials with back-off and resumes, and only a controller that stays away
for ``agent_grace`` seconds (both from ``prepare``'s settings, an
:class:`~plush.protocol.agentsettings.AgentSettings`; a setting it does not carry takes the one default both
sides share) or rejects the agent makes it stop its processes and exit 1. While the session lasts, the agent's
warnings and errors also go to the controller as ``log`` messages (:mod:`plush.agent.logforward`). Before
anything else the agent starts its guard (:mod:`plush.agent.guard`): should the agent be killed outright, the
guard ends the processes it left. The minimal runtime keeps the bare link (it tests the overlay alone). The
runtime is imported and built BEFORE the agent dials, so its event loop is never blocked by an import once the
controller expects answers and heartbeats; after ``stopped`` the agent exits promptly (it does not wait for
the controller's half of the TLS close).
With ``--stdio SOCKET`` (the SSH launcher's agents) there is no dial: the first link is the agent's stdin and
stdout (its SSH session), and after a break the session "redials" by taking the next connection of a relay
on the Unix socket ``SOCKET`` (:mod:`plush.agent.stdio`); the join, its token and the resume are the same.
Local agents are usually not started by this command but forked by :mod:`plush.agent.zygote`, which
imports this module once and calls :func:`main` in each child.

The runtime is the plug-in point for the agent's execution engine: if a module ``plush.agent.runtime``
exists, its ``create_runtime(host: str, workdir: pathlib.Path) -> Runtime`` is used; otherwise (or with
``--runtime minimal``) :class:`MinimalRuntime`, which installs nothing, executes nothing, and obeys ``stop``.
Whatever the runtime, the agent serves the distributed shell's ``exec`` requests from its join to its end
(:mod:`plush.agent.execs`, wrapped around the channel the runtime reads).

Ships to agents: standard library only, Python 3.8 syntax.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import importlib.util
import logging
import os
import signal
import socket
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from plush import __version__
from plush.agent.execs import ExecChannel, Execs, exec_dir
from plush.agent.guard import Guard, start_guard
from plush.agent.link import AgentLink, Channel, LinkClosed, Runtime, client_ssl_context
from plush.agent.logforward import LogForwarder
from plush.agent.outbox import SpoolOutbox
from plush.agent.session import AgentSession
from plush.agent.stdio import Rendezvous, stdio_streams, take_stdio
from plush.errors import PlushError, ProtocolError
from plush.processes.tree import enable_subreaper, has_children, reap_all_descendants
from plush.protocol.agentsettings import AgentSettings
from plush.protocol.messages import Message
from plush.protocol.secret import Secret

log = logging.getLogger("plush.agent")

#: seconds the agent waits for the TLS close to complete before it exits
_CLOSE_WAIT = 0.25
#: the agent pings a controller it has not heard for max(floor, 2 x the controller's own silence timeout)
#: seconds and gives the link up after max(floor, 2 x ping_timeout) more; generous, since the controller
#: is the busy side and a false alarm costs a reconnection
_SILENCE_FLOOR = 10.0


class MinimalRuntime:
    """The runtime used until the real one exists: ``go install`` -> ``installed []``, ``go execute`` ->
    ``finished ok``, ``end`` -> ``ended``, a new ``prepare`` -> ``prepared``, ``stop`` -> ``stopped`` and
    return. Everything else is logged and ignored."""

    async def run(self, link: Channel, prepare: Message) -> None:
        async for msg in link:
            if msg.type == "stop":
                link.send(Message.of("stopped"))
                return
            if msg.type == "end":
                link.send(Message.of("ended"))
            elif msg.type == "prepare":
                link.send(Message.of("prepared"))
            elif msg.type == "go":
                if msg["stage"] == "install":
                    link.send(Message.of("installed", software=[]))
                else:
                    link.send(Message.of("finished", ok=True))
            else:
                log.info("minimal runtime ignores %r", msg.type)
        raise LinkClosed("the controller went away")


def load_runtime(host: str, workdir: Path, choice: str = "auto") -> Runtime:
    """``plush.agent.runtime.create_runtime(host, workdir)`` when that module exists (and ``choice`` is
    ``"auto"``), else the minimal runtime."""
    if choice == "minimal" or importlib.util.find_spec("plush.agent.runtime") is None:
        return MinimalRuntime()
    module = importlib.import_module("plush.agent.runtime")
    runtime: Runtime = module.create_runtime(host=host, workdir=workdir)
    return runtime


def parse_address(text: str) -> Tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        raise argparse.ArgumentTypeError("expected HOST:PORT, got {!r}".format(text))
    return host.strip("[]"), int(port)


def parse_args(argv: Optional[List[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m plush.agent",
        description="The Plush agent.",
        allow_abbrev=False,  # "--token SECRET" must not pass for "--token-file"
    )
    parser.add_argument("--connect", type=parse_address, metavar="HOST:PORT", help="dial the controller (TLS)")
    parser.add_argument(
        "--stdio", metavar="SOCKET", help="speak on stdin/stdout (an SSH session), later sessions relayed on SOCKET"
    )
    parser.add_argument(
        "--preamble",
        metavar="PYTHON",
        help="with --stdio: first print 'pid N PYTHON' on stdout (the SSH session's preamble: started, and by what)",
    )
    parser.add_argument("--ca", type=Path, help="the controller's CA certificate (PEM; with --connect)")
    parser.add_argument("--token-file", required=True, help="file holding the join token, or - for stdin")
    parser.add_argument("--host", required=True, help="this host's name in the controller's pool")
    parser.add_argument("--workdir", required=True, type=Path)
    parser.add_argument("--server-name", default=None, help="name to check in the controller's certificate")
    parser.add_argument("--connect-timeout", type=float, default=30.0)
    parser.add_argument("--log-level", default="INFO")
    parser.add_argument(
        "--runtime",
        choices=("auto", "minimal"),
        default="auto",
        help="minimal: join, answer go and stop, run nothing (to test the overlay alone)",
    )
    args = parser.parse_args(argv)
    if (args.connect is None) == (args.stdio is None):
        parser.error("give one of --connect HOST:PORT and --stdio SOCKET")
    if args.connect is not None and args.ca is None:
        parser.error("--connect needs --ca")
    return args


def read_token(source: str) -> Secret:
    text = sys.stdin.readline() if source == "-" else Path(source).read_text(encoding="utf-8")
    return Secret(text.strip())


async def serve(args: argparse.Namespace, guard: Optional[Guard] = None) -> int:
    """Join, prepare, run the runtime; the exit status of the agent."""
    if args.stdio is not None:
        rendezvous = Rendezvous(args.stdio)
        await rendezvous.start()
        try:
            return await _serve(args, guard, rendezvous)
        finally:
            await rendezvous.close()
    return await _serve(args, guard, None)


async def _serve(args: argparse.Namespace, guard: Optional[Guard], rendezvous: Optional[Rendezvous]) -> int:
    workdir = args.workdir.resolve()
    join = {
        "host": args.host,
        "pid": os.getpid(),
        "hostname": socket.gethostname(),
        "python": "{}.{}.{}".format(*sys.version_info[:3]),
        "workdir": str(workdir),
        "agent_version": __version__,
    }
    # import and build the runtime BEFORE joining: once the link is up, the controller expects answers and
    # heartbeats, and a long import would block the event loop (a loaded machine could take seconds)
    runtime = load_runtime(args.host, workdir, args.runtime)
    token = read_token(args.token_file)
    host, port = args.connect if rendezvous is None else ("", 0)
    ssl_context = client_ssl_context(args.ca.read_bytes()) if rendezvous is None else None
    if rendezvous is not None:
        where = "over its SSH session"
        reader, writer = await stdio_streams(*args.stdio_fds)
        link = await AgentLink.over(
            reader, writer, token=token, join=join, peer="stdio", connect_timeout=args.connect_timeout
        )
    else:
        assert ssl_context is not None
        where = "{}:{}".format(host, port)
        link = await AgentLink.connect(
            host,
            port,
            ssl_context=ssl_context,
            token=token,
            join=join,
            server_hostname=args.server_name,
            connect_timeout=args.connect_timeout,
            retry_dropped=True,  # a controller flooded with unauthenticated connections may drop ours: dial again
        )
    execs = Execs(args.host, exec_dir(str(workdir)))  # ``exec`` requests, served in every state
    try:
        log.info("joined %s as %s", where, args.host)
        first = await ExecChannel(link, execs).recv()  # an idle agent serves ``exec`` while it waits
        if first.type == "stop":
            link.send(Message.of("stopped"))
            return 0
        if first.type != "prepare":
            raise ProtocolError("expected 'prepare', got {!r}".format(first.type))
        link.send(Message.of("prepared"))
        if isinstance(runtime, MinimalRuntime):
            await runtime.run(ExecChannel(link, execs), first)
            return 0
        settings = AgentSettings.from_dict(first["settings"])
        log.info("settings: %s", settings)
        if guard is not None:
            guard.set_grace(settings.stop_grace)
        heartbeat = settings.heartbeat_interval
        silence = max(_SILENCE_FLOOR, 2 * settings.silence_timeout)
        ping = max(_SILENCE_FLOOR, 2 * settings.ping_timeout)
        link.watch_silence(silence, ping)

        async def redial(extra: Dict[str, Any]) -> AgentLink:
            if rendezvous is not None:  # a new SSH session's relay connects to our socket
                reader, writer = await rendezvous.accept()
                return await AgentLink.over(
                    reader,
                    writer,
                    token=token,
                    join=dict(join, **extra),
                    peer="relay",
                    connect_timeout=min(args.connect_timeout, 10.0),
                    heartbeat_interval=heartbeat,
                    silence_timeout=silence,
                    ping_timeout=ping,
                )
            assert ssl_context is not None
            return await AgentLink.connect(
                host,
                port,
                ssl_context=ssl_context,
                token=token,
                join=dict(join, **extra),
                server_hostname=args.server_name,
                connect_timeout=min(args.connect_timeout, 10.0),
                heartbeat_interval=heartbeat,
                silence_timeout=silence,
                ping_timeout=ping,
            )

        outbox = SpoolOutbox(settings.output_buffer_bytes, spool_dir=str(workdir.parent))
        session = AgentSession(link, redial=redial, outbox=outbox, grace=settings.agent_grace)
        forward = LogForwarder(session, asyncio.get_running_loop())
        forward.attach()  # our warnings and errors reach the controller too (``log``: its agent.log event)
        try:
            await runtime.run(ExecChannel(session, execs), first)
        finally:
            forward.detach()
            await session.close(timeout=_CLOSE_WAIT)
        return 0
    finally:
        await execs.close()
        # after ``stopped`` (or an error) nothing more is expected: start the TLS close and do not linger
        # for the controller's answer -- at the end of a big run it is busy, and our exit closes the socket
        await link.close(timeout=_CLOSE_WAIT)


def main(argv: Optional[List[str]] = None, guard: Optional[Guard] = None) -> int:
    """The agent; ``guard``: its guard if the caller started it already (the zygote does, as early as it can:
    the fewer pages the agent has written by then, the fewer it copies again after the guard's fork)."""
    args = parse_args(argv)
    logging.basicConfig(
        level=getattr(logging, str(args.log_level).upper(), logging.INFO),
        format="%(asctime)s agent[" + args.host + "] %(levelname)s %(name)s: %(message)s",
    )
    if args.stdio is not None:
        if args.preamble is not None:  # the one line before the protocol: this Python runs the agent
            os.write(1, "pid {} {}\n".format(os.getpid(), args.preamble).encode("utf-8", "replace"))
        # the session's stdio before anything forks (the guard keeps fds 0-2 only), a session of our own
        args.stdio_fds = take_stdio()
        with contextlib.suppress(OSError):  # sshd made us a session leader already
            os.setsid()
        # the socket's path relative to the working directory: short (sun_path holds ~107 bytes)
        args.stdio = os.path.relpath(os.path.abspath(args.stdio), os.path.abspath(str(args.workdir)))
    # paths given are relative to where the agent was started, not to its workdir ("-": stdin, no password)
    if args.token_file != "-":  # noqa: S105
        args.token_file = os.path.abspath(args.token_file)
    args.workdir.mkdir(parents=True, exist_ok=True)
    os.chdir(str(args.workdir))
    # first, while no thread exists: the guard that ends our processes should we be killed outright
    guard = guard if guard is not None else start_guard()
    if guard is not None:
        log.info("guard %d ends this agent's processes if the agent dies", guard.pid)
    enable_subreaper()  # orphans of our processes (double forks) re-parent to us, so we can end them
    try:
        return asyncio.run(serve_until_signalled(args, guard))
    except LinkClosed as exc:
        log.warning("link closed: %s", exc.reason)
        return 1
    except asyncio.TimeoutError:  # str() of it is empty: say what was waited for
        log.error("agent failed: no welcome from the controller within its connect timeout (%gs)", args.connect_timeout)
        return 1
    except (PlushError, OSError) as exc:
        log.error("agent failed: %s", exc or type(exc).__name__)
        return 1
    except KeyboardInterrupt:
        return 130
    finally:
        # nothing this agent started may outlive it, whatever ended it (the /proc walk only when we have
        # children: every descendant left hangs below a child of ours, since orphans re-parent to us)
        if has_children():
            reap_all_descendants(signal.SIGKILL)
        if guard is not None:
            guard.release()  # all clear: nothing of ours is left


async def serve_until_signalled(args: argparse.Namespace, guard: Optional[Guard] = None) -> int:
    """:func:`serve`, cancelled by SIGTERM or SIGINT: the runtime then stops every process tree it runs."""
    loop = asyncio.get_running_loop()
    task = loop.create_task(serve(args, guard))
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, task.cancel)
    try:
        return await task
    except asyncio.CancelledError:
        log.warning("stopped by a signal")
        return 143


if __name__ == "__main__":
    sys.exit(main())
