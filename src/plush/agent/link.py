"""The agent's connection to its controller: TLS dial (or a stream given), the join handshake, a message pump.

:class:`AgentLink` is the agent-side asyncio adapter around a sans-IO
:class:`~plush.protocol.connection.Connection` (the controller side lives in ``plush.fabric.listener``;
this one lives in the agent room because it ships to hosts, stdlib only, Python 3.8 -- the layering rules
let ``agent`` import ``protocol`` but not ``fabric``). It only moves bytes and arms one timer:

- :meth:`AgentLink.connect` dials with TLS (trusting only the controller's CA, checking the name or IP it
  dialled), waits for ``invite``, sends ``join`` with the token, and returns once ``welcome`` came;
  ``reject`` or a closed stream raises :class:`LinkClosed`; with ``retry_dropped`` a connection the
  controller drops before its welcome (its bounds on unauthenticated connections made room for newer ones,
  or it ran out of descriptors) is dialled again, after a short back-off, until ``connect_timeout``;
  :meth:`AgentLink.over` does the same handshake over a stream opened otherwise (an SSH session's stdio);
- :meth:`send` is non-blocking; :meth:`drain` / :meth:`send_binary` wait while the transport's write
  buffer is above the high-water mark (bulk data: output, uploads);
- :meth:`recv` / ``async for`` yield messages; the reader reads the socket only while the bounded inbox has
  room, so a slow consumer never makes the agent buffer without limit;
- heartbeats and ping answers come from the Connection, written by the single timer callback;
- when the stream ends or breaks, :meth:`recv` raises :class:`LinkClosed` (after the messages already
  received); a ``reject`` raises its subclass :class:`Rejected`. Nothing here assumes one connection per
  process: :class:`plush.agent.session.AgentSession` redials with :meth:`connect` after a break, replays
  frames kept by the outbox with :meth:`send_encoded`, and turns on the agent's own silence detection
  (:meth:`watch_silence`) so that a silent controller (a partition without a reset) is noticed too.

The plug-in point for the agent's execution runtime is :class:`Runtime` (see ``plush.agent.__main__``); what
it talks to is a :class:`Channel`: this link, or the reconnecting session that wraps it.

Size: about 400 lines, kept whole: dialling, the handshake, resumption and the pump share one connection
state; the stdio transport (an SSH session) is the same link over a given stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import ssl
from typing import Any, Dict, Optional, Union

from plush.errors import ProtocolError
from plush.protocol.connection import CLOSED, Connection
from plush.protocol.messages import Message
from plush.protocol.secret import Secret

try:  # Python 3.8 has typing.Protocol
    from typing import Protocol
except ImportError:  # pragma: no cover
    Protocol = object  # type: ignore[assignment]

__all__ = ["AgentLink", "Channel", "LinkClosed", "Rejected", "Runtime", "client_ssl_context"]

log = logging.getLogger(__name__)

_READ_SIZE = 256 * 1024
_HIGH_WATER = 1024 * 1024
_RETRY_INITIAL = 0.05  # seconds before dialling again after a dropped connection; doubles up to _RETRY_MAX
_RETRY_MAX = 1.0


class LinkClosed(EOFError):
    """The link to the controller is closed; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Rejected(LinkClosed):
    """The controller answered ``reject``: the run is over or this host was given up; do not come back."""


class Channel(Protocol):
    """What a runtime talks to: an :class:`AgentLink`, or the reconnecting session around one."""

    def send(self, msg: Message) -> None: ...

    async def drain(self) -> None: ...

    async def send_binary(self, msg: Message) -> None: ...

    async def recv(self) -> Message: ...

    def __aiter__(self) -> "Channel": ...

    async def __anext__(self) -> Message: ...


class Runtime(Protocol):
    """What runs on the agent once it is prepared. ``run`` returns when the agent should exit.

    It owns the conversation after ``prepared``: it answers ``go``/``stop``/... and must reply ``stopped``
    to ``stop``. ``run`` returns normally after a clean stop; :class:`LinkClosed` escapes it when the
    controller goes away for good.
    """

    async def run(self, link: Channel, prepare: Message) -> None: ...


def client_ssl_context(ca_pem: Union[bytes, str]) -> ssl.SSLContext:
    """A client context that trusts only the controller's CA and checks the dialled name (stdlib only)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # check_hostname and CERT_REQUIRED are its defaults
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3 if ssl.HAS_TLSv1_3 else ssl.TLSVersion.TLSv1_2
    ctx.load_verify_locations(cadata=ca_pem.decode("ascii") if isinstance(ca_pem, bytes) else ca_pem)
    ctx.check_hostname = True
    ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


class AgentLink:
    """An authenticated agent->controller link. Build it with :meth:`connect`."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        conn: Connection,
        *,
        inbox_size: int = 256,
        high_water: int = _HIGH_WATER,
    ) -> None:
        self._reader = reader
        self._writer = writer
        self.conn = conn
        self._loop = asyncio.get_running_loop()
        self._inbox: "asyncio.Queue[Optional[Message]]" = asyncio.Queue(inbox_size)
        self._high_water = high_water
        self._timer: Optional[asyncio.TimerHandle] = None
        self._closed_reason: Optional[str] = None
        self.invite: Optional[Message] = None
        self.welcome: Optional[Message] = None
        self._reader_task = self._loop.create_task(self._read_loop())
        self._arm()

    @classmethod
    async def connect(
        cls,
        host: str,
        port: int,
        *,
        ssl_context: ssl.SSLContext,
        token: Secret,
        join: Dict[str, Any],
        server_hostname: Optional[str] = None,
        connect_timeout: float = 30.0,
        heartbeat_interval: float = 1.0,
        silence_timeout: float = 0.0,
        ping_timeout: float = 1.0,
        retry_dropped: bool = False,
    ) -> "AgentLink":
        """Dial ``host:port`` with TLS, complete invite -> join -> welcome, and return the link.

        ``join`` holds the join fields except the token. Raises :class:`LinkClosed` if the controller
        rejects the agent (:class:`Rejected`) or closes the stream, ``ssl.SSLError``/``OSError`` if it cannot
        be reached or is not who it claims, and ``asyncio.TimeoutError`` after ``connect_timeout`` seconds.
        ``silence_timeout`` (0: off) makes the agent ping a controller it has not heard for that long.
        ``retry_dropped``: dial again when the stream is refused, reset or closed before the welcome (never
        after a ``reject`` or a certificate error), until ``connect_timeout`` has passed.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + connect_timeout
        delay = _RETRY_INITIAL
        while True:
            try:
                return await cls._dial(
                    host,
                    port,
                    ssl_context,
                    token,
                    join,
                    server_hostname,
                    max(0.0, deadline - loop.time()),
                    heartbeat_interval,
                    silence_timeout,
                    ping_timeout,
                )
            except (Rejected, ssl.SSLCertVerificationError):
                raise
            except (LinkClosed, ConnectionError, ssl.SSLError) as exc:
                if not retry_dropped or loop.time() + delay >= deadline:
                    raise
                log.info("the controller dropped this agent's connection before its welcome (%s); dialling again", exc)
            await asyncio.sleep(delay * (0.5 + random.random()))
            delay = min(_RETRY_MAX, delay * 2)

    @classmethod
    async def _dial(
        cls,
        host: str,
        port: int,
        ssl_context: ssl.SSLContext,
        token: Secret,
        join: Dict[str, Any],
        server_hostname: Optional[str],
        connect_timeout: float,
        heartbeat_interval: float,
        silence_timeout: float,
        ping_timeout: float,
    ) -> "AgentLink":
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(
                host, port, ssl=ssl_context, server_hostname=server_hostname or host, limit=_READ_SIZE
            ),
            connect_timeout,
        )
        return await cls.over(
            reader,
            writer,
            token=token,
            join=join,
            peer="{}:{}".format(host, port),
            connect_timeout=connect_timeout,
            heartbeat_interval=heartbeat_interval,
            silence_timeout=silence_timeout,
            ping_timeout=ping_timeout,
        )

    @classmethod
    async def over(
        cls,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        token: Secret,
        join: Dict[str, Any],
        peer: str,
        connect_timeout: float = 30.0,
        heartbeat_interval: float = 1.0,
        silence_timeout: float = 0.0,
        ping_timeout: float = 1.0,
    ) -> "AgentLink":
        """invite -> join -> welcome over an open stream (a TLS connection, or an SSH session's stdio or relay:
        :mod:`plush.agent.stdio`), and the link; the stream is closed when that fails."""
        loop = asyncio.get_running_loop()
        conn = Connection(
            "agent",
            token,
            loop.time(),
            peer=peer,
            heartbeat_interval=heartbeat_interval,
            silence_timeout=silence_timeout,
            ping_timeout=ping_timeout,
        )
        link = cls(reader, writer, conn)
        try:
            await asyncio.wait_for(link._handshake(join), connect_timeout)
        except BaseException:
            await link.close()
            raise
        return link

    async def _handshake(self, join: Dict[str, Any]) -> None:
        self.invite = await self._expect("invite")
        self.send(Message("join", dict(join)))
        reply = await self.recv()
        if reply.type == "reject":
            raise Rejected("the controller rejected this agent: " + str(reply.get("reason")))
        if reply.type != "welcome":  # the Connection allows nothing else here
            raise ProtocolError("expected 'welcome', got {!r}".format(reply.type))
        self.welcome = reply

    async def _expect(self, mtype: str) -> Message:
        msg = await self.recv()
        if msg.type != mtype:
            raise ProtocolError("expected {!r}, got {!r}".format(mtype, msg.type))
        return msg

    # -- receiving ----------------------------------------------------------------------------------------

    async def _read_loop(self) -> None:
        reason = "the controller closed the connection"
        try:
            while True:
                data = await self._reader.read(_READ_SIZE)
                if not data:
                    break
                messages = self.conn.receive_data(data, self._loop.time())
                self._flush_outbox()
                self._arm()
                for msg in messages:
                    await self._inbox.put(msg)  # blocks while the consumer is behind: backpressure
                if self.conn.state == CLOSED:
                    reason = "the conversation ended"
                    break
        except ProtocolError as exc:
            reason = "protocol error: {}".format(exc)
            log.warning("link: %s", reason)
        except (OSError, ssl.SSLError) as exc:
            reason = "connection lost: {}".format(exc)
        finally:
            self._mark_closed(reason)
            with contextlib.suppress(asyncio.QueueFull):  # if full, recv() sees the end once it drained
                self._inbox.put_nowait(None)

    async def recv(self) -> Message:
        """The next message from the controller; :class:`LinkClosed` once the stream has ended."""
        if self._inbox.empty() and self._closed_reason is not None and self._reader_task.done():
            raise LinkClosed(self._closed_reason)
        msg = await self._inbox.get()
        if msg is None:
            self._inbox.put_nowait(None)  # keep raising for later callers
            raise LinkClosed(self._closed_reason or "closed")
        return msg

    def __aiter__(self) -> "AgentLink":
        return self

    async def __anext__(self) -> Message:
        try:
            return await self.recv()
        except LinkClosed:
            raise StopAsyncIteration from None

    # -- sending ------------------------------------------------------------------------------------------

    def send(self, msg: Message) -> None:
        """Send ``msg`` now (non-blocking). Raises :class:`LinkClosed` if the link is closed."""
        self._check_open()
        self._writer.write(self.conn.send(msg, self._loop.time()))
        self._flush_outbox()

    def send_encoded(self, mtype: str, frame: bytes) -> None:
        """Send ``frame``, the frame of a message of type ``mtype`` encoded earlier (a kept, numbered message);
        the state machine checks that the type may be sent now. Raises :class:`LinkClosed` when closed."""
        self._check_open()
        self._writer.write(self.conn.send(Message(mtype), self._loop.time(), encoded=frame))
        self._flush_outbox()

    def _check_open(self) -> None:
        if self._closed_reason is not None:
            raise LinkClosed(self._closed_reason)
        if self._writer.transport.is_closing():  # lost, and the reader has not seen it yet: do not write
            raise LinkClosed("connection lost")

    async def drain(self) -> None:
        """Wait while more than the high-water mark of bytes waits to be written."""
        transport = self._writer.transport
        if transport.get_write_buffer_size() > self._high_water:
            await self._writer.drain()

    async def send_binary(self, msg: Message) -> None:
        """Send a (bulk) message and wait for the write buffer to drain below the high-water mark."""
        self.send(msg)
        await self.drain()

    def _flush_outbox(self) -> None:
        data = self.conn.data_to_send()
        if data and not self._writer.is_closing():
            self._writer.write(data)

    # -- timer --------------------------------------------------------------------------------------------

    def watch_silence(self, silence_timeout: float, ping_timeout: float) -> None:
        """Ping the controller after ``silence_timeout`` seconds without a byte from it; the link closes (as
        broken) when nothing answers within ``ping_timeout``. 0 turns it off."""
        self.conn.silence_timeout = silence_timeout if silence_timeout > 0 else None
        self.conn.ping_timeout = ping_timeout
        self._arm()

    def _arm(self) -> None:
        when = self.conn.get_timer()
        if when is None or self._closed_reason is not None:
            return
        if self._timer is not None:
            if self._timer.when() <= when:
                return  # it fires first; _on_timer re-arms
            self._timer.cancel()
        self._timer = self._loop.call_at(when, self._on_timer)

    def _on_timer(self) -> None:
        when, self._timer = self._timer, None
        if self._closed_reason is not None or when is None:
            return
        self.conn.handle_timer(max(self._loop.time(), when.when()))  # call_at may fire a hair early
        self._flush_outbox()
        if self.conn.peer_dead:
            self._mark_closed(self.conn.dead_reason or "peer dead")
            self._writer.transport.abort()
            return
        self._arm()

    # -- closing ------------------------------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self._closed_reason is not None

    def _mark_closed(self, reason: str) -> None:
        if self._closed_reason is None:
            self._closed_reason = reason
            self.conn.close(reason)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    async def close(self, timeout: float = 2.0) -> None:
        """Close the link (idempotent); pending output is flushed when the stream allows, and the TLS close
        is awaited for at most ``timeout`` seconds."""
        self._mark_closed("closed by the agent")
        if not self._reader_task.done():
            self._reader_task.cancel()
            await asyncio.wait([self._reader_task])  # never swallows our own cancellation
        if not self._writer.is_closing():
            self._writer.close()
        with contextlib.suppress(OSError, ssl.SSLError, asyncio.TimeoutError):
            await asyncio.wait_for(self._writer.wait_closed(), timeout)
