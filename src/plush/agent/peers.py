"""Relayed copies, the agent's side: serve a content cache entry to this copy's other hosts, fetch it from them.

Theory of operation (docs/protocol.md, "Relayed copies"). A ``copy`` whose hosts reach each other carries a
``relay`` object: a one-off ``token`` for this copy, the CA certificate of the controller, the relay
certificate and its key (name :data:`RELAY_NAME`), the ``hosts`` that take part and a ``timeout``. Such a
host, on a content cache miss:

- offers the entry being received (:class:`Progress`: how many bytes are on disk so far) on its
  :class:`PeerServer` -- a TLS listener on every address of the host, started at the first offer and
  closed when no offer is live -- and tells the controller its port with ``copy.fetch``;
- then receives the data from the controller (``copy.data``), or from the peers the controller names
  (``copy.peers``: its parent first, then its grandparent, ...): :func:`fetch_from_peers` dials each in
  turn, with TLS trusting only the controller's CA and checking the relay name, sends the request line of
  :mod:`plush.protocol.peerwire` with the token and the offset it already holds, and appends what comes.
  A source that fails, closes or stays silent for ``timeout`` seconds is left for the next one, from the
  same offset. The caller falls back to the controller when every peer failed.

A listener serves a request only when its token is the one of a live offer (compared in constant time) and
its sha256 that offer's; it streams the entry *as it arrives* (a child need not wait for its parent's
whole file: cut-through), and closes the connection when its own transfer failed. Nothing is trusted
because it came from a peer: the receiving agent checks the sha256 the controller announced before the entry
enters its cache (:meth:`plush.agent.cache.ContentCache.store`).

What protects the bytes: TLS (certificate from the controller's CA: no one without it can pose as a relay
or read the bytes on the wire), the token (only agents this controller told may fetch: a connection
without it gets ``NO`` and is closed; at most :data:`MAX_LINE` bytes and :data:`HANDSHAKE_TIMEOUT` seconds
before the token is checked; at most :data:`MAX_CONNECTIONS` at once), the sha256 (a relay that sends other
bytes only makes its children fetch again). Every agent of the copy holds the relay key: an agent of this
controller could pose as another one to its peers, which the sha256 check makes harmless.

Threads, not the event loop, move the bytes (blocking TLS sockets release the GIL while they encrypt and
copy): one accept thread per listener, one thread per served child, the fetch in an executor thread.
Standard library only, Python 3.8.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import logging
import os
import select
import socket
import ssl
import tempfile
import threading
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple

from plush.agent.link import client_ssl_context
from plush.protocol.peerwire import MAX_LINE, PeerRequest, WireError, answer_no, answer_ok, parse_answer, parse_request

__all__ = ["HANDSHAKE_TIMEOUT", "MAX_CONNECTIONS", "RELAY_NAME", "PeerServer", "Progress", "fetch_from_peers"]

log = logging.getLogger(__name__)

#: the name the relay certificate carries, which children check
RELAY_NAME = "plush-relay"
#: seconds a connection has to finish TLS and send its request line
HANDSHAKE_TIMEOUT = 5.0
#: connections a listener serves at once; more are closed at once
MAX_CONNECTIONS = 64
_CHUNK = 1 << 20


def write_all(fd: int, data: Any, offset: int) -> None:
    """Write ``data`` at ``offset`` of ``fd`` (unbuffered: a reader of the file sees it at once)."""
    view = memoryview(data)
    while view:
        n = os.pwrite(fd, view, offset)
        view = view[n:]
        offset += n


def pread_into(fd: int, view: memoryview, offset: int) -> int:
    """Read into ``view`` from ``offset`` of ``fd``, with no new buffer (a fresh 1 MiB ``bytes`` per read costs
    page faults); the bytes read (0 at the end)."""
    preadv = getattr(os, "preadv", None)  # not on every system
    if preadv is not None:
        return int(preadv(fd, [view], offset))
    data = os.pread(fd, len(view), offset)
    view[: len(data)] = data
    return len(data)


class Progress:
    """The bytes of one entry as they arrive: ``written`` bytes of ``size`` are in ``path``; ``state`` is None
    while they arrive, then ``done`` (the entry is ``path``) or ``failed``. Thread-safe for its readers; one
    writer at a time appends (:meth:`append`), in order, so the sha256 of what was written is known as the last
    byte lands (:meth:`digest`) and the file need not be read again to check it."""

    def __init__(self, path: str, size: int) -> None:
        self.path = path
        self.size = size
        self.written = 0
        self.state: Optional[str] = None
        self._cond = threading.Condition()
        self._hash = hashlib.sha256()
        self._hashed = 0  # bytes that went through :meth:`append` (``advance`` alone does not hash)

    def append(self, fd: int, data: Any) -> None:
        """Write ``data`` at the end of what ``fd`` holds (:attr:`written`), hash it, and wake the readers."""
        write_all(fd, data, self.written)
        self._hash.update(data)  # hashlib lets go of the GIL for large buffers
        self._hashed += len(data)
        self.advance(len(data))

    def digest(self) -> Optional[str]:
        """The sha256 of the entry once all ``size`` bytes went through :meth:`append`; None otherwise (then
        the file is hashed where it is checked)."""
        return self._hash.hexdigest() if self._hashed == self.written == self.size else None

    def advance(self, n: int) -> None:
        with self._cond:
            self.written += n
            self._cond.notify_all()

    def finish(self, ok: bool, path: Optional[str] = None) -> None:
        with self._cond:
            if self.state is None:
                self.state = "done" if ok else "failed"
                if path is not None:
                    self.path = path
            self._cond.notify_all()

    def wait_beyond(self, position: int, timeout: float) -> Tuple[int, Optional[str], str]:
        """Wait until more than ``position`` bytes are written or the transfer ended (or ``timeout``):
        ``(written, state, path)``."""
        with self._cond:
            self._cond.wait_for(lambda: self.written > position or self.state is not None, timeout)
            return self.written, self.state, self.path


class _Offer:
    def __init__(self, token: str, sha: str, progress: Progress, deadline: float) -> None:
        self.token = token
        self.sha = sha
        self.progress = progress
        self.deadline = deadline


def server_context(cert_pem: str, key_pem: str) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.options |= ssl.OP_NO_COMPRESSION
    fd, path = tempfile.mkstemp(prefix=".plush-relay-", suffix=".pem")  # ssl loads chains only from files
    try:
        with open(fd, "w") as fh:
            fh.write(key_pem + cert_pem)
        ctx.load_cert_chain(path)
    finally:
        os.unlink(path)
    return ctx


class PeerServer:
    """This host's relay listener: serves the live offers (see the module)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._offers: Dict[str, _Offer] = {}
        self._sock: Optional[socket.socket] = None
        self._ctx: Optional[ssl.SSLContext] = None
        self._cert = ""
        self._slots = threading.BoundedSemaphore(MAX_CONNECTIONS)
        self.port = 0
        self.served = 0

    def offer(self, relay: Dict[str, Any], sha: str, progress: Progress) -> int:
        """Serve ``progress`` (the entry ``sha``) to holders of ``relay``'s token until its timeout; the
        listener's port."""
        with self._lock:
            if relay["cert"] != self._cert:
                self._ctx = server_context(relay["cert"], relay["key"])
                self._cert = relay["cert"]
            deadline = time.monotonic() + float(relay["timeout"])
            self._offers[relay["token"]] = _Offer(relay["token"], sha, progress, deadline)
            if self._sock is None:
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.bind(("0.0.0.0", 0))  # noqa: S104 (peers reach this host at its address)
                sock.listen(128)
                sock.settimeout(0.5)
                self._sock = sock
                self.port = sock.getsockname()[1]
                threading.Thread(target=self._accept, args=(sock,), name="plush-relay", daemon=True).start()
            return self.port

    def close(self) -> None:
        with self._lock:
            self._offers.clear()
            sock, self._sock = self._sock, None
        if sock is not None:
            sock.close()

    def _live(self) -> bool:
        now = time.monotonic()
        with self._lock:
            for token in [t for t, o in self._offers.items() if o.deadline <= now]:
                del self._offers[token]
            return bool(self._offers)

    def _accept(self, sock: socket.socket) -> None:
        while True:
            if not self._live():
                with self._lock:
                    if self._sock is sock and not self._offers:
                        self._sock = None
                        break
            try:
                conn, _addr = sock.accept()
            except socket.timeout:
                continue
            except OSError:
                break  # closed
            if not self._slots.acquire(blocking=False):
                conn.close()
                continue
            threading.Thread(target=self._serve, args=(conn,), name="plush-relay-child", daemon=True).start()
        sock.close()

    def _find(self, request: PeerRequest) -> Optional[_Offer]:
        found = None
        with self._lock:
            for offer in self._offers.values():  # every token compared, in constant time each
                if hmac.compare_digest(offer.token.encode(), request.token.encode()):
                    found = offer
        if found is None or found.sha != request.sha256 or found.deadline <= time.monotonic():
            return None
        return found

    def _serve(self, conn: socket.socket) -> None:
        try:
            conn.settimeout(HANDSHAKE_TIMEOUT)
            assert self._ctx is not None
            with self._ctx.wrap_socket(conn, server_side=True) as tls:
                try:
                    request = parse_request(read_line(tls))
                except WireError as exc:
                    tls.sendall(answer_no(str(exc)))
                    return
                offer = self._find(request)
                if offer is None:
                    tls.sendall(answer_no("no such offer"))
                    return
                progress = offer.progress
                if request.offset > progress.size:
                    tls.sendall(answer_no("offset beyond the end"))
                    return
                tls.sendall(answer_ok(progress.size))
                tls.settimeout(None)
                self._stream(tls, offer, request.offset)
        except (OSError, ValueError) as exc:
            log.debug("relay connection ended: %s", exc)
        finally:
            conn.close()
            self._slots.release()

    def _stream(self, tls: ssl.SSLSocket, offer: _Offer, position: int) -> None:
        progress = offer.progress
        fd = -1
        buf = memoryview(bytearray(_CHUNK))  # one buffer for the whole stream: no page faults per chunk
        try:
            while position < progress.size:
                written, state, path = progress.wait_beyond(position, max(0.0, offer.deadline - time.monotonic()))
                if state == "failed" or (written <= position and state is None):
                    return  # our own transfer failed, or the offer ran out: the child goes elsewhere
                if fd < 0:
                    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)  # the entry's inode, even once renamed
                while position < written:
                    n = pread_into(fd, buf[: min(_CHUNK, written - position)], position)
                    if not n:
                        return
                    tls.sendall(buf[:n])
                    position += n
            self.served += 1
        finally:
            if fd >= 0:
                os.close(fd)


def read_line(sock: socket.socket) -> bytes:
    """One line of at most :data:`MAX_LINE` bytes (what there is when the peer stops or exceeds it)."""
    data = b""
    while not data.endswith(b"\n") and len(data) <= MAX_LINE:
        piece = sock.recv(MAX_LINE + 1 - len(data))
        if not piece:
            break
        data += piece
    return data


def _readable(sock: socket.socket) -> bool:
    poller = select.poll()
    poller.register(sock, select.POLLIN)
    return bool(poller.poll(0))


def receive(tls: ssl.SSLSocket, buf: bytearray, limit: int) -> int:
    """Read into ``buf`` at least one byte (0: the peer closed), then what more is already there -- TLS records
    decrypted or waiting in the socket -- up to ``limit``, never waiting for bytes not yet sent. One read of a
    TLS socket gives one record (16 KiB): taking what has arrived at once makes one write, one ``advance`` and
    one wake-up of this host's readers (its children's streams, an unpacking) for many records."""
    view = memoryview(buf)
    n = tls.recv_into(view, limit)
    while 0 < n < limit and (tls.pending() or _readable(tls)):
        got = tls.recv_into(view[n:], limit - n)
        if got == 0:
            break  # closed: the next read says so
        n += got
    return n


def fetch_from_peers(
    sources: Sequence[Sequence[Any]], relay: Dict[str, Any], sha: str, fd: int, progress: Progress
) -> List[str]:
    """Fetch the rest of the entry (from ``progress.written``) into ``fd`` from the first of ``sources``
    that gives it all; the reasons of those that failed (empty: one of them finished on the first try).
    The caller checks ``progress.written == progress.size`` (all failed: ask the controller)."""
    ctx = client_ssl_context(relay["ca"])
    timeout = float(relay.get("silence", 10.0))
    failures: List[str] = []
    buf = bytearray(_CHUNK)
    for source in sources:
        address, port = str(source[0]), int(source[1])
        try:
            raw = socket.create_connection((address, port), timeout)
            with raw, ctx.wrap_socket(raw, server_hostname=RELAY_NAME) as tls:
                tls.sendall(PeerRequest(relay["token"], sha, progress.written).encode())
                size = parse_answer(read_line(tls))
                if size != progress.size:
                    raise WireError("the peer has {} bytes, not {}".format(size, progress.size))
                while progress.written < size:
                    n = receive(tls, buf, min(_CHUNK, size - progress.written))
                    if n == 0:
                        raise ConnectionError("the peer closed the connection")
                    progress.append(fd, memoryview(buf)[:n])
            return failures
        except (OSError, WireError) as exc:  # ssl.SSLError and socket.timeout are OSErrors
            failures.append("{}:{}: {}".format(address, port, exc))
            log.info("relay source %s:%s failed (%s): next one", address, port, exc)
    return failures


def close_quietly(server: Optional[PeerServer]) -> None:
    if server is not None:
        with contextlib.suppress(OSError):
            server.close()
