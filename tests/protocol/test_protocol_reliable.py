"""Reliable delivery: whatever breaks the link, every numbered message is processed exactly once, in order."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from plush.errors import ProtocolError
from plush.protocol.reliable import Inbox, Outbox


def test_ack_releases_bytes_and_replay_resends_the_rest() -> None:
    out = Outbox(limit=10)
    for i in range(5):
        out.add(f"m{i}", 3)
    assert out.full() and out.bytes == 15
    assert out.ack(2) == 2 and out.bytes == 9 and not out.full()
    assert [item for _, item in out.replay(3)] == ["m3", "m4"]
    with pytest.raises(ProtocolError, match="never sent"):
        out.ack(9)


def test_inbox_drops_duplicates() -> None:
    inbox = Inbox()
    assert [inbox.accept(q) for q in (1, 2, 2, 1, 3, None)] == [True, True, False, False, True, True]
    assert inbox.received == 3 and inbox.duplicates == 2


@given(
    n=st.integers(min_value=1, max_value=60),
    breaks=st.lists(st.tuples(st.integers(0, 60), st.integers(0, 60)), max_size=6),
)
def test_any_pattern_of_link_breaks_delivers_each_message_exactly_once(n: int, breaks: list[tuple[int, int]]) -> None:
    """The sender sends n messages; the link breaks at chosen points, losing a chosen number in flight."""
    out, inbox = Outbox(), Inbox()
    processed: list[int] = []
    cuts = dict(breaks)
    in_flight: list[tuple[int, object]] = []

    def deliver() -> None:
        for seq, item in in_flight:
            if inbox.accept(seq):
                processed.append(int(str(item)))
        in_flight.clear()
        if inbox.received:
            out.ack(inbox.received)

    for i in range(n):
        seq = out.add(str(i), 1)
        in_flight.append((seq, str(i)))
        if i in cuts:  # the link breaks: the last few in flight are lost, then a reconnection replays
            lost = min(cuts[i], len(in_flight))
            del in_flight[len(in_flight) - lost :]
            deliver()
            in_flight.extend(out.replay(inbox.received))
    deliver()
    in_flight.extend(out.replay(inbox.received))
    deliver()
    assert processed == list(range(n))
    assert out.pending == 0
