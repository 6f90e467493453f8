"""The SSH-stdio transport: an agent's link carried by the stdin/stdout of an SSH session, as a listener Peer.

Role: the controller side of ``--stdio`` agents (docs/ssh.md, "The agent's link"; the agent side is
:mod:`plush.agent.stdio`). The SSH launcher opens a session on the host (asyncssh) with a
:class:`StdioSession`; the session's command prints ONE line of text first (its preamble: ``pid N`` when it
started an agent), then its stdout and stdin carry the Plush protocol's frames. Once the preamble is read the
launcher hands the session to the listener (:meth:`StdioSession.attach` with a Peer from
:meth:`~plush.fabric.listener.ControllerListener.adopt`): from then on the mesh sees a :class:`Peer` like
those of TCP agents -- same events, same liveness, same back-pressure -- and nothing above the fabric knows
how its bytes travel.

What SSH gives, and what the transport therefore skips: the session is encrypted and both ends are
authenticated (the host by its host key against known_hosts, the controller's user by its key), and only the
controller opens such sessions; so there is no TLS and no pre-authentication admission. The join still
carries the mesh's token, which the protocol checks as for every peer: it binds an agent to the controller
that started it (a relay that reached another controller's agent is refused).

:class:`ChannelTransport` makes an asyncssh channel an ``asyncio.Transport`` (the channel already has the
same methods: write, writelines, pause/resume_reading, flow control, close, abort). The session keeps the
last 4 KiB of the command's stderr and its exit status or signal, for the launcher to tell why it ended.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import asyncssh

__all__ = ["ChannelTransport", "StdioSession"]

_STDERR_KEPT = 4096
_PREAMBLE_MAX = 4096


class ChannelTransport(asyncio.Transport):
    """An asyncssh channel as an asyncio transport; ``peername`` is the address given."""

    def __init__(self, chan: asyncssh.SSHClientChannel[bytes], address: str, ended: Callable[[], None]) -> None:
        super().__init__()
        self._chan = chan
        self._address = address
        self._ended = ended

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        if name == "peername":
            return self._address
        return self._chan.get_extra_info(name, default)

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self._chan.write(bytes(data))

    def writelines(self, list_of_data: Any) -> None:
        self._chan.writelines([bytes(d) for d in list_of_data])

    def write_eof(self) -> None:
        self._chan.write_eof()

    def can_write_eof(self) -> bool:
        return True

    def get_write_buffer_size(self) -> int:
        return self._chan.get_write_buffer_size()

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._chan.set_write_buffer_limits(high, low)

    def pause_reading(self) -> None:
        self._chan.pause_reading()

    def resume_reading(self) -> None:
        self._chan.resume_reading()

    def is_closing(self) -> bool:
        return self._chan.is_closing()

    def close(self) -> None:
        self._chan.close()  # sshd closes the command's stdin at once, and the channel when the command exits
        self._ended()

    def abort(self) -> None:
        self._chan.abort()
        self._ended()


class StdioSession(asyncssh.SSHClientSession[bytes]):
    """One SSH session whose stdio carries a Peer after a one-line preamble (see the module docstring)."""

    def __init__(self, address: str) -> None:
        self.address = address
        loop = asyncio.get_running_loop()
        #: the first line of the command's stdout (without its newline)
        self.preamble: asyncio.Future[str] = loop.create_future()
        #: done when the link is over: the command closed its stdout, or the Peer closed, or the channel did
        self.link_over: asyncio.Future[None] = loop.create_future()
        #: done when the channel is closed: the command exited (exit status or signal), or the connection dropped
        self.closed: asyncio.Future[None] = loop.create_future()
        self.exit_status: int | None = None
        self.exit_signal: str | None = None
        self._chan: asyncssh.SSHClientChannel[bytes] | None = None
        self._protocol: asyncio.Protocol | None = None
        self._early = b""
        self._stderr = b""
        self._peer: Any = None

    # --- what the launcher uses ------------------------------------------------------------------------------

    def write(self, data: bytes) -> None:
        """Write to the command's stdin (before the Peer is attached: its preamble's input)."""
        assert self._chan is not None
        self._chan.write(data)

    @property
    def preamble_text(self) -> str | None:
        """The preamble line, once read."""
        done = self.preamble
        return done.result() if done.done() and not done.cancelled() and done.exception() is None else None

    @property
    def joined(self) -> bool:
        """Whether the agent joined over this session (its Peer has a join)."""
        return getattr(self._peer, "join", None) is not None

    def attach(self, protocol: asyncio.Protocol) -> None:
        """Hand the session to ``protocol`` (a listener Peer): the bytes after the preamble, and what follows."""
        assert self._chan is not None and self._protocol is None
        self._protocol = self._peer = protocol
        protocol.connection_made(ChannelTransport(self._chan, self.address, self._end_link))
        early, self._early = self._early, b""
        if early:
            protocol.data_received(early)
        if self.link_over.done():  # over before it was handed over: told now
            asyncio.get_running_loop().call_soon(protocol.connection_lost, None)
            self._protocol = None

    def _end_link(self, exc: Exception | None = None) -> None:
        """The link is over: the protocol hears ``connection_lost`` (soon, as from a transport), once."""
        if self.link_over.done():
            return
        self.link_over.set_result(None)
        protocol, self._protocol = self._protocol, None
        if protocol is not None:
            asyncio.get_running_loop().call_soon(protocol.connection_lost, exc)

    def stderr_tail(self) -> str:
        return self._stderr.decode("utf-8", "replace")

    def close(self) -> None:
        if self._chan is not None:
            self._chan.close()

    # --- asyncssh's callbacks ----------------------------------------------------------------------------------

    def connection_made(self, chan: Any) -> None:
        assert isinstance(chan, asyncssh.SSHClientChannel)
        self._chan = chan

    def data_received(self, data: bytes, datatype: asyncssh.DataType) -> None:
        if datatype == asyncssh.EXTENDED_DATA_STDERR:
            self._stderr = (self._stderr + data)[-_STDERR_KEPT:]
        elif self._protocol is not None:
            self._protocol.data_received(data)
        elif self.link_over.done():
            return  # after the link: nobody reads
        elif not self.preamble.done():
            self._early += data
            line, newline, rest = self._early.partition(b"\n")
            if newline:
                self._early = rest
                self.preamble.set_result(line.decode("utf-8", "replace").strip())
            elif len(self._early) > _PREAMBLE_MAX:
                self.preamble.set_exception(EOFError("no preamble line: " + self._early[:200].decode(errors="replace")))
        else:
            self._early += data

    def eof_received(self) -> bool:
        # the command closed its stdout: the end of the link; the channel closes when the command exits
        self._end_link()
        return False

    def pause_writing(self) -> None:
        if self._protocol is not None:
            self._protocol.pause_writing()

    def resume_writing(self) -> None:
        if self._protocol is not None:
            self._protocol.resume_writing()

    def exit_status_received(self, status: int) -> None:
        self.exit_status = status

    def exit_signal_received(self, signal: str, core_dumped: bool, msg: str, lang: str) -> None:
        self.exit_signal = signal

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.preamble.done():
            why = f"the session ended before it started ({exc or 'closed'})"
            self.preamble.set_exception(EOFError(why))
        self._end_link(exc)
        if not self.closed.done():
            self.closed.set_result(None)
