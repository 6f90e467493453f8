"""The listener's peer logic on a fake transport: flow control, write batching, the slow-peer bound."""

from __future__ import annotations

import asyncio
import ssl
from typing import Any

import pytest
from fabric_world import TOKEN

from plush.config import Settings
from plush.fabric.listener import ControllerListener, Peer
from plush.protocol.framing import FrameDecoder, encode
from plush.protocol.messages import Message

JOIN = {"host": "h1", "pid": 1, "hostname": "x", "python": "3.11", "workdir": "/w", "agent_version": "0"}


class FakeTransport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.calls: list[str] = []
        self.written: list[bytes] = []
        self.closing = False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("192.0.2.1", 4000) if name == "peername" else default

    def pause_reading(self) -> None:
        self.calls.append("pause")

    def resume_reading(self) -> None:
        self.calls.append("resume")

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        pass

    def get_write_buffer_size(self) -> int:
        return 0

    def writelines(self, data: Any) -> None:
        self.calls.append("writelines")
        self.written.append(b"".join(data))

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True

    def abort(self) -> None:
        self.calls.append("abort")
        self.closing = True


def make_peer(**options: Any) -> tuple[ControllerListener, Peer, FakeTransport]:
    listener = ControllerListener(ssl_context=ssl.create_default_context(), token=TOKEN, run_id="r", **options)
    listener._loop = asyncio.get_running_loop()  # not started: no socket needed for these tests
    peer = Peer(listener, 1)
    transport = FakeTransport()
    peer.connection_made(transport)
    return listener, peer, transport


async def test_reading_pauses_at_the_limit_and_resumes_at_half() -> None:
    listener, peer, transport = make_peer(inbox_limit=8)
    peer.data_received(encode(Message("join", dict(JOIN, token=TOKEN.reveal()))))
    peer.send(Message.of("welcome", host="h1"))
    assert "pause" not in transport.calls
    peer.data_received(b"".join(encode(Message.of("log", level="info", text=str(i))) for i in range(20)))
    assert transport.calls.count("pause") == 1
    taken = []
    while "resume" not in transport.calls:
        taken.append(listener.next_event_nowait())
    assert peer.statistics()["queued"] == 4  # resumed when half the limit was left
    assert [e.message.type for e in taken if e.message] == ["join"] + ["log"] * 16


async def test_writes_in_one_iteration_are_batched() -> None:
    _, peer, transport = make_peer()
    await asyncio.sleep(0)  # let the invite's flush run
    transport.calls.clear()
    transport.written.clear()
    peer.data_received(encode(Message("join", dict(JOIN, token=TOKEN.reveal()))))
    peer.send(Message.of("welcome", host="h1"))
    peer.send(prepare := Message.of("prepare", spec={}, host={}, settings={}))
    peer.send(Message.of("stop", grace=1, reason="x"))
    assert transport.calls == []  # nothing written yet
    await asyncio.sleep(0)
    assert transport.calls == ["writelines"]
    assert FrameDecoder().feed(transport.written[0]) == [
        Message.of("welcome", host="h1"),
        prepare,
        Message.of("stop", grace=1, reason="x"),
    ]


async def test_a_peer_over_the_write_bound_is_dropped() -> None:
    _, peer, transport = make_peer(max_write_buffer=100_000)
    peer.data_received(encode(Message("join", dict(JOIN, token=TOKEN.reveal()))))
    peer.send(Message.of("welcome", host="h1"))
    with pytest.raises(ConnectionResetError, match="too slow"):
        peer.send(Message.of("stop", grace=1, reason="x" * 200_000))
    assert "abort" in transport.calls and peer.closed


async def test_a_wrong_token_aborts_without_an_event() -> None:
    listener, peer, transport = make_peer()
    peer.data_received(encode(Message("join", dict(JOIN, token="nope"))))
    assert transport.calls[-1] == "abort"
    peer.connection_lost(None)
    with pytest.raises(asyncio.QueueEmpty):
        listener.next_event_nowait()
    assert listener.statistics()["refused"] == 1


def grace_state(peer: Peer) -> tuple[bool, float | None]:
    return peer.starting, peer.conn.silence_timeout


async def test_a_freshly_joined_peer_gets_a_longer_silence_until_it_speaks_again() -> None:
    settings = Settings(silence_timeout=2.0, ping_timeout=1.0)
    listener, peer, _ = make_peer(settings=settings)
    assert grace_state(peer) == (True, 4.0)  # 2x during start-up
    peer.data_received(encode(Message("join", dict(JOIN, token=TOKEN.reveal()))))
    peer.send(Message.of("welcome", host="h1"))
    assert peer.join is not None and grace_state(peer) == (True, 4.0)
    timer = peer.conn.get_timer()
    assert timer is not None and timer == pytest.approx(peer.conn.last_heard + 4.0)
    peer.data_received(encode(Message.of("heartbeat", seq=1)))  # the first bytes after the join
    assert grace_state(peer) == (False, 2.0)  # steady state: dead within 2 + 1 s of silence
    timer = peer.conn.get_timer()
    assert timer is not None and timer == pytest.approx(peer.conn.last_heard + 2.0)
    assert listener.statistics()["joined"] == 1


async def test_the_start_up_grace_can_be_turned_off() -> None:
    _, peer, _ = make_peer(settings=Settings(silence_timeout=2.0), startup_silence_factor=1.0)
    assert peer.conn.silence_timeout == 2.0
    _, quiet, _ = make_peer(settings=Settings(silence_timeout=0.0))
    assert grace_state(quiet) == (False, None)  # no silence check at all
