"""The agent's link over its SSH session: the protocol on stdin/stdout, later sessions through a Unix socket.

Role: the transport of ``--stdio`` agents (started by the SSH launcher; docs/ssh.md, "The agent's link").
SSH carries the bytes and has authenticated both ends, so there is no TLS and no port on either side:

- :func:`take_stdio` (first thing in the agent, before its guard forks and before any thread): the session's
  stdin and stdout move to new descriptors that no child inherits (``O_CLOEXEC``); fd 0 becomes
  ``/dev/null`` and fd 1 the agent's log (fd 2), so a stray ``print`` never corrupts the stream and
  neither the guard nor any process the agent runs holds the session open;
- :func:`stdio_streams` makes asyncio streams of the two descriptors (the first link);
- :class:`Rendezvous` listens on a Unix socket in the agent's host directory (``agent.sock``: 0600 in a
  0700 directory, and a peer of another uid is refused with ``SO_PEERCRED``). When the first session ends
  (the SSH connection dropped), the agent keeps its processes and waits there: the controller opens a new
  session running the relay (:mod:`plush.agent.relay`), which connects to the socket; each accepted
  connection is one more link attempt (the resuming join, as after a TCP redial). The socket is removed
  when the agent ends; an agent killed outright leaves it, and a relay then finds it refusing.

Why a socket rather than a port: only the agent's user can reach it, there is nothing to choose or collide
on, and the path is relative to the agent's directory (short: Unix socket paths are limited to ~107 bytes).

Standard library only, Python 3.8.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import stat
import struct
from typing import Optional, Tuple

__all__ = ["SOCKET_NAME", "Rendezvous", "stdio_streams", "take_stdio"]

log = logging.getLogger(__name__)

#: the agent's Unix socket, in its host directory
SOCKET_NAME = "agent.sock"
_READ_LIMIT = 256 * 1024

Streams = Tuple[asyncio.StreamReader, asyncio.StreamWriter]


def take_stdio() -> Tuple[int, int]:
    """The session's stdin and stdout as new, non-inherited descriptors; fd 0 is then ``/dev/null`` and fd 1
    a copy of fd 2 (the log)."""
    fd_in, fd_out = os.dup(0), os.dup(1)  # os.dup: not inheritable
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    os.dup2(2, 1)
    return fd_in, fd_out


class _PipeWriter(asyncio.StreamWriter):
    """A writer of a pipe whose close also closes the reading pipe (the two halves are one link)."""

    def __init__(
        self,
        transport: asyncio.WriteTransport,
        protocol: asyncio.StreamReaderProtocol,
        loop: asyncio.AbstractEventLoop,
        read_transport: asyncio.ReadTransport,
    ) -> None:
        super().__init__(transport, protocol, None, loop)
        self._read_transport = read_transport

    def close(self) -> None:
        self._read_transport.close()
        super().close()


def _one_socket(fd_in: int, fd_out: int) -> bool:
    """Whether both descriptors are the same socket (an sshd that gives its session a socket pair)."""
    a, b = os.fstat(fd_in), os.fstat(fd_out)
    return stat.S_ISSOCK(a.st_mode) and (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


async def stdio_streams(fd_in: int, fd_out: int) -> Streams:
    """Asyncio streams reading ``fd_in`` and writing ``fd_out``: two pipes (OpenSSH's sshd on Linux), or one
    socket (the descriptors then are two copies of it; the link is a socket stream)."""
    if _one_socket(fd_in, fd_out):
        os.close(fd_out)
        return await asyncio.open_connection(sock=socket.socket(fileno=fd_in), limit=_READ_LIMIT)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=_READ_LIMIT)
    read_transport, _ = await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(fd_in, "rb", 0)
    )
    # a StreamReaderProtocol on the write side too: it gives the writer drain() and wait_closed()
    transport, protocol = await loop.connect_write_pipe(
        lambda: asyncio.StreamReaderProtocol(asyncio.StreamReader()), os.fdopen(fd_out, "wb", 0)
    )
    assert isinstance(protocol, asyncio.StreamReaderProtocol)
    return reader, _PipeWriter(transport, protocol, loop, read_transport)


def _peer_uid(writer: asyncio.StreamWriter) -> Optional[int]:
    sock = writer.get_extra_info("socket")
    so_peercred = getattr(socket, "SO_PEERCRED", None)
    if sock is None or so_peercred is None:
        return None
    try:
        data = sock.getsockopt(socket.SOL_SOCKET, so_peercred, struct.calcsize("3i"))
    except OSError:
        return None
    return int(struct.unpack("3i", data)[1])


class Rendezvous:
    """The agent's Unix socket, where later sessions' relays connect (see the module docstring)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._server: Optional[asyncio.AbstractServer] = None
        self._arrived: "asyncio.Queue[Streams]" = asyncio.Queue()

    async def start(self) -> None:
        """Listen (a stale socket of an agent that is gone is replaced)."""
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
        old = os.umask(0o077)
        try:
            self._server = await asyncio.start_unix_server(self._accepted, self.path, limit=_READ_LIMIT)
        finally:
            os.umask(old)
        os.chmod(self.path, 0o600)

    def _accepted(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        uid = _peer_uid(writer)
        if uid is not None and uid != os.getuid():
            log.warning("refused a connection to %s from uid %d", self.path, uid)
            writer.close()
            return
        self._arrived.put_nowait((reader, writer))

    async def accept(self) -> Streams:
        """The next connection of a relay (the oldest first)."""
        return await self._arrived.get()

    async def close(self) -> None:
        """Stop listening, drop the connections not taken, remove the socket."""
        if self._server is not None:
            self._server.close()  # not wait_closed(): since 3.12 it also awaits the link still open
            self._server = None
        while not self._arrived.empty():
            self._arrived.get_nowait()[1].close()
        with contextlib.suppress(OSError):
            os.unlink(self.path)
