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
- a late controller blames no agent: the timer tells each connection how late it fired, and a ping deadline
  that passed while the loop was late (blocked, starved) starts over once, to be judged after the answers
  that arrived meanwhile are read (logged: info once a minute, debug otherwise); a ping the timer sends is
  written at once, so its deadline counts from when it left; a peer paused for the controller's backlog
  (``inbox_limit``) is not pinged nor judged until it is read again;
- memory: each TLS connection reads through a 32 KiB buffer (:data:`TLS_READ_BUFFER`) instead of asyncio's
  256 KiB, where the running asyncio allows it (see :func:`small_buffer_tls_protocol`);
- unauthenticated connections are bounded (docs/operations.md, Security): from its TCP accept until its
  valid ``join`` a connection is held in the :class:`~plush.fabric.admission.Admission` table (at most
  ``preauth_limit``, ``preauth_per_source`` per address; a newcomer is always admitted and the oldest are
  dropped for it) and has ``handshake_timeout`` seconds to complete TLS and join. The
  :class:`~plush.fabric.acceptor.Acceptor` accepts; out of descriptors, the listener drops its oldest
  unauthenticated connection and accepting resumes after a back-off, with one warning;
- hostile input: every malformed frame or refused handshake closes that connection with ONE log line;
  no exception from a peer's bytes reaches asyncio (which would print a traceback).

Peers of another transport: :meth:`ControllerListener.adopt` gives a Peer for a stream the controller opened
itself (an SSH session's stdio, :mod:`plush.fabric.sshstdio`): the same Peer and events, without TLS and
pre-authentication admission.

Size: about 640 lines, kept whole: the acceptor, the per-peer protocol adapter, the batched writer and the
one timer of every peer's deadlines work on the same peer table, in one event-loop turn.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import logging
import socket
import ssl
from collections.abc import Callable
from typing import Any, NamedTuple

from plush.config import Settings
from plush.errors import AuthenticationError, ProtocolError
from plush.fabric.acceptor import Acceptor
from plush.fabric.admission import Admission
from plush.protocol.connection import CLOSED, CONTROLLER, Connection
from plush.protocol.messages import PROTOCOL_VERSION, Message
from plush.protocol.secret import Secret

__all__ = ["TLS_READ_BUFFER", "ControllerListener", "Peer", "PeerEvent", "small_buffer_tls_protocol"]

log = logging.getLogger(__name__)

_HIGH_WATER = 1024 * 1024
_FULL_WARNING_EVERY = 60.0  # seconds between warnings that the pre-auth limit drops connections
_LATE_NOTICE_EVERY = 60.0  # seconds between info lines that the controller was late for ping deadlines
#: bytes of TLS read buffer per connection (two full TLS records; asyncio's default is 256 KiB)
TLS_READ_BUFFER = 32 * 1024


def small_buffer_tls_protocol() -> Callable[..., asyncio.BaseProtocol] | None:
    """asyncio's TLS protocol with a :data:`TLS_READ_BUFFER` read buffer, or None where that is not possible.

    asyncio allocates ``SSLProtocol.max_size`` (256 KiB) per TLS connection and has no public setting for
    it: ~0.28 MB of controller memory per agent. ``loop.create_server(ssl=...)`` wraps each TCP connection
    in an ``asyncio.sslproto.SSLProtocol``; the listener does the same itself with a subclass whose
    ``max_size`` is smaller. The subclass also tells the :class:`Peer` of the TCP connection before TLS
    (``tcp_made``: to drop it mid-handshake) and of its end (``tcp_lost``: asyncio says nothing to the
    peer of a connection lost during the handshake). That class is private API, hence the guard: without
    it (a future asyncio), the listener lets ``loop.connect_accepted_socket(ssl=...)`` do TLS, costs more
    memory, and learns of a connection lost mid-handshake only from its handshake timeout.
    """
    sslproto = getattr(asyncio, "sslproto", None)
    found = getattr(sslproto, "SSLProtocol", None)
    if not isinstance(found, type) or not hasattr(found, "max_size") or not hasattr(found, "get_buffer"):
        return None
    base: Any = found

    def connection_made(self: Any, transport: asyncio.BaseTransport) -> None:
        peer = getattr(self, "plush_peer", None)
        if isinstance(peer, Peer):
            peer.tcp_made(transport)
        base.connection_made(self, transport)

    def connection_lost(self: Any, exc: Exception | None) -> None:
        base.connection_lost(self, exc)
        peer = getattr(self, "plush_peer", None)
        if isinstance(peer, Peer):
            peer.tcp_lost(exc)

    attrs = {"max_size": TLS_READ_BUFFER, "connection_made": connection_made, "connection_lost": connection_lost}
    small: Callable[..., asyncio.BaseProtocol] = type("SmallBufferSSLProtocol", (base,), attrs)
    return small


class PeerEvent(NamedTuple):
    """A message from ``peer``, or (``message is None``) the end of ``peer`` with its ``reason``."""

    peer: Peer
    message: Message | None
    reason: str | None = None


class Peer(asyncio.Protocol):
    """One agent connection. Created by the listener; the controller uses :meth:`send` and friends."""

    def __init__(self, listener: ControllerListener, ident: int, source: str = "?", address: str = "?") -> None:
        self.listener = listener
        self.id = ident
        self.source = source  #: the source address (no port): the unit of the per-source pre-auth cap
        self.address = address
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
            handshake_timeout=listener.settings.handshake_timeout,
        )
        self.close_reason: str | None = None
        self._finished = False
        self._sock: socket.socket | None = None  # the accepted socket, until TLS is up
        self._raw: asyncio.Transport | None = None  # the TCP transport under TLS, until TLS is up
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

    def tcp_made(self, raw: asyncio.BaseTransport) -> None:
        """The TCP connection under TLS is up (TLS has not started): keep it, to drop it mid-handshake."""
        if isinstance(raw, asyncio.Transport):
            self._raw = raw
            if self.closed:  # dropped between its accept and now
                raw.abort()

    def tcp_lost(self, exc: Exception | None) -> None:
        """The TCP connection is gone; if TLS never came up, asyncio tells :meth:`connection_lost` nothing."""
        self._raw = self._sock = None
        if self._transport is None:
            self._finish(self.close_reason or f"lost during the TLS handshake: {exc or 'closed by the peer'}")

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        self._raw = self._sock = None
        if self.closed:  # dropped (or timed out) while TLS was finishing
            transport.abort()
            return
        peername = transport.get_extra_info("peername")
        if self.address == "?":
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
                listener.admission.release(self.id)  # authenticated: no longer counts against the caps
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
            return
        # not yet over TLS: abort the TCP transport under it, or shut the bare socket down, and finish now
        # (asyncio may never call connection_lost for a connection whose TLS handshake did not complete)
        if self._raw is not None:
            self._raw.abort()
        elif self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.shutdown(socket.SHUT_RDWR)
        self._finish(self.close_reason)

    def _finish(self, reason: str) -> None:
        if self._finished:
            return
        self._finished = True
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
        self.peers: dict[int, Peer] = {}  #: peers over TLS (joined or not)
        self.admission = Admission(self.settings.preauth_limit, self.settings.preauth_per_source)
        self._pending: dict[int, Peer] = {}  # accepted, not yet gone; the unauthenticated ones are in admission
        self._ids = itertools.count(1)
        self._inbox: asyncio.Queue[PeerEvent] = asyncio.Queue()
        self._acceptor: Acceptor | None = None
        self._tls: Callable[..., asyncio.BaseProtocol] | None = None
        self._adopting: set[asyncio.Task[Any]] = set()
        self._all_gone: asyncio.Future[None] | None = None
        self._warned_full: float | None = None
        self._warned_late: float | None = None
        self._heap: list[tuple[float, int, Peer]] = []
        self._timer: asyncio.TimerHandle | None = None
        self._timer_when: float | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.refused = 0
        self._closed = False

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        assert self._loop is not None, "start() the listener first"
        return self._loop

    async def start(self) -> None:
        """Listen; afterwards :attr:`port` is the bound port."""
        self._loop = asyncio.get_running_loop()
        self._tls = small_buffer_tls_protocol()
        self._acceptor = Acceptor(self.host, self.port, self._accepted, self._make_room)
        await self._acceptor.start()
        self.port = self._acceptor.port
        log.info("listening for agents on %s:%d", self.host, self.port)

    def _accepted(self, sock: socket.socket, address: object) -> None:
        """A new TCP connection: admit it (dropping the oldest unauthenticated ones if need be), start TLS."""
        loop = self.loop
        if isinstance(address, tuple):
            source, address_text = str(address[0]), f"{address[0]}:{address[1]}"
        else:
            source = address_text = str(address)
        peer = Peer(self, next(self._ids), source, address_text)
        peer._sock = sock
        self._pending[peer.id] = peer
        dropped = self.admission.admit(peer.id, source, loop.time())
        for key in dropped:
            self._drop(key, "too many unauthenticated connections: dropped the oldest for a newer one")
        self.schedule(peer)  # the handshake deadline runs from the accept
        tls, timeout = self._tls, self.settings.handshake_timeout
        if tls is not None:  # TLS layered by hand, as create_server(ssl=...) does, with a smaller buffer

            def protocol() -> asyncio.BaseProtocol:
                made: Any = tls(loop, peer, self.ssl_context, None, server_side=True, ssl_handshake_timeout=timeout)
                made.plush_peer = peer
                result: asyncio.BaseProtocol = made
                return result

            adopt = loop.connect_accepted_socket(protocol, sock)
        else:
            ctx = self.ssl_context
            adopt = loop.connect_accepted_socket(lambda: peer, sock, ssl=ctx, ssl_handshake_timeout=timeout)
        task = loop.create_task(self._adopt(peer, adopt))
        self._adopting.add(task)
        task.add_done_callback(self._adopting.discard)

    async def _adopt(self, peer: Peer, adopt: Any) -> None:
        try:
            await adopt
        except (OSError, ssl.SSLError, ConnectionError) as exc:  # died before or during TLS (the fallback path)
            log.debug("connection from %s ended during the TLS handshake: %s", peer.address, exc)
            peer.tcp_lost(exc)

    def adopt(self, address: str) -> Peer:
        """A Peer for a stream the controller opened itself -- an SSH session's stdio
        (:mod:`plush.fabric.sshstdio`) -- to be handed its transport (``connection_made``) by the caller. SSH has
        authenticated both ends and nobody else opens such streams: no TLS, no pre-authentication admission,
        and the agent, which may still be starting its interpreter, gets ``join_timeout`` (not
        ``handshake_timeout``) to join. Its join carries the token as every other. Raises
        ``ConnectionError`` once the listener is closing."""
        if self._closed:
            raise ConnectionError("the listener is closed")
        peer = Peer(self, next(self._ids), "ssh", address)
        peer.conn.handshake_timeout = peer.conn.join_timeout
        self._pending[peer.id] = peer
        self.schedule(peer)
        return peer

    def _drop(self, key: int, reason: str) -> None:
        peer = self._pending.get(key)
        if peer is None:
            return
        now = self.loop.time()
        if self._warned_full is None or now - self._warned_full > _FULL_WARNING_EVERY:
            self._warned_full = now
            log.warning(
                "unauthenticated connections over the limit (%d held, %d from %s): dropping the oldest "
                "(preauth_limit, preauth_per_source)",
                len(self.admission),
                self.admission.held(peer.source),
                peer.source,
            )
        else:
            log.debug("dropping %s: %s", peer.address, reason)
        peer.abort(reason)

    def _make_room(self) -> bool:
        """Out of descriptors: drop the oldest unauthenticated connection; False if there is none."""
        key = self.admission.make_room()
        if key is None:
            return False
        peer = self._pending.get(key)
        if peer is not None:
            log.debug("dropping %s to free a descriptor", peer.address)
            peer.abort("dropped to free a descriptor")
        return True

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
                self.schedule(peer)  # its liveness timers, held while it was not read

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
        late, extended = 0.0, 0
        while heap and heap[0][0] <= self.loop.time() + 0.001:
            when, _, peer = heapq.heappop(heap)
            if peer.closed or peer.timer_when != when:
                continue  # stale: the peer is gone or got an earlier entry
            peer.timer_when = None
            if peer._paused_reading:
                continue  # the controller is behind on its events and does not read: judged once it reads again
            now = self.loop.time()
            # how late the loop is: a ping deadline that passed meanwhile starts over (Connection.handle_timer)
            peer.conn.handle_timer(max(now, when), now - when)
            if peer.conn.postponed:
                late, extended = max(late, peer.conn.postponed), extended + 1
            out = peer.conn.data_to_send()
            if out:  # a ping goes out now: its deadline counts from now, not from the next loop iteration
                peer._write(out)
                peer._flush()
            if peer.conn.peer_dead:
                self._dead(peer, peer.conn.dead_reason or "dead")
            else:
                self.schedule(peer)
        if extended:
            self._was_late(late, extended)
        if heap:
            self._arm(heap[0][0])

    def _was_late(self, late: float, extended: int) -> None:
        """Say (info, at most once a minute; debug otherwise) that the controller was late for ping deadlines."""
        now = self.loop.time()
        if self._warned_late is None or now - self._warned_late > _LATE_NOTICE_EVERY:
            self._warned_late = now
            level = logging.INFO
        else:
            level = logging.DEBUG
        log.log(
            level,
            "the controller was %.2fs late for the ping deadlines of %d agent(s): each waits %gs more "
            "(ping_timeout) after their answers are read; a loaded machine or a blocked event loop",
            late,
            extended,
            self.settings.ping_timeout,
        )

    def _dead(self, peer: Peer, reason: str) -> None:
        if peer.join is None:
            log.info("dropping unauthenticated %s: %s", peer.address, reason)
        else:
            log.warning("%s is dead: %s", peer, reason)
            if self.on_peer_dead is not None:
                self.on_peer_dead(peer, reason)
        peer.abort(reason)

    # -- bookkeeping and shutdown ----------------------------------------------------------------------------

    def forget(self, peer: Peer, reason: str) -> None:
        """Called once per peer when its connection is gone."""
        self.admission.release(peer.id)
        known = self.peers.pop(peer.id, None)
        if self._pending.pop(peer.id, None) is None and known is None:
            return
        if peer.join is not None:
            self.deliver(peer, None, reason)
        else:
            self.refused += 1
        if not self._pending and self._all_gone is not None and not self._all_gone.done():
            self._all_gone.set_result(None)

    def statistics(self) -> dict[str, Any]:
        return {
            "peers": len(self.peers),
            "connections": len(self._pending),
            "joined": sum(1 for p in self.peers.values() if p.join is not None),
            "refused": self.refused,
            "inbox": self._inbox.qsize(),
            "timers": len(self._heap),
            "preauth": self.admission.statistics(),
            "accept": self._acceptor.statistics() if self._acceptor is not None else {},
        }

    async def close(self, timeout: float = 30.0) -> None:
        """Stop listening, close every peer (pending output is flushed) and wait, at most ``timeout`` seconds,
        until every connection is gone (then the rest are aborted)."""
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = self._timer_when = None
        if self._acceptor is not None:
            self._acceptor.close()
        self._all_gone = self.loop.create_future() if self._loop is not None else None
        for peer in list(self._pending.values()):
            if peer._transport is None:
                peer.abort("the controller is closing")
            else:
                peer.close("the controller is closing")
        if self._all_gone is not None and self._pending:
            try:
                await asyncio.wait_for(asyncio.shield(self._all_gone), timeout)
            except TimeoutError:
                for peer in list(self._pending.values()):
                    peer.abort("the controller is closing")
        if self._adopting:
            await asyncio.wait(list(self._adopting), timeout=timeout)
