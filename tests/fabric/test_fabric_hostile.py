"""Hostile peers against the real listener and the real agent link (Hypothesis): no traceback, ever.

A listener runs on an event loop in a background thread; each example opens a real TLS connection, sends
arbitrary bytes or almost-right frames (tests/protocol/test_protocol_hostile.py's strategies: deep nesting,
huge lengths, non-UTF-8, wrong types, unknown types, binary frames before authentication...), before or
after a valid join, and ends its side of the stream. Then: no exception reached asyncio (its exception
handler would print a traceback), the listener forgot the connection, it logged at most one line (INFO
and up) about it, nothing of an unauthenticated peer reached the controller, and at the end a real agent
still joins. The other direction: a fake controller sends the same to a real :class:`AgentLink`, which ends
with :class:`LinkClosed` (or a ProtocolError) and at most one log line, nothing else.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
import threading
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

from fabric_world import DEADLINE, TOKEN, start_listener
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hostile_input import stream
from plush.agent.link import AgentLink, LinkClosed, client_ssl_context
from plush.errors import ProtocolError
from plush.fabric.listener import ControllerListener
from plush.fabric.tls import CA, ensure_ca, server_context
from plush.protocol.framing import FrameDecoder, encode
from plush.protocol.messages import Message

T = TypeVar("T")
JOIN = {"host": "h1", "pid": 1, "hostname": "x", "python": "3.11", "workdir": "/w", "agent_version": "0"}
HOSTILE = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])


class Recorder(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


class World:
    """A loop in a thread with a listener that welcomes every valid join; what it logged and delivered."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.loop = asyncio.new_event_loop()
        self.crashes: list[dict[str, Any]] = []
        self.loop.set_exception_handler(lambda _loop, context: self.crashes.append(context))
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.log = Recorder()
        self.delivered: list[Message | None] = []
        self.ca: CA | None = None
        self.listener: ControllerListener | None = None

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(DEADLINE * 2)

    def __enter__(self) -> World:
        for name in ("plush", "asyncio"):
            logging.getLogger(name).addHandler(self.log)
        self.thread.start()
        self.ca, self.listener = self.run(start_listener(self.tmp_path))
        self.pump = asyncio.run_coroutine_threadsafe(self._pump(), self.loop)
        return self

    async def _pump(self) -> None:
        assert self.listener is not None
        async for peer, msg, _ in self.listener:
            self.delivered.append(msg)
            if msg is not None and msg.type == "join" and not peer.closed:
                with contextlib.suppress(ConnectionError):
                    peer.send(Message.of("welcome", host=str(msg["host"])))

    def __exit__(self, *exc: object) -> None:
        try:
            self.pump.cancel()
            if self.listener is not None:
                self.run(self.listener.close(timeout=10))
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(DEADLINE)
            self.loop.close()
            for name in ("plush", "asyncio"):
                logging.getLogger(name).removeHandler(self.log)

    # -- a raw TLS client, blocking, in the test's thread ---------------------------------------------------

    @contextlib.contextmanager
    def client(self) -> Iterator[ssl.SSLSocket]:
        assert self.ca is not None and self.listener is not None
        raw = socket.create_connection(("127.0.0.1", self.listener.port), timeout=DEADLINE)
        sock = client_ssl_context(self.ca.cert_pem).wrap_socket(raw, server_hostname="127.0.0.1")
        try:
            yield sock
        finally:
            sock.close()

    def wait_forgotten(self, baseline: int) -> None:
        """Until the listener holds no more connections than ``baseline`` (a deadline, not a timing)."""
        assert self.listener is not None
        listener = self.listener

        async def poll() -> None:
            deadline = asyncio.get_running_loop().time() + DEADLINE
            while listener.statistics()["connections"] > baseline:
                if asyncio.get_running_loop().time() > deadline:
                    raise AssertionError(f"the listener still holds {listener.statistics()['connections']} connections")
                await asyncio.sleep(0.005)

        self.run(poll())

    async def join_agent(self, host: str) -> None:
        assert self.ca is not None and self.listener is not None
        link = await AgentLink.connect(
            "127.0.0.1",
            self.listener.port,
            ssl_context=client_ssl_context(self.ca.cert_pem),
            token=TOKEN,
            join=dict(JOIN, host=host),
            connect_timeout=DEADLINE,
        )
        await link.close()


def read_frames_until(sock: ssl.SSLSocket, mtype: str) -> None:
    decoder = FrameDecoder(validate_schema=False)
    while True:
        data = sock.recv(65536)
        assert data, f"closed before {mtype!r}"
        if any(m.type == mtype for m in decoder.feed(data)):
            return


def send_and_end(sock: ssl.SSLSocket, data: bytes) -> None:
    """Send ``data`` (the server may already have closed), end our side, read until the server closes."""
    with contextlib.suppress(OSError):
        sock.sendall(data)
        sock.unwrap()  # close_notify: the end of our stream, whatever partial frame it held
    with contextlib.suppress(OSError):
        while sock.recv(65536):
            pass


def test_hostile_bytes_at_a_real_listener(tmp_path: Path) -> None:
    with World(tmp_path) as world:
        assert world.listener is not None

        @HOSTILE
        @given(stream, st.booleans())
        def attack(data: bytes, joined_first: bool) -> None:
            mark, delivered = len(world.log.records), len(world.delivered)
            with world.client() as sock:
                if joined_first:  # an authenticated agent that turns hostile
                    sock.sendall(encode(Message("join", dict(JOIN, token=TOKEN.reveal()))))
                    read_frames_until(sock, "welcome")
                send_and_end(sock, data)
            world.wait_forgotten(0)
            lines = world.log.records[mark:]
            assert len(lines) <= 1, [r.getMessage() for r in lines]
            assert world.crashes == []
            if not joined_first:
                assert world.delivered[delivered:] == []  # nothing of an unauthenticated peer

        attack()
        world.run(world.join_agent("after-the-attack"))
        assert world.crashes == []
        assert world.listener.statistics()["preauth"]["held"] == 0


def test_hostile_bytes_from_a_controller_at_a_real_agent_link(tmp_path: Path) -> None:
    ca = ensure_ca(tmp_path)
    ctx = server_context(ca)
    with World(tmp_path / "world") as world:
        state: dict[str, Any] = {}

        async def fake_controller(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                if state["welcome_first"]:
                    writer.write(encode(Message("invite", {"run": "r", "protocol": 1})))
                    decoder = FrameDecoder(validate_schema=False)
                    while not any(m.type == "join" for m in decoder.feed(await reader.read(65536))):
                        pass
                    writer.write(encode(Message.of("welcome", host="h1")))
                writer.write(state["data"])
                await writer.drain()
            except (ConnectionError, ProtocolError):
                pass
            finally:
                writer.close()

        server = world.run(asyncio.start_server(fake_controller, "127.0.0.1", 0, ssl=ctx))
        port = server.sockets[0].getsockname()[1]

        async def agent() -> str:
            try:
                link = await AgentLink.connect(
                    "127.0.0.1",
                    port,
                    ssl_context=client_ssl_context(ca.cert_pem),
                    token=TOKEN,
                    join=JOIN,
                    connect_timeout=DEADLINE,
                )
            except (LinkClosed, ProtocolError):
                return "refused at connect"
            try:
                while True:
                    await link.recv()
            except LinkClosed:
                return "closed"
            finally:
                await link.close()

        @HOSTILE
        @given(stream, st.booleans())
        def attack(data: bytes, welcome_first: bool) -> None:
            state.update(data=data, welcome_first=welcome_first)
            mark = len(world.log.records)
            assert world.run(agent()) in ("refused at connect", "closed")
            lines = world.log.records[mark:]
            assert len(lines) <= 1, [r.getMessage() for r in lines]
            assert world.crashes == []

        try:
            attack()
        finally:
            server.close()
            world.run(server.wait_closed())


def test_an_undeclared_field_after_the_join_is_one_protocol_error_line(tmp_path: Path) -> None:
    """An authenticated peer sends a legal message with a field its type does not declare: one log line
    naming the type and the field, the connection ends, the message is not delivered."""
    with World(tmp_path) as world:
        with world.client() as sock:
            sock.sendall(encode(Message("join", dict(JOIN, token=TOKEN.reveal()))))
            read_frames_until(sock, "welcome")
            delivered = len(world.delivered)
            mark = len(world.log.records)
            send_and_end(sock, encode(Message.of("hostmon", sample={}, cookie="x")))
        world.wait_forgotten(0)
        lines = [r.getMessage() for r in world.log.records[mark:]]
        assert len(lines) == 1 and "message 'hostmon' has undeclared field 'cookie'" in lines[0], lines
        assert [m for m in world.delivered[delivered:] if m is not None] == []
        assert world.crashes == []
