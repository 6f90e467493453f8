"""Reliable delivery across reconnections: sequence numbers, acknowledgements and replay (pure).

Theory of operation. A TCP connection loses whatever was in flight when it breaks. So that an agent can
lose its controller and come back without losing a line of output, each side numbers the *run* messages it
sends (field ``q``: 1, 2, 3, … per direction, for the whole life of the host's session, across connections)
and keeps them in an :class:`Outbox` until the other side acknowledges them (``ack {q}``, cumulative: every
message up to ``q`` has been processed). The receiver passes each incoming numbered message through an
:class:`Inbox`, which drops duplicates (``q`` at or below the last one processed) and reports gaps.

On reconnection the agent's ``join`` says ``received`` (the last controller message it processed) and the
controller's ``resume`` says the same for the other direction; each side then :meth:`Outbox.replay` s what
the other has not processed, in order, before anything new. Liveness and handshake messages are never
numbered: they belong to one connection.

The outbox bounds memory: message bodies beyond ``memory_limit`` bytes are spilled to a spool file (by the
adapter; this module only accounts), and :meth:`Outbox.full` tells the producer to wait (backpressure, never
loss). Pure: no I/O, no clock, standard library only, Python 3.8.
"""

from __future__ import annotations

from collections import deque
from typing import Deque, Iterator, Optional, Tuple

from plush.errors import ProtocolError
from plush.protocol.messages import SEQ_FIELD

__all__ = ["SEQ_FIELD", "Inbox", "Outbox"]


class Outbox:
    """Numbers outgoing messages and keeps each until it is acknowledged.

    Items are opaque to the outbox (encoded frames, or handles to spooled data); ``size`` is what each one
    counts against ``limit`` bytes.
    """

    def __init__(self, limit: int = 256 * 1024 * 1024) -> None:
        self.limit = limit
        self.next_seq = 1
        self.acked = 0
        self.bytes = 0
        self._items: Deque[Tuple[int, int, object]] = deque()  # (seq, size, item)

    def add(self, item: object, size: int) -> int:
        """Keep ``item`` (of ``size`` bytes) until acknowledged; its sequence number."""
        seq = self.next_seq
        self.next_seq += 1
        self._items.append((seq, size, item))
        self.bytes += size
        return seq

    def ack(self, seq: int) -> int:
        """Everything up to ``seq`` was processed by the peer; returns how many items were released."""
        if seq >= self.next_seq:
            raise ProtocolError("ack {} for a message never sent (last sent {})".format(seq, self.next_seq - 1))
        released = 0
        while self._items and self._items[0][0] <= seq:
            _, size, _ = self._items.popleft()
            self.bytes -= size
            released += 1
        self.acked = max(self.acked, seq)
        return released

    def replay(self, received: int) -> Iterator[Tuple[int, object]]:
        """After a reconnection: acknowledges ``received`` and yields what the peer still lacks, in order."""
        if received > self.acked:
            self.ack(received)
        for seq, _, item in list(self._items):
            yield seq, item

    @property
    def pending(self) -> int:
        return len(self._items)

    def full(self) -> bool:
        """True when producers should wait for acknowledgements before adding more."""
        return self.bytes >= self.limit

    def oldest(self) -> Optional[int]:
        return self._items[0][0] if self._items else None


class Inbox:
    """Tracks the last processed incoming sequence number; drops duplicates after a replay."""

    def __init__(self) -> None:
        self.received = 0
        self.duplicates = 0
        self.gaps = 0

    def accept(self, seq: Optional[int]) -> bool:
        """True when the message numbered ``seq`` should be processed (unnumbered messages always are)."""
        if seq is None:
            return True
        if seq <= self.received:
            self.duplicates += 1
            return False
        if seq != self.received + 1:
            self.gaps += 1  # the sender dropped nothing it numbered, so a gap is a bug worth counting
        self.received = seq
        return True
