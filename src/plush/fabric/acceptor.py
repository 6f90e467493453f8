"""Listening sockets and an accept loop that survives running out of file descriptors.

Role: the bottom of the controller's listener. asyncio's own accept loop (``loop.create_server``) reports
EMFILE through the loop's exception handler -- a traceback -- once per attempt, makes up to ``backlog``
attempts per loop iteration, and schedules a retry for each: at the descriptor limit it printed hundreds
of thousands of tracebacks and stopped accepting agents. :class:`Acceptor` accepts by itself instead.

Invariants:
- one reader per listening socket; one readiness accepts at most :data:`BATCH` connections, each handed
  to ``on_accept(sock, address)`` as a non-blocking socket that the callee owns from then on;
- out of descriptors or buffers (EMFILE, ENFILE, ENOBUFS, ENOMEM): ONE warning (then none for
  :data:`WARN_EVERY` seconds, however often it happens; the count is in :meth:`statistics`), the readers are
  removed, ``on_exhausted()`` is asked to free a descriptor (the listener drops its oldest unauthenticated
  connection), and accepting resumes after :data:`RETRY_INITIAL` when it did, else after a back-off
  (doubling up to :data:`RETRY_MAX`); the first connection accepted afterwards ends the episode. Connections that arrive
  meanwhile wait in the kernel's backlog: they are delayed, not refused;
- any other accept error (a connection reset before it was accepted, EPERM from a firewall) drops that one
  connection quietly (debug log);
- :meth:`close` removes the readers and closes the listening sockets; nothing is retried after it.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
from collections.abc import Callable

__all__ = ["BATCH", "RETRY_INITIAL", "RETRY_MAX", "WARN_EVERY", "Acceptor"]

log = logging.getLogger(__name__)

#: connections accepted per readiness of a listening socket
BATCH = 64
#: seconds before accepting again after running out of descriptors; doubles up to RETRY_MAX
RETRY_INITIAL = 0.05
RETRY_MAX = 1.0
#: seconds between two warnings that descriptors ran out
WARN_EVERY = 600.0
_EXHAUSTED = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})


class Acceptor:
    """Listen on ``host:port`` (every address ``host`` resolves to) and accept with back-off."""

    def __init__(
        self,
        host: str,
        port: int,
        on_accept: Callable[[socket.socket, object], None],
        on_exhausted: Callable[[], bool] = lambda: False,
        *,
        backlog: int = 4096,
    ) -> None:
        self.host = host
        self.port = port
        self.on_accept = on_accept
        self.on_exhausted = on_exhausted
        self.backlog = backlog
        self.sockets: list[socket.socket] = []
        self.exhausted = 0  #: how many accepts failed for want of descriptors (all episodes)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._retry: asyncio.TimerHandle | None = None
        self._delay = RETRY_INITIAL
        self._episode = False
        self._warned_at: float | None = None
        self._closed = False

    async def start(self) -> None:
        """Bind and listen; afterwards :attr:`port` is the bound port."""
        loop = self._loop = asyncio.get_running_loop()
        infos = await loop.getaddrinfo(
            self.host, self.port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP, flags=socket.AI_PASSIVE
        )
        seen: set[object] = set()
        try:
            for family, kind, proto, _, address in infos:
                if address in seen:
                    continue
                seen.add(address)
                sock = socket.socket(family, kind, proto)
                self.sockets.append(sock)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                if family == socket.AF_INET6:
                    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                if self.port == 0 and len(self.sockets) > 1:  # one port for every address
                    address = (address[0], self.port, *address[2:])
                sock.bind(address)
                sock.listen(self.backlog)
                sock.setblocking(False)
                self.port = sock.getsockname()[1]
        except BaseException:
            self.close()
            raise
        self._resume()

    def _resume(self) -> None:
        self._retry = None
        if self._closed or self._loop is None:
            return
        for sock in self.sockets:
            self._loop.add_reader(sock.fileno(), self._accept, sock)

    def _pause(self) -> None:
        if self._loop is None:
            return
        for sock in self.sockets:
            self._loop.remove_reader(sock.fileno())

    def _accept(self, sock: socket.socket) -> None:
        for _ in range(BATCH):
            try:
                conn, address = sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                if exc.errno in _EXHAUSTED:
                    self._out_of_descriptors(exc)
                    return
                log.debug("accept failed (skipped): %s", exc)
                continue
            if self._episode:
                self._episode = False
                self._delay = RETRY_INITIAL
                log.debug("accepting connections again")
            try:
                conn.setblocking(False)
                self.on_accept(conn, address)
            except OSError as exc:  # the connection died between accept and adoption
                log.debug("dropped a connection from %s at once: %s", address, exc)
                conn.close()

    def _out_of_descriptors(self, exc: OSError) -> None:
        self.exhausted += 1
        freed = self.on_exhausted()
        assert self._loop is not None
        now = self._loop.time()
        self._episode = True
        if self._warned_at is not None and now - self._warned_at < WARN_EVERY:
            log.debug("accept: %s (%d times so far)", exc.strerror or exc, self.exhausted)
        else:
            self._warned_at = now
            log.warning(
                "cannot accept agent connections: %s; %s, and accepting again as descriptors free up "
                "(raise the open files limit, ulimit -n, for more agents)",
                exc.strerror or exc,
                "dropping the oldest unauthenticated connection" if freed else "waiting",
            )
        self._pause()
        if freed:  # a descriptor is being freed: try again soon, without backing off further
            self._retry = self._loop.call_later(RETRY_INITIAL, self._resume)
        else:
            self._retry = self._loop.call_later(self._delay, self._resume)
            self._delay = min(RETRY_MAX, self._delay * 2)

    def statistics(self) -> dict[str, object]:
        return {"port": self.port, "exhausted": self.exhausted, "paused": self._retry is not None}

    def close(self) -> None:
        """Stop accepting and close the listening sockets (idempotent)."""
        self._closed = True
        if self._retry is not None:
            self._retry.cancel()
            self._retry = None
        if self._loop is not None and not self._loop.is_closed():
            for sock in self.sockets:
                if sock.fileno() >= 0:
                    self._loop.remove_reader(sock.fileno())
        for sock in self.sockets:
            sock.close()
