"""Test helpers for the fabric: a CA, a started listener, a scripted controller, and raw TLS clients."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from pathlib import Path
from typing import Any

from plush.agent.link import client_ssl_context
from plush.config import Settings
from plush.fabric.listener import ControllerListener, PeerEvent
from plush.fabric.tls import CA, ensure_ca, server_context
from plush.launch.base import AgentContact
from plush.protocol.framing import FrameDecoder
from plush.protocol.messages import Message
from plush.protocol.secret import Secret

TOKEN = Secret("fabric-test-token-0123456789")
DEADLINE = 60.0


#: liveness for tests with real processes: generous, because a loaded CI machine starves processes for seconds
PATIENT = Settings(silence_timeout=30.0, ping_timeout=30.0)


async def start_listener(state_dir: Path, **options: Any) -> tuple[CA, ControllerListener]:
    options.setdefault("settings", PATIENT)
    ca = ensure_ca(state_dir)
    listener = ControllerListener(ssl_context=server_context(ca), token=TOKEN, run_id="run-test", **options)
    await listener.start()
    return ca, listener


#: the fabric's tests exercise the overlay alone, not the execution runtime
MINIMAL = ("--runtime", "minimal")


def contact(ca: CA, listener: ControllerListener) -> AgentContact:
    return AgentContact(host="127.0.0.1", port=listener.port, ca_pem=ca.cert_pem, token=TOKEN)


def prepare_for(host: str, **settings: Any) -> Message:
    return Message.of(
        "prepare",
        spec={"kind": "Project", "name": "t"},
        host={"name": host, "component": "c", "index": 0, "attrs": {}, "env": {"PLUSH_HOST": host}},
        settings=dict({"heartbeat_interval": 0.5}, **settings),
    )


async def next_event(listener: ControllerListener) -> PeerEvent:
    return await asyncio.wait_for(listener.next_event(), DEADLINE)


async def drive_to_stop(listener: ControllerListener, n: int) -> dict[str, list[str]]:
    """A scripted controller: welcome, prepare, go install, go execute, stop -- for ``n`` agents."""
    seen: dict[str, list[str]] = {}
    gone = 0
    while gone < n:
        peer, msg, _reason = await next_event(listener)
        host = peer.host
        assert host is not None
        if msg is None:
            seen[host].append("closed")
            gone += 1
            continue
        seen.setdefault(host, []).append(msg.type)
        if msg.type == "join":
            peer.send(Message.of("welcome", host=host))
            peer.send(prepare_for(host))
        elif msg.type == "prepared":
            peer.send(Message.of("go", stage="install"))
        elif msg.type == "installed":
            peer.send(Message.of("go", stage="execute"))
        elif msg.type == "finished":
            peer.send(Message.of("stop", grace=1.0, reason="done"))
    return seen


class RawClient:
    """A TLS client that speaks frames by hand (to play a misbehaving agent)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.decoder = FrameDecoder(validate_schema=False)

    @classmethod
    async def connect(cls, port: int, ca_pem: bytes | None, server_hostname: str | None = None) -> RawClient:
        ctx: ssl.SSLContext | None = client_ssl_context(ca_pem) if ca_pem is not None else None
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", port, ssl=ctx, server_hostname=server_hostname if ctx else None
        )
        return cls(reader, writer)

    async def recv(self) -> Message:
        while True:
            got = self.decoder.feed(await asyncio.wait_for(self.reader.read(65536), DEADLINE))
            if got:
                assert len(got) == 1
                return got[0]

    def send_raw(self, data: bytes) -> None:
        self.writer.write(data)

    async def read_until_closed(self) -> bytes:
        """Everything received until the server closes the connection."""
        data = b""
        with contextlib.suppress(ConnectionError, ssl.SSLError):
            while chunk := await asyncio.wait_for(self.reader.read(65536), DEADLINE):
                data += chunk
        return data

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError, ssl.SSLError):
            await self.writer.wait_closed()
