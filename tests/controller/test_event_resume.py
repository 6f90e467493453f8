"""A resumed subscription (``EventBus.subscribe(since=SEQ)``, ``Controller.subscribe(since=)``): first the
journaled events after SEQ the bus remembers, then the live ones; none twice, none missed, filters applied,
process output never replayed (it is live only)."""

from __future__ import annotations

from plush.controller.catalogue import BLOCK_STARTED, HOST_JOINED, PROCESS_OUTPUT, RUN_STARTED
from plush.controller.events import EventBus


async def test_a_resumed_subscription_replays_what_followed_then_goes_live() -> None:
    bus = EventBus()
    sent = [
        bus.emit(RUN_STARTED, data={"run": "r", "hosts": 1}),
        bus.emit(HOST_JOINED, host="h1", data={"component": None}),
        bus.emit(PROCESS_OUTPUT, host="h1", block="/a", instance=0, data={"stream": "stdout", "data": b"x"}),
        bus.emit(BLOCK_STARTED, host="h1", block="/a", data={"reason": "", "action": ""}),
        bus.emit(BLOCK_STARTED, host="h2", block="/a", data={"reason": "", "action": ""}),
    ]
    sub = bus.subscribe(since=sent[0].seq)
    only_h1 = bus.subscribe(since=sent[0].seq, where=lambda e: e.host == "h1")
    live = bus.emit(BLOCK_STARTED, host="h1", block="/b", data={"reason": "", "action": ""})
    assert [e.seq for e in sub.drain_nowait()] == [sent[1].seq, sent[3].seq, sent[4].seq, live.seq]
    assert [e.seq for e in only_h1.drain_nowait()] == [sent[1].seq, sent[3].seq, live.seq]
    assert [e.seq for e in bus.subscribe(since=live.seq).drain_nowait()] == []
    assert sorted(e.seq for e in sent) == [e.seq for e in sent]  # ids increase with time
