"""The controller's side of reliable delivery: one :class:`HostSession` per host, across its connections.

Role. The run engine talks to each host through one session that outlives broken connections (docs/
protocol.md, "Reconnection"; the agent's side is :mod:`plush.agent.session`):

- **Numbering and retention.** Every run message the engine sends an agent (files, barrier releases, work
  items, ``go``, ``reset``, ...; see :func:`numbered`) gets the next sequence number in its field ``q``, is
  encoded ONCE, and the frame is kept in a :class:`~plush.protocol.reliable.Outbox` until the agent's
  cumulative ``ack``. The same bytes are written to the link and, after a resume, replayed.
- **Dedupe.** Every numbered message from the agent passes :meth:`HostSession.accept` (an
  :class:`~plush.protocol.reliable.Inbox`): a message already processed is dropped.
- **Acknowledgement.** The controller acknowledges what it *processed*: after :data:`ACK_EVERY` messages of
  a host at once, otherwise within :data:`ACK_INTERVAL` seconds (one timer for the whole table, armed only
  while some host has something to acknowledge, flushing only those hosts). So an agent's retained output
  stays small in steady state: about what is in flight.
- **Resume.** On a resuming join the engine answers ``welcome`` then ``resume {received}``
  (:attr:`HostSession.received`) and writes :meth:`HostSession.replay` (everything after the agent's own
  ``received``, in order) before anything new.

A fresh (non-resuming) join opens a new session for the host (:meth:`SessionTable.open`): numbering starts
again at 1 on both sides. Decisions are synchronous; the only asyncio here is the acknowledgement timer.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator

from plush.protocol.framing import encode
from plush.protocol.messages import C2A, RUN, SCHEMA, Message, validate
from plush.protocol.reliable import SEQ_FIELD, Inbox, Outbox

__all__ = ["ACK_EVERY", "ACK_INTERVAL", "AGENT_POLL", "HostSession", "SessionTable", "numbered"]

log = logging.getLogger(__name__)

#: acknowledge a host after this many processed messages ...
ACK_EVERY = 32
#: ... or this many seconds after the first one not yet acknowledged
ACK_INTERVAL = 0.5

#: seconds between checks of a disconnected host's agent process (did it die while we wait for it?)
AGENT_POLL = 0.2

#: controller -> agent types that are numbered: run messages, plus ``go`` (a stage must not be lost)
_NUMBERED: frozenset[str] = frozenset(
    {t for t, s in SCHEMA.items() if s.direction == C2A and s.category == RUN} | {"go"}
)


def numbered(mtype: str) -> bool:
    """Whether the controller numbers (and keeps until acknowledged) messages of type ``mtype``."""
    return mtype in _NUMBERED


class HostSession:
    """Sequence numbers, retained frames and dedupe of one host's conversation."""

    def __init__(self, host: str) -> None:
        self.host = host
        self.outbox = Outbox()
        self.inbox = Inbox()
        self.unacked = 0  # messages processed since the last ack sent
        self.resumes = 0

    @property
    def received(self) -> int:
        """The last numbered agent message processed."""
        return self.inbox.received

    def number(self, msg: Message) -> bytes:
        """Give ``msg`` its ``q``, check and encode it once, keep the frame; returns the frame to write."""
        msg.fields[SEQ_FIELD] = self.outbox.next_seq
        validate(msg)
        frame = encode(msg)
        self.outbox.add((msg.type, frame), len(frame))
        return frame

    def accept(self, msg: Message) -> bool:
        """Whether ``msg`` from the agent is to be processed (False: a duplicate after a replay)."""
        seq = msg.fields.get(SEQ_FIELD)
        if not isinstance(seq, int) or isinstance(seq, bool):
            return True
        return self.inbox.accept(seq)

    def acked(self, seq: int) -> int:
        """The agent's ``ack``: frames up to ``seq`` may go; how many were released."""
        return self.outbox.ack(seq)

    def replay(self, received: int) -> Iterator[tuple[str, bytes]]:
        """After a resume: ``(type, frame)`` of every kept message after the agent's ``received``."""
        self.resumes += 1
        for _, item in self.outbox.replay(received):
            assert isinstance(item, tuple)  # what number() added: (type, frame)
            yield str(item[0]), bytes(item[1])

    def statistics(self) -> dict[str, int]:
        return {
            "sent": self.outbox.next_seq - 1,
            "acked": self.outbox.acked,
            "retained": self.outbox.pending,
            "retained_bytes": self.outbox.bytes,
            "received": self.inbox.received,
            "duplicates": self.inbox.duplicates,
            "resumes": self.resumes,
        }


class SessionTable:
    """Every host's session, and the acknowledgements owed to agents.

    ``send_ack(host, q)`` writes ``ack {q}`` to the host's current link (the engine's job).
    """

    def __init__(
        self,
        send_ack: Callable[[str, int], None],
        *,
        ack_every: int = ACK_EVERY,
        ack_interval: float = ACK_INTERVAL,
    ) -> None:
        self._send_ack = send_ack
        self.ack_every = ack_every
        self.ack_interval = ack_interval
        self.sessions: dict[str, HostSession] = {}
        self._dirty: set[str] = set()
        self._timer: asyncio.TimerHandle | None = None
        self._closed = False

    def open(self, host: str) -> HostSession:
        """A new session for ``host`` (a fresh agent joined): numbering starts again."""
        session = self.sessions[host] = HostSession(host)
        self._dirty.discard(host)
        return session

    def get(self, host: str) -> HostSession | None:
        return self.sessions.get(host)

    def processed(self, host: str) -> None:
        """The engine processed one numbered message of ``host``: acknowledge now or soon."""
        session = self.sessions.get(host)
        if session is None or self._closed:
            return
        session.unacked += 1
        if session.unacked >= self.ack_every:
            self._ack(session)
            return
        self._dirty.add(host)
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self.ack_interval, self.flush)

    def flush(self) -> None:
        """Acknowledge every host that has something unacknowledged (the timer's callback)."""
        self._timer = None
        dirty, self._dirty = self._dirty, set()
        for host in dirty:
            session = self.sessions.get(host)
            if session is not None and session.unacked:
                self._ack(session)

    def _ack(self, session: HostSession) -> None:
        session.unacked = 0
        self._dirty.discard(session.host)
        self._send_ack(session.host, session.received)

    def close(self) -> None:
        """No more acknowledgements (the run is stopping)."""
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._dirty.clear()
