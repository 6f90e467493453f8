"""The controller's listener: agents dial in over TCP+TLS; each becomes a :class:`Peer`.

Role: the controller-side asyncio adapter of the wire protocol. It accepts TLS connections, runs one sans-IO
:class:`~plush.protocol.connection.Connection` per peer, and hands what arrives to the controller as
:class:`PeerEvent` s on ONE listener-wide inbox (``await listener.next_event()`` or ``async for``). It
makes no decision of its own beyond the protocol's: the controller answers ``join`` with ``welcome`` or
``reject``, sends ``prepare``, and so on, through :meth:`Peer.send`.

Invariants (designed for thousands of peers):
- no task per peer and none per message: peers are ``asyncio.Protocol`` objects; the inbox is one queue;
- nothing from a peer reaches the inbox before it sent a ``join`` with the right token (the Connection
  enforces it; the listener aborts the transport on :class:`~plush.errors.AuthenticationError`), and a
  peer that never joined produces no event at all, not even its disconnection;
- reading is bounded: a peer with ``inbox_limit`` undelivered messages is paused (``pause_reading``) until
  the controller has taken half of them;
- writing is batched: everything a peer is sent in one loop iteration goes out in one ``writelines``;
  :meth:`Peer.send` never blocks, :meth:`Peer.drain` waits while the transport is above its high-water
  mark, and a peer whose pending output exceeds ``max_write_buffer`` is closed as too slow;
- :meth:`Peer.send_bytes` writes a frame encoded once (``plush.protocol.framing.encode``) for a broadcast;
- one timer (a single re-armed ``call_at`` handle over a heap of per-peer deadlines) drives every peer's
  liveness; a dead peer is reported to ``on_peer_dead`` and as a final event, then aborted;
- after an authenticated peer is gone, exactly one event with ``message=None`` and a ``reason`` follows
  its last message;
- start-up grace: from its join until the first bytes it sends after the join (its first heartbeat or its
  ``prepared``), a peer's silence timeout is ``startup_silence_factor`` (2) times ``silence_timeout``, so an
  agent that is starved of CPU during a mass start is not declared dead; afterwards detection is the
  steady-state ``silence_timeout + ping_timeout`` (see docs/protocol.md, Liveness);
- memory: each TLS connection reads through a 32 KiB buffer (:data:`TLS_READ_BUFFER`) instead of asyncio's
  256 KiB, where the running asyncio allows it (see :func:`small_buffer_tls_protocol`).
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import ssl
from collections.abc import Callable
from typing import Any, NamedTuple

from plush.config import Settings
from plush.errors import AuthenticationError, ProtocolError
from plush.protocol.connection import CLOSED, CONTROLLER, Connection
from plush.protocol.messages import PROTOCOL_VERSION, Message
from plush.protocol.secret import Secret

__all__ = ["TLS_READ_BUFFER", "ControllerListener", "Peer", "PeerEvent", "small_buffer_tls_protocol"]

log = logging.getLogger(__name__)

_HIGH_WATER = 1024 * 1024
#: bytes of TLS read buffer per connection (two full TLS records; asyncio's default is 256 KiB)
TLS_READ_BUFFER = 32 * 1024


def small_buffer_tls_protocol() -> Callable[..., asyncio.BaseProtocol] | None:
    """asyncio's TLS protocol with a :data:`TLS_READ_BUFFER` read buffer, or None where that is not possible.

    asyncio allocates ``SSLProtocol.max_size`` (256 KiB) per TLS connection and has no public setting for
    it: ~0.28 MB of controller memory per agent. ``loop.create_server(ssl=...)`` wraps each TCP connection
    in an ``asyncio.sslproto.SSLProtocol``; the listener does the same itself with a subclass whose
    ``max_size`` is smaller. That class is private API, hence the guard: without it (a future asyncio), the
    listener falls back to ``create_server(ssl=...)`` and only costs more memory.
    """
    sslproto = getattr(asyncio, "sslproto", None)
    base = getattr(sslproto, "SSLProtocol", None)
    if not isinstance(base, type) or not hasattr(base, "max_size") or not hasattr(base, "get_buffer"):
        return None
    small: Callable[..., asyncio.BaseProtocol] = type("SmallBufferSSLProtocol", (base,), {"max_size": TLS_READ_BUFFER})
    return small


class PeerEvent(NamedTuple):
    """A message from ``peer``, or (``message is None``) the end of ``peer`` with its ``reason``."""

    peer: Peer
    message: Message | None
    reason: str | None = None


class Peer(asyncio.Protocol):
    """One agent connection. Created by the listener; the controller uses :meth:`send` and friends."""

    def __init__(self, listener: ControllerListener, ident: int) -> None:
        self.listener = listener
        self.id = ident
        self.address = "?"
        self.join: Message | None = None  #: the agent's join (without its token) once it joined
        silence = listener.settings.silence_timeout
        #: True from the connection until the first bytes after the join: the silence timeout is longer
        self.starting = silence > 0
        self.conn = Connection(
            CONTROLLER,
            listener.token,
            listener.loop.time(),
            peer=f"peer#{ident}",
            silence_timeout=silence * listener.startup_silence_factor if self.starting else silence,
            ping_timeout=listener.settings.ping_timeout,
            join_timeout=listener.settings.join_timeout,
        )
        self.close_reason: str | None = None
        self._transport: asyncio.Transport | None = None
        self._wbuf: list[bytes] = []
        self._wlen = 0
        self._flush_scheduled = False
        self._paused_writing = False
        self._drain_waiters: list[asyncio.Future[None]] = []
        self._queued = 0  # events of this peer in the listener's inbox
        self._paused_reading = False
        self.timer_when: float | None = None

    def __repr__(self) -> str:
        return f"<Peer #{self.id} {self.host or self.address} {self.conn.state}>"

    @property
    def host(self) -> str | None:
        """The host name the agent joined as."""
        return None if self.join is None else str(self.join["host"])

    @property
    def closed(self) -> bool:
        return self.close_reason is not None

    # -- asyncio.Protocol callbacks ----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        peername = transport.get_extra_info("peername")
        self.address = f"{peername[0]}:{peername[1]}" if isinstance(peername, tuple) else str(peername)
        transport.set_write_buffer_limits(high=self.listener.high_water)
        self.listener.peers[self.id] = self
        self.send(Message("invite", {"run": self.listener.run_id, "protocol": PROTOCOL_VERSION}))

    def data_received(self, data: bytes) -> None:
        if self.closed:
            return
        listener = self.listener
        try:
            messages = self.conn.receive_data(data, listener.loop.time())
        except AuthenticationError as exc:
            log.warning("refused an unauthenticated connection from %s: %s", self.address, exc)
            self.abort(f"authentication failed: {exc}")
            return
        except ProtocolError as exc:
            log.warning("%s broke the protocol: %s", self, exc)
            self.abort(f"protocol error: {exc}")
            return
        out = self.conn.data_to_send()
        if out:
            self._write(out)
        if self.starting and self.join is not None:  # bytes after the join: the agent is up and running
            self.starting = False
            self.conn.silence_timeout = listener.settings.silence_timeout
        for msg in messages:
            if msg.type == "join":
                self.join = msg
            listener.deliver(self, msg)
        listener.schedule(self)
        if self.conn.state == CLOSED:
            self.close("the conversation ended")

    def connection_lost(self, exc: Exception | None) -> None:
        reason = self.close_reason or (f"connection lost: {exc}" if exc else "the agent closed the connection")
        self._finish(reason)

    def pause_writing(self) -> None:
        self._paused_writing = True

    def resume_writing(self) -> None:
        self._paused_writing = False
        self._wake_drainers(None)

    # -- sending --------------------------------------------------------------------------------------------

    def send(self, msg: Message) -> None:
        """Queue ``msg`` for this peer (non-blocking; written at the end of this loop iteration)."""
        self._write(self.conn.send(msg, self.listener.loop.time()))
        self.listener.schedule(self)

    def send_bytes(self, frame: bytes, msg: Message) -> None:
        """Queue ``frame``, which is ``encode(msg)`` computed once for many peers (a broadcast)."""
        self._write(self.conn.send(msg, self.listener.loop.time(), encoded=frame))
        self.listener.schedule(self)

    def _write(self, data: bytes) -> None:
        if self.closed or self._transport is None:
            raise ConnectionResetError(f"{self!r} is closed: {self.close_reason}")
        self._wbuf.append(data)
        self._wlen += len(data)
        if self._wlen + self._transport.get_write_buffer_size() > self.listener.max_write_buffer:
            self.abort(f"too slow: more than {self.listener.max_write_buffer} bytes of output pending")
            raise ConnectionResetError(f"{self!r} is closed: {self.close_reason}")
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self.listener.loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        if self._wbuf and self._transport is not None and not self._transport.is_closing():
            self._transport.writelines(self._wbuf)
        self._wbuf.clear()
        self._wlen = 0

    async def drain(self) -> None:
        """Wait until this peer's transport is below its high-water mark (use it between bulk writes)."""
        self._flush()
        if self.closed:
            raise ConnectionResetError(f"{self!r} is closed: {self.close_reason}")
        if not self._paused_writing:
            return
        waiter: asyncio.Future[None] = self.listener.loop.create_future()
        self._drain_waiters.append(waiter)
        await waiter

    def _wake_drainers(self, exc: Exception | None) -> None:
        waiters, self._drain_waiters = self._drain_waiters, []
        for waiter in waiters:
            if not waiter.done():
                if exc is None:
                    waiter.set_result(None)
                else:
                    waiter.set_exception(exc)

    # -- closing ----------------------------------------------------------------------------------------------

    def close(self, reason: str = "closed by the controller") -> None:
        """Close after pending output is written."""
        if self.close_reason is None:
            self.close_reason = reason
        self._flush()
        if self._transport is not None and not self._transport.is_closing():
            self._transport.close()

    def abort(self, reason: str) -> None:
        """Drop the connection at once, discarding pending output."""
        if self.close_reason is None:
            self.close_reason = reason
        self._wbuf.clear()
        if self._transport is not None:
            self._transport.abort()

    def _finish(self, reason: str) -> None:
        if self.close_reason is None:
            self.close_reason = reason
        self.conn.close(reason)
        self._wake_drainers(ConnectionResetError(f"{self!r} is closed: {reason}"))
        self.listener.forget(self, reason)

    def statistics(self) -> dict[str, Any]:
        stats = self.conn.statistics()
        stats.update(id=self.id, address=self.address, host=self.host, queued=self._queued)
        return stats


class ControllerListener:
    """The TLS server agents dial. ``await start()``, then consume :class:`PeerEvent` s; ``await close()``."""

    def __init__(
        self,
        *,
        ssl_context: ssl.SSLContext,
        token: Secret,
        run_id: str,
        host: str = "127.0.0.1",
        port: int = 0,
        settings: Settings | None = None,
        on_peer_dead: Callable[[Peer, str], None] | None = None,
        inbox_limit: int = 64,
        high_water: int = _HIGH_WATER,
        max_write_buffer: int = 64 * 1024 * 1024,
        startup_silence_factor: float = 2.0,
    ) -> None:
        self.ssl_context = ssl_context
        self.token = token
        self.run_id = run_id
        self.host = host
        self.port = port
        self.settings = settings or Settings()
        self.on_peer_dead = on_peer_dead
        self.inbox_limit = inbox_limit
        self.high_water = high_water
        self.max_write_buffer = max_write_buffer
        self.startup_silence_factor = max(1.0, startup_silence_factor)
        self.peers: dict[int, Peer] = {}
        self._ids = itertools.count(1)
        self._inbox: asyncio.Queue[PeerEvent] = asyncio.Queue()
        self._server: asyncio.Server | None = None
        self._heap: list[tuple[float, int, Peer]] = []
        self._timer: asyncio.TimerHandle | None = None
        self._timer_when: float | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.refused = 0

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        assert self._loop is not None, "start() the listener first"
        return self._loop

    async def start(self) -> None:
        """Listen; afterwards :attr:`port` is the bound port."""
        loop = self._loop = asyncio.get_running_loop()
        tls = small_buffer_tls_protocol()
        if tls is not None:  # TLS layered by hand, as create_server(ssl=...) does, with a smaller buffer
            ssl_context, timeout = self.ssl_context, self.settings.join_timeout

            def protocol() -> asyncio.BaseProtocol:
                peer = Peer(self, next(self._ids))
                made: asyncio.BaseProtocol = tls(
                    loop, peer, ssl_context, None, server_side=True, ssl_handshake_timeout=timeout
                )
                return made

            self._server = await loop.create_server(protocol, self.host, self.port, backlog=4096)
        else:
            self._server = await loop.create_server(
                lambda: Peer(self, next(self._ids)),
                self.host,
                self.port,
                ssl=self.ssl_context,
                ssl_handshake_timeout=self.settings.join_timeout,
                backlog=4096,
            )
        self.port = self._server.sockets[0].getsockname()[1]
        log.info("listening for agents on %s:%d", self.host, self.port)

    async def __aenter__(self) -> ControllerListener:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- the inbox -------------------------------------------------------------------------------------------

    def deliver(self, peer: Peer, msg: Message | None, reason: str | None = None) -> None:
        peer._queued += 1
        self._inbox.put_nowait(PeerEvent(peer, msg, reason))
        if peer._queued >= self.inbox_limit and not peer._paused_reading and peer._transport is not None:
            peer._paused_reading = True
            peer._transport.pause_reading()

    async def next_event(self) -> PeerEvent:
        """The next message (or end) of any joined peer, in arrival order per peer."""
        event = await self._inbox.get()
        self._taken(event.peer)
        return event

    def next_event_nowait(self) -> PeerEvent:
        """Like :meth:`next_event`; raises ``asyncio.QueueEmpty`` when there is none."""
        event = self._inbox.get_nowait()
        self._taken(event.peer)
        return event

    def _taken(self, peer: Peer) -> None:
        peer._queued -= 1
        if peer._paused_reading and peer._queued <= self.inbox_limit // 2:
            peer._paused_reading = False
            if peer._transport is not None and not peer.closed:
                peer._transport.resume_reading()

    def __aiter__(self) -> ControllerListener:
        return self

    async def __anext__(self) -> PeerEvent:
        return await self.next_event()

    # -- the one timer ---------------------------------------------------------------------------------------

    def schedule(self, peer: Peer) -> None:
        """Make sure the timer fires no later than ``peer``'s next deadline."""
        when = peer.conn.get_timer()
        if when is None or peer.closed or (peer.timer_when is not None and peer.timer_when <= when):
            return
        peer.timer_when = when
        heapq.heappush(self._heap, (when, peer.id, peer))
        if self._timer_when is None or when < self._timer_when:
            self._arm(when)

    def _arm(self, when: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer_when = when
        self._timer = self.loop.call_at(when, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = self._timer_when = None
        heap = self._heap
        while heap and heap[0][0] <= self.loop.time() + 0.001:
            when, _, peer = heapq.heappop(heap)
            if peer.closed or peer.timer_when != when:
                continue  # stale: the peer is gone or got an earlier entry
            peer.timer_when = None
            peer.conn.handle_timer(max(self.loop.time(), when))
            out = peer.conn.data_to_send()
            if out:
                peer._write(out)
            if peer.conn.peer_dead:
                self._dead(peer, peer.conn.dead_reason or "dead")
            else:
                self.schedule(peer)
        if heap:
            self._arm(heap[0][0])

    def _dead(self, peer: Peer, reason: str) -> None:
        if peer.join is None:
            log.info("dropping %s: %s", peer.address, reason)
        else:
            log.warning("%s is dead: %s", peer, reason)
            if self.on_peer_dead is not None:
                self.on_peer_dead(peer, reason)
        peer.abort(reason)

    # -- bookkeeping and shutdown ----------------------------------------------------------------------------

    def forget(self, peer: Peer, reason: str) -> None:
        """Called once per peer when its connection is gone."""
        if self.peers.pop(peer.id, None) is None:
            return
        if peer.join is not None:
            self.deliver(peer, None, reason)
        else:
            self.refused += 1

    def statistics(self) -> dict[str, Any]:
        return {
            "peers": len(self.peers),
            "joined": sum(1 for p in self.peers.values() if p.join is not None),
            "refused": self.refused,
            "inbox": self._inbox.qsize(),
            "timers": len(self._heap),
        }

    async def close(self) -> None:
        """Stop listening, close every peer (pending output is flushed), wait for the server to finish."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = self._timer_when = None
        if self._server is not None:
            self._server.close()
        for peer in list(self.peers.values()):
            peer.close("the controller is closing")
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None
