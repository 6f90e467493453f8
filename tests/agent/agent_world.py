"""Test helpers: a real agent process (the real runtime) driven by a scripted controller on a real listener.

:class:`ScriptedController` plays the controller's side by hand -- welcome, prepare (with the settings a
test chooses), go install, go execute -- so that a test can then break the link, refuse the agent, or
check the resume protocol frame by frame. The agent is started by the :class:`LocalLauncher` as in a run.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from plush.config import Settings
from plush.fabric.listener import ControllerListener, Peer
from plush.fabric.tls import CA, ensure_ca, server_context
from plush.launch.base import AgentContact
from plush.launch.local import LocalAgent, LocalLauncher
from plush.protocol.messages import Message
from plush.protocol.secret import Secret
from plush.spec.load import load_spec
from plush.spec.model import to_dict

TOKEN = Secret("agent-test-token-0123456789")
DEADLINE = 60.0
HOST = "h1"

#: one component, one host, one long process
SPEC = """\
project: grace
components:
  c:
    hosts: 1
application:
  execution:
    c:
      blocks:
        - process: sleeper
          run: [sh, -c, 'echo started; exec sleep 300']
"""


class ScriptedController:
    """A listener and one agent; the test drives the conversation."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.ca: CA | None = None
        self.listener: ControllerListener | None = None
        self.launcher: LocalLauncher | None = None
        self.agent: LocalAgent | None = None
        self.peer: Peer | None = None
        #: every message received, in order, with the peer it came from
        self.seen: list[tuple[Peer, Message]] = []

    async def start(self) -> None:
        self.ca = ensure_ca(self.tmp / "state")
        self.listener = ControllerListener(
            ssl_context=server_context(self.ca),
            token=TOKEN,
            run_id="run-agent-test",
            settings=Settings(silence_timeout=30.0, ping_timeout=30.0),
        )
        await self.listener.start()
        contact = AgentContact(host="127.0.0.1", port=self.listener.port, ca_pem=self.ca.cert_pem, token=TOKEN)
        self.launcher = LocalLauncher(self.tmp / "run", contact)
        (self.agent,) = await self.launcher.start_agents([HOST])

    async def next(self) -> tuple[Peer, Message | None]:
        assert self.listener is not None
        peer, msg, _ = await asyncio.wait_for(self.listener.next_event(), DEADLINE)
        if msg is not None:
            self.seen.append((peer, msg))
        return peer, msg

    async def expect(self, mtype: str) -> Message:
        """The next message of type ``mtype`` from the current peer (others are skipped)."""
        while True:
            peer, msg = await self.next()
            assert msg is not None, f"the agent went away while we waited for {mtype!r}"
            if peer is self.peer and msg.type == mtype:
                return msg

    async def expect_numbered(self) -> Message:
        """The next numbered message (field ``q``) from the current peer."""
        while True:
            peer, msg = await self.next()
            assert msg is not None, "the agent went away while we waited for its messages"
            if peer is self.peer and "q" in msg.fields:
                return msg

    async def run_until_started(self, **settings: Any) -> int:
        """Welcome, prepare (``settings`` added), install, execute; the pid of the started process."""
        peer, join = await self.next()
        assert join is not None and join.type == "join" and not join.get("resume")
        self.peer = peer
        project = load_spec(self._spec_file())
        peer.send(Message.of("welcome", host=HOST))
        peer.send(
            Message.of(
                "prepare",
                spec=to_dict(project),
                host={"name": HOST, "component": "c", "index": 0, "attrs": {}, "env": {}, "packages": {}},
                settings=dict({"heartbeat_interval": 0.5, "stop_grace": 1.0}, **settings),
            )
        )
        await self.expect("prepared")
        peer.send(Message.of("go", stage="install", q=1))
        await self.expect("installed")
        peer.send(Message.of("go", stage="execute", q=2))
        started = await self.expect("proc.started")
        return int(started["pid"])

    def _spec_file(self) -> Path:
        path = self.tmp / "spec.yaml"
        path.write_text(SPEC)
        return path

    def agent_log(self) -> str:
        assert self.agent is not None
        return self.agent.log_path.read_text(errors="replace")

    async def close(self) -> None:
        if self.launcher is not None:
            await self.launcher.close()
        if self.listener is not None:
            await self.listener.close()


def pid_alive(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie counts as dead)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return False
    return stat[stat.rfind(b")") + 2 :][:1] not in (b"Z", b"X", b"x")
