"""The controller's per-host sessions: numbering, retention until ack, dedupe, replay, ack cadence."""

from __future__ import annotations

import asyncio

from plush.controller.sessions import HostSession, SessionTable, numbered
from plush.protocol.framing import FrameDecoder
from plush.protocol.messages import Message


def test_run_messages_and_go_are_numbered_but_not_handshake_or_control() -> None:
    assert numbered("go") and numbered("barrier.release") and numbered("file.data") and numbered("reset")
    assert not numbered("prepare") and not numbered("stop") and not numbered("ack") and not numbered("welcome")


def test_messages_are_numbered_kept_until_acked_and_replayed_in_order() -> None:
    session = HostSession("h")
    frames = [session.number(Message.of("work.none", path=f"/a/c/w{i}")) for i in range(5)]
    assert [m["q"] for f in frames for m in FrameDecoder().feed(f)] == [1, 2, 3, 4, 5]
    assert session.acked(2) == 2
    replay = list(session.replay(3))  # the agent says it processed up to 3
    assert [frame for _, frame in replay] == frames[3:]  # the very bytes first written
    assert {t for t, _ in replay} == {"work.none"}
    assert session.statistics()["retained"] == 2


def test_duplicates_from_the_agent_are_dropped() -> None:
    session = HostSession("h")
    assert session.accept(Message.of("block", path="/a", state="started", q=1))
    assert not session.accept(Message.of("block", path="/a", state="started", q=1))
    assert session.accept(Message.of("log", level="info", text="unnumbered"))
    assert session.received == 1 and session.inbox.duplicates == 1


async def test_acks_go_out_after_n_messages_or_within_the_interval() -> None:
    sent: list[tuple[str, int]] = []
    got = asyncio.Event()

    def send_ack(host: str, q: int) -> None:
        sent.append((host, q))
        got.set()

    table = SessionTable(send_ack, ack_every=3, ack_interval=0.05)
    session = table.open("h")
    for q in (1, 2, 3):
        session.accept(Message.of("block", path="/a", state="started", q=q))
        table.processed("h")
    assert sent == [("h", 3)]  # the third one triggered it at once
    got.clear()
    session.accept(Message.of("block", path="/a", state="started", q=4))
    table.processed("h")
    await asyncio.wait_for(got.wait(), 5.0)  # the timer flushes the rest
    assert sent == [("h", 3), ("h", 4)]
    table.close()
