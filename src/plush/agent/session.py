"""The agent's session with its controller: one conversation that outlives broken connections.

Theory of operation. After ``prepared`` the runtime talks to an :class:`AgentSession` instead of a bare
:class:`~plush.agent.link.AgentLink`; the session has the same face (:class:`~plush.agent.link.Channel`:
``send``, ``send_binary``, ``drain``, ``recv``, ``async for``) and keeps the conversation going across
connections (docs/protocol.md, "Reconnection"):

- **Sending.** Every run message gets a sequence number and is kept, encoded, by the
  :class:`~plush.agent.outbox.SpoolOutbox` until the controller acknowledges it (``ack {q}``); it is
  written at once when a link is up. Liveness messages (``log``, ``hostmon``) are sent when a link is up
  and dropped otherwise. :meth:`send_binary` (process output, uploads) first waits while the outbox holds
  ``output_buffer_bytes``: the process then blocks on its pipe. Nothing is lost while the session lives.
- **Receiving.** A pump task reads the current link: ``ack`` releases the outbox; a numbered message
  (``q``) goes through an :class:`~plush.protocol.reliable.Inbox` that drops duplicates, then to the
  runtime's queue; the agent acknowledges the controller's messages every :data:`ACK_EVERY` messages or
  within :data:`ACK_INTERVAL` seconds.
- **Reconnecting.** When the link breaks without a ``stop`` (the stream ended, was reset, or the
  controller stayed silent past the agent's own ping), processes keep running. The pump redials with
  exponential back-off (:data:`BACKOFF_INITIAL` doubling to :data:`BACKOFF_MAX`, each delay with +-50%
  jitter, the first one before the first attempt), joining with ``resume:
  true`` and ``received`` (the last controller message processed). The controller answers ``welcome`` then
  ``resume {received}``; the session replays every kept frame after that, in order, *before* anything new
  (new messages are kept, not written, during the replay), then carries on.
- **Giving up.** After ``agent_grace`` seconds without a controller, or at once when the controller
  answers ``reject`` (the run is over, or the host was replaced), the session ends: :meth:`recv` raises
  :class:`~plush.agent.link.LinkClosed`, the runtime stops every process and the agent exits non-zero.
  A link that closes after ``stop`` ends the session quietly (the runtime finishes its stop).

Invariants: one pump task per session, owned and cancelled by :meth:`close`; the runtime's messages never
raise because a link broke (only :meth:`recv` reports the end); at most one link is current. Standard
library only, Python 3.8.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from typing import Any, Awaitable, Callable, Dict, Optional

from plush.agent.link import AgentLink, LinkClosed, Rejected
from plush.agent.outbox import SpoolOutbox
from plush.errors import ProtocolError
from plush.protocol.messages import RUN, SCHEMA, Message
from plush.protocol.reliable import SEQ_FIELD, Inbox

__all__ = ["ACK_EVERY", "ACK_INTERVAL", "BACKOFF_INITIAL", "BACKOFF_MAX", "AgentSession", "Redial", "numbered"]

log = logging.getLogger(__name__)

#: acknowledge the controller after this many numbered messages ...
ACK_EVERY = 32
#: ... or this many seconds after the first one not yet acknowledged
ACK_INTERVAL = 0.5
#: seconds before the first redial; doubled after each failure up to BACKOFF_MAX
BACKOFF_INITIAL = 0.1
BACKOFF_MAX = 2.0

#: ``await redial({"resume": True, "received": n})``: a new, welcomed link (join fields added to the usual)
Redial = Callable[[Dict[str, Any]], Awaitable[AgentLink]]


def numbered(mtype: str) -> bool:
    """Whether the agent numbers (and keeps until acknowledged) messages of type ``mtype``."""
    spec = SCHEMA.get(mtype)
    return spec is not None and spec.category == RUN


class AgentSession:
    """The runtime's reconnecting channel to the controller (see the module docstring)."""

    def __init__(
        self,
        link: AgentLink,
        *,
        redial: Redial,
        outbox: SpoolOutbox,
        grace: float,
        queue_size: int = 256,
        backoff_initial: float = BACKOFF_INITIAL,
        backoff_max: float = BACKOFF_MAX,
        ack_every: int = ACK_EVERY,
        ack_interval: float = ACK_INTERVAL,
    ) -> None:
        self._loop = asyncio.get_running_loop()
        self._link: Optional[AgentLink] = link
        self._redial = redial
        self.outbox = outbox
        self.inbox = Inbox()
        self.grace = grace
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.ack_every = ack_every
        self.ack_interval = ack_interval
        self._queue: "asyncio.Queue[Optional[Message]]" = asyncio.Queue(queue_size)
        self._room = asyncio.Event()
        self._room.set()
        self._replaying = False
        self._stopping = False
        self._closing = False
        self._end_reason: Optional[str] = None
        self._unacked = 0
        self._ack_timer: Optional[asyncio.TimerHandle] = None
        #: how many times the link broke and how many of them ended in a resumed session
        self.disconnects = 0
        self.reconnects = 0
        self.replayed = 0
        self._pump_task = self._loop.create_task(self._pump())

    # --- the runtime's side -------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._link is not None and not self._replaying

    @property
    def ended(self) -> bool:
        return self._end_reason is not None

    def send(self, msg: Message) -> None:
        """Send ``msg``: a run message is numbered and kept until acknowledged (written now when a link is
        up); a liveness message is written now or dropped. Never raises for a broken link."""
        if self._end_reason is not None:
            log.debug("session over: %r not sent", msg.type)
            return
        if numbered(msg.type):
            _, frame = self.outbox.add(msg)
            self._update_room()
            link = self._link
            if link is not None and not self._replaying:
                with contextlib.suppress(LinkClosed):  # the pump notices the break and resumes
                    link.send_encoded(msg.type, frame)
            return
        link = self._link
        if link is not None and not self._replaying:
            with contextlib.suppress(LinkClosed):
                link.send(msg)

    async def send_binary(self, msg: Message) -> None:
        """Send bulk data: wait while the outbox is full (backpressure), send, wait for the link to drain."""
        while self.outbox.full() and self._end_reason is None:
            self._room.clear()
            await self._room.wait()
        self.send(msg)
        await self.drain()
        # let the loop run once even when nothing had to drain: a producer whose pipe always has data never
        # yields otherwise, and a broken connection must be noticed before we write to it again
        await asyncio.sleep(0)

    async def drain(self) -> None:
        """Wait while the current link has more than its high-water mark to write (no-op when down)."""
        link = self._link
        if link is None or self._replaying:
            return
        with contextlib.suppress(LinkClosed, ConnectionError):
            await link.drain()

    async def recv(self) -> Message:
        """The next message from the controller; :class:`LinkClosed` once the session is over."""
        if self._queue.empty() and self._end_reason is not None:
            raise LinkClosed(self._end_reason)
        msg = await self._queue.get()
        if msg is None:
            with contextlib.suppress(asyncio.QueueFull):
                self._queue.put_nowait(None)  # keep raising for later callers
            raise LinkClosed(self._end_reason or "closed")
        return msg

    def __aiter__(self) -> "AgentSession":
        return self

    async def __anext__(self) -> Message:
        try:
            return await self.recv()
        except LinkClosed:
            raise StopAsyncIteration from None

    async def close(self, timeout: float = 0.25) -> None:
        """End the session: stop the pump, close the link (waiting ``timeout`` at most), drop the spool."""
        self._closing = True
        if not self._pump_task.done():
            self._pump_task.cancel()
            await asyncio.wait([self._pump_task])
        link, self._link = self._link, None
        if link is not None:
            await link.close(timeout=timeout)
        self._end("the agent closed its session")
        if self.disconnects:
            log.info("session statistics: %s", self.statistics())
        self.outbox.close()

    def statistics(self) -> Dict[str, Any]:
        stats = self.outbox.statistics()
        stats.update(
            connected=self.connected,
            received=self.inbox.received,
            duplicates=self.inbox.duplicates,
            disconnects=self.disconnects,
            reconnects=self.reconnects,
            replayed=self.replayed,
        )
        return stats

    # --- the pump -----------------------------------------------------------------------------------

    async def _pump(self) -> None:
        reason = "closed"
        try:
            while True:
                link = self._link
                assert link is not None
                try:
                    while True:
                        await self._on_message(await link.recv())
                except LinkClosed as exc:
                    reason = exc.reason
                self._link = None
                await link.close(timeout=0.1)
                if self._stopping or self._closing:
                    break
                self.disconnects += 1
                log.warning(
                    "lost the controller (%s); processes keep running; reconnecting for up to %gs", reason, self.grace
                )
                await self._reconnect(reason)
        except LinkClosed as exc:
            reason = exc.reason
            log.error("giving up on the controller: %s", reason)
        except ProtocolError as exc:
            reason = "protocol error: {}".format(exc)
            log.error("session: %s", reason)
        finally:
            self._end(reason)

    async def _on_message(self, msg: Message) -> None:
        if msg.type == "ack":
            self.outbox.ack(msg["q"])  # a bogus ack is a protocol error: the session ends
            self._update_room()
            return
        seq = msg.fields.get(SEQ_FIELD)
        if isinstance(seq, int) and not isinstance(seq, bool):
            if not self.inbox.accept(seq):
                return  # a duplicate after a replay
            self._note_received()
        if msg.type == "stop":
            self._stopping = True
        await self._queue.put(msg)

    def _note_received(self) -> None:
        self._unacked += 1
        if self._unacked >= self.ack_every:
            self._send_ack()
        elif self._ack_timer is None:
            self._ack_timer = self._loop.call_later(self.ack_interval, self._send_ack)

    def _send_ack(self) -> None:
        if self._ack_timer is not None:
            self._ack_timer.cancel()
            self._ack_timer = None
        link = self._link
        if link is None or self._replaying or not self._unacked:
            return  # the next resume's ``received`` says it
        self._unacked = 0
        with contextlib.suppress(LinkClosed):
            link.send(Message.of("ack", q=self.inbox.received))

    def _update_room(self) -> None:
        if not self.outbox.full():
            self._room.set()

    def _end(self, reason: str) -> None:
        if self._end_reason is not None:
            return
        self._end_reason = reason
        self._link = None
        if self._ack_timer is not None:
            self._ack_timer.cancel()
            self._ack_timer = None
        self._room.set()  # wake bulk producers: their sends are dropped from now on
        with contextlib.suppress(asyncio.QueueFull):  # if full, recv() sees the end once it drained
            self._queue.put_nowait(None)

    # --- reconnecting -------------------------------------------------------------------------------

    async def _reconnect(self, reason: str) -> None:
        """Redial until a link is resumed (``self._link`` set) or the grace is over (:class:`LinkClosed`)."""
        loop = self._loop
        deadline = loop.time() + self.grace
        delay = self.backoff_initial
        attempts = 0
        while True:
            # wait first: the controller (or the network) needs a moment, and a thousand agents that lost it
            # at once must not come back in the same millisecond (jitter)
            await asyncio.sleep(max(0.0, min(delay * random.uniform(0.5, 1.5), deadline - loop.time())))
            delay = min(delay * 2, self.backoff_max)
            left = deadline - loop.time()
            if left <= 0:
                raise LinkClosed(
                    "no controller for {:g}s after the link broke ({}); {} attempt(s) to reconnect".format(
                        self.grace, reason, attempts
                    )
                )
            attempts += 1
            try:
                if await self._resume_once(left):
                    return
            except Rejected:
                raise
            except (LinkClosed, OSError, asyncio.TimeoutError) as exc:
                log.info("reconnect attempt %d failed: %s", attempts, exc)

    async def _resume_once(self, left: float) -> bool:
        link = await asyncio.wait_for(self._redial({"resume": True, "received": self.inbox.received}), left)
        try:
            first = await asyncio.wait_for(link.recv(), max(left, 1.0))
            if first.type == "stop":  # the controller wants this host stopped rather than resumed
                self._link = link
                self._stopping = True
                await self._queue.put(first)
                return True
            if first.type != "resume":
                raise ProtocolError("expected 'resume' after a resuming join, got {!r}".format(first.type))
            self._link = link
            self._replaying = True
            try:
                count = await self._replay(link, int(first["received"]))
            finally:
                self._replaying = False
            # after the replay, so that the line reaches the controller too (plush.agent.logforward)
            log.warning("resumed: the controller had %d of our messages; replayed %d", int(first["received"]), count)
        except BaseException:
            self._link = None
            await link.close(timeout=0.1)
            raise
        self.reconnects += 1
        if self._unacked:
            self._send_ack()
        return True

    async def _replay(self, link: AgentLink, received: int) -> int:
        outbox = self.outbox
        if received > outbox.acked:
            outbox.ack(received)
            self._update_room()
        seq = outbox.acked + 1
        count = 0
        while seq < outbox.next_seq:  # new messages kept meanwhile are replayed too, in order
            item = outbox.get(seq)
            assert item is not None  # acks are not read during the replay
            link.send_encoded(*item)
            seq += 1
            count += 1
            await link.drain()
            await asyncio.sleep(0)  # notice a break before the next write (see send_binary)
        self.replayed += count
        return count
