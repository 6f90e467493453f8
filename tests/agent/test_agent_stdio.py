"""A real ``--stdio`` agent (the SSH launcher's kind) without SSH: its stdin/stdout are one end of a socket pair
whose other end the listener adopted as a Peer, as :mod:`plush.fabric.sshstdio` does with an SSH session.

- it joins over its stdio (no TLS, the token checked), runs a process, and listens on ``agent.sock`` (0600);
- when its stdio link ends, its process keeps running; the relay (``python -m plush.agent.relay``, what a
  later SSH session runs) connects to the socket and the agent resumes over it; after ``stop`` the agent
  exits 0, the relay says the agent is gone (exit 3), and a relay with no agent there says so too.
"""

from __future__ import annotations

import asyncio
import os
import socket
import stat
import sys
from pathlib import Path

from agent_world import DEADLINE, HOST, SPEC, TOKEN, pid_alive

from plush.config import Settings
from plush.fabric.listener import ControllerListener, Peer
from plush.fabric.tls import ensure_ca, server_context
from plush.protocol.messages import Message
from plush.spec.load import load_spec
from plush.spec.model import to_dict

SRC = Path(__file__).resolve().parents[2] / "src"


async def _adopt(listener: ControllerListener, sock: socket.socket) -> Peer:
    _transport, peer = await asyncio.get_running_loop().connect_accepted_socket(
        lambda: listener.adopt(f"stdio:{HOST}"), sock
    )
    assert isinstance(peer, Peer)
    return peer


async def _next(listener: ControllerListener, peer: Peer, mtype: str) -> Message:
    while True:
        got, msg, _ = await asyncio.wait_for(listener.next_event(), DEADLINE)
        if got is not peer:
            continue  # the end of an older link
        assert msg is not None, f"the link ended while waiting for {mtype!r}"
        if msg.type == mtype:
            return msg


async def _spawn(argv: list[str], cwd: Path, stdio: socket.socket) -> asyncio.subprocess.Process:
    env = dict(os.environ, PYTHONPATH=str(SRC))
    with open(cwd / "agent.log", "ab") as log:
        return await asyncio.create_subprocess_exec(
            sys.executable, *argv, cwd=cwd, stdin=stdio, stdout=stdio, stderr=log, env=env
        )


async def test_a_stdio_agent_joins_an_adopted_peer_and_resumes_through_the_relay_on_its_socket(
    tmp_path: Path,
) -> None:
    ca = ensure_ca(tmp_path / "state")
    settings = Settings(silence_timeout=30.0, ping_timeout=30.0)
    listener = ControllerListener(ssl_context=server_context(ca), token=TOKEN, run_id="run-stdio", settings=settings)
    await listener.start()
    hdir = tmp_path / "hosts" / HOST
    hdir.mkdir(parents=True)
    (hdir / ".token").write_text(TOKEN.reveal() + "\n")
    (tmp_path / "spec.yaml").write_text(SPEC)
    mine, theirs = socket.socketpair()
    argv = ["-m", "plush.agent", "--stdio", "agent.sock", "--host", HOST, "--token-file", ".token"]
    agent = await _spawn([*argv, "--workdir", "work"], hdir, theirs)
    theirs.close()
    relay: asyncio.subprocess.Process | None = None
    try:
        peer = await _adopt(listener, mine)
        join = await _next(listener, peer, "join")
        assert not join.get("resume") and join["pid"] == agent.pid
        peer.send(Message.of("welcome", host=HOST))
        spec = to_dict(load_spec(tmp_path / "spec.yaml"))
        host = {"name": HOST, "component": "c", "index": 0, "attrs": {}, "env": {}, "packages": {}}
        grace = {"heartbeat_interval": 0.5, "stop_grace": 1.0, "agent_grace": 30.0}
        peer.send(Message.of("prepare", spec=spec, host=host, settings=grace))
        await _next(listener, peer, "prepared")
        assert stat.S_IMODE((hdir / "agent.sock").stat().st_mode) == 0o600
        peer.send(Message.of("go", stage="install", q=1))
        await _next(listener, peer, "installed")
        peer.send(Message.of("go", stage="execute", q=2))
        pid = int((await _next(listener, peer, "proc.started"))["pid"])

        peer.abort("the SSH session ended")  # its stdio link is gone; the agent and its process stay
        mine, theirs = socket.socketpair()
        relay = await _spawn(["-m", "plush.agent.relay", "--relay", "agent.sock"], hdir, theirs)
        theirs.close()
        peer = await _adopt(listener, mine)
        join = await _next(listener, peer, "join")
        assert join["resume"] is True and join["pid"] == agent.pid
        assert pid_alive(pid)
        peer.send(Message.of("welcome", host=HOST))
        peer.send(Message.of("resume", received=join["received"]))
        peer.send(Message.of("stop", grace=1.0, reason="test over"))
        await _next(listener, peer, "stopped")
        assert await asyncio.wait_for(agent.wait(), DEADLINE) == 0
        assert await asyncio.wait_for(relay.wait(), DEADLINE) == 3  # the relay saw the agent exit
        assert not (hdir / "agent.sock").exists()
        assert not pid_alive(pid)

        mine, theirs = socket.socketpair()  # a later session finds no agent: exit 3
        lonely = await _spawn(["-m", "plush.agent.relay", "--relay", "agent.sock"], hdir, theirs)
        theirs.close()
        mine.close()
        assert await asyncio.wait_for(lonely.wait(), DEADLINE) == 3
    finally:
        for proc in (agent, relay):
            if proc is not None and proc.returncode is None:
                proc.kill()
                await proc.wait()
        await listener.close()
