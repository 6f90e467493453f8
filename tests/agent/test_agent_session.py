"""The agent's session in-process: a real listener and a real TLS AgentLink on one event loop.

Checked: bulk sends wait while the outbox is full and go on when the controller acknowledges
(backpressure, no loss); numbered controller messages are delivered once (duplicates dropped) and
acknowledged; after the link breaks, messages the runtime sent meanwhile are kept and replayed after the
resume, in order, after those the controller had lost.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from plush.agent.link import AgentLink, client_ssl_context
from plush.agent.outbox import SpoolOutbox
from plush.agent.session import AgentSession
from plush.config import Settings
from plush.fabric.listener import ControllerListener, Peer
from plush.fabric.tls import ensure_ca, server_context
from plush.protocol.messages import Message
from plush.protocol.secret import Secret

TOKEN = Secret("session-test-token-0123456789")
DEADLINE = 30.0


@dataclass
class Pair:
    listener: ControllerListener
    peer: Peer
    session: AgentSession

    async def next(self) -> tuple[Peer, Message | None]:
        peer, msg, _ = await asyncio.wait_for(self.listener.next_event(), DEADLINE)
        return peer, msg

    async def expect(self, mtype: str) -> Message:
        while True:
            peer, msg = await self.next()
            if msg is not None and peer is self.peer and msg.type == mtype:
                return msg

    async def expect_any_numbered(self) -> Message:
        while True:
            peer, msg = await self.next()
            if msg is not None and peer is self.peer and "q" in msg.fields:
                return msg


def chunk(i: int) -> Message:
    return Message.binary("output", bytes([i]) * 1000, path="/a/c/p", instance=1, stream="stdout")


@pytest.fixture
async def pair(tmp_path: Path) -> AsyncIterator[Pair]:
    ca = ensure_ca(tmp_path / "state")
    listener = ControllerListener(
        ssl_context=server_context(ca), token=TOKEN, run_id="r", settings=Settings(silence_timeout=30.0)
    )
    await listener.start()
    join: dict[str, Any] = {
        "host": "h1",
        "pid": os.getpid(),
        "hostname": "test",
        "python": "3",
        "workdir": str(tmp_path),
        "agent_version": "0",
    }

    async def dial(extra: dict[str, Any]) -> AgentLink:
        return await AgentLink.connect(
            "127.0.0.1",
            listener.port,
            ssl_context=client_ssl_context(ca.cert_pem),
            token=TOKEN,
            join=dict(join, **extra),
        )

    dialing = asyncio.ensure_future(dial({}))
    peer, msg, _ = await asyncio.wait_for(listener.next_event(), DEADLINE)
    assert msg is not None and msg.type == "join"
    peer.send(Message.of("welcome", host="h1"))
    peer.send(Message.of("prepare", spec={}, host={}, settings={}))
    link = await dialing
    assert (await link.recv()).type == "prepare"
    link.send(Message.of("prepared"))
    _, msg, _ = await asyncio.wait_for(listener.next_event(), DEADLINE)
    assert msg is not None and msg.type == "prepared"
    peer.send(Message.of("go", stage="execute", q=1))
    outbox = SpoolOutbox(limit=3500, spool_dir=str(tmp_path))
    session = AgentSession(link, redial=dial, outbox=outbox, grace=DEADLINE, backoff_initial=0.01)
    assert (await session.recv()).type == "go"
    try:
        yield Pair(listener, peer, session)
    finally:
        await session.close()
        await listener.close()


async def spin(n: int = 50) -> None:
    """Let the loop run ``n`` times (a task that can go on does so within a few iterations)."""
    for _ in range(n):
        await asyncio.sleep(0)


async def test_bulk_sends_wait_for_acks_when_the_outbox_is_full(pair: Pair) -> None:
    for i in range(1, 5):  # ~1 KiB frames against a 3500 byte limit: the 4th fills it
        await pair.session.send_binary(chunk(i))
    assert pair.session.outbox.full()
    blocked = asyncio.ensure_future(pair.session.send_binary(chunk(5)))
    await spin()
    assert not blocked.done()  # backpressure: the producer waits, nothing is dropped
    received = [await pair.expect("output") for _ in range(4)]
    assert [m["q"] for m in received] == [1, 2, 3, 4]
    pair.peer.send(Message.of("ack", q=4))
    await asyncio.wait_for(blocked, DEADLINE)
    fifth = await pair.expect("output")
    assert fifth["q"] == 5 and fifth.payload == bytes([5]) * 1000


async def test_numbered_messages_are_delivered_once_and_acknowledged(pair: Pair) -> None:
    release = Message.of("barrier.release", name="b", late=False, q=2)
    pair.peer.send(release)
    pair.peer.send(Message.of("barrier.release", name="b", late=False, q=2))  # a duplicate (a replay)
    pair.peer.send(Message.of("work.none", path="/a/c/w", q=3))
    first = await asyncio.wait_for(pair.session.recv(), DEADLINE)
    second = await asyncio.wait_for(pair.session.recv(), DEADLINE)
    assert (first.type, first["q"]) == ("barrier.release", 2)
    assert (second.type, second["q"]) == ("work.none", 3)
    assert pair.session.inbox.duplicates == 1
    ack = await pair.expect("ack")  # within the ack interval
    assert ack["q"] == 3


async def test_after_a_break_kept_messages_are_replayed_in_order_before_new_ones(pair: Pair) -> None:
    session = pair.session
    session.send(Message.of("block", path="/a/c", state="started"))  # q=1
    session.send(Message.of("block", path="/a/c/p", state="started"))  # q=2
    assert (await pair.expect("block"))["q"] == 1
    assert (await pair.expect("block"))["q"] == 2
    pair.peer.abort("simulated reset")
    while True:
        peer, msg = await pair.next()
        if msg is None and peer is pair.peer:
            break
    for i in range(3, 6):  # sent while the link is down (or not yet noticed): kept, not lost
        session.send(Message.of("proc.started", path="/a/c/p", instance=i, pid=100 + i))
    peer, join = await pair.next()
    assert join is not None and join.type == "join" and join["resume"] is True and join["received"] == 1
    pair.peer = peer
    peer.send(Message.of("welcome", host="h1"))
    peer.send(Message.of("resume", received=1))  # the controller lost q=2
    replayed = [await pair.expect_any_numbered() for _ in range(4)]
    assert [(m.type, m["q"]) for m in replayed] == [
        ("block", 2),
        ("proc.started", 3),
        ("proc.started", 4),
        ("proc.started", 5),
    ]
    session.send(Message.of("finished", ok=True))
    finished = await pair.expect("finished")
    assert finished["q"] == 6
    assert session.disconnects == 1 and session.reconnects == 1
