"""Relayed installs, the agent's side: a package the controller serves, fetched from this host's peers.

Theory of operation (docs/protocol.md, "Relayed copies" and ``fetch``). When the hosts of a run reach each
other (a peer network), the ``prepare`` of each such host carries a ``relay`` object: the controller's CA
certificate, the relay certificate and key, a ``timeout`` and ``silence``, and ``tokens`` -- a one-off token
per package key. On a content cache miss of such a package, :meth:`PackageFetches.fetch` does what a relayed
``copy`` does (:mod:`plush.agent.filecopy`):

- it offers the package *as it arrives* on this host's :class:`~plush.agent.peers.PeerServer` (the package's
  token) and asks the controller with ``fetch`` and the listener's ``port``;
- the controller streams it (``file.data``, ``file.end``), or names the peers to fetch it from
  (``file.peers``: the parent in the package's relay tree first, then the grandparent, ...); when none gave
  it all, it asks again with the ``offset`` it holds and the controller streams the rest;
- the data enter the content cache only when their sha256 is the one ``prepare`` announced
  (:meth:`~plush.agent.cache.ContentCache.store`); when what peers sent is not, the package is fetched once
  more, all of it from the controller.

A ``sink`` given to :meth:`PackageFetches.fetch` reads the package *as it arrives* (:class:`Arriving`), in a
thread, beside the transfer (a tar bundle unpacked into a staging directory); what it returns is handed back
only when the bytes it read are the ones that entered the cache (the first attempt's), else None.

Invariants: one offer per package and run (its token); the incoming file is removed whatever happens; a
failed fetch fails the children served from it (they go on with their next source). Standard library only,
Python 3.8.
"""

from __future__ import annotations

import asyncio
import io
import logging
import os
from typing import IO, Any, Callable, Dict, List, Mapping, Optional, Tuple

from plush.agent.cache import ContentCache
from plush.agent.filecopy import Incoming
from plush.agent.peers import PeerServer, Progress, close_quietly, fetch_from_peers, pread_into
from plush.protocol.messages import Message

__all__ = ["Arriving", "PackageFetches", "relay_for"]

log = logging.getLogger(__name__)


def relay_for(relay: Mapping[str, Any], key: str) -> Optional[Dict[str, Any]]:
    """The relay object of package ``key`` (:mod:`plush.agent.peers` takes one ``token``), or None when the
    run's ``relay`` has no token for it."""
    tokens = relay.get("tokens")
    token = tokens.get(key) if isinstance(tokens, dict) else None
    if not isinstance(token, str) or not token:
        return None
    own = {k: v for k, v in relay.items() if k != "tokens"}
    own["token"] = token
    return own


class Arriving(io.RawIOBase):
    """The bytes of ``progress`` as they arrive (a read waits for more); OSError when the transfer failed."""

    def __init__(self, progress: Progress) -> None:
        super().__init__()
        self.progress = progress
        self.position = 0
        self.fd = os.open(progress.path, os.O_RDONLY | os.O_CLOEXEC)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer)
        while self.position < self.progress.size:
            written, state, _ = self.progress.wait_beyond(self.position, 1.0)
            if written > self.position:
                n = pread_into(self.fd, view[: written - self.position], self.position)
                self.position += n
                return n
            if state is not None:
                raise OSError("the package's transfer ended at {} bytes".format(written))
        return 0

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
        super().close()


def _read(sink: Callable[[IO[bytes]], Any], progress: Progress) -> Any:
    """``sink``'s result on the package as it arrives; None when it failed (it is not used then)."""
    try:
        with Arriving(progress) as raw, io.BufferedReader(raw, 1 << 20) as stream:
            return sink(stream)
    except Exception as exc:  # any failure: the caller unpacks the cached package again
        log.debug("reading the package as it arrived failed: %s", exc)
        return None


class PackageFetches:
    """The relayed package fetches of one agent runtime: ``send`` sends a message to the controller,
    ``next_req`` numbers a request (shared with the runtime's other fetches)."""

    def __init__(self, send: Callable[[Message], None], next_req: Callable[[], int]) -> None:
        self._send = send
        self._next_req = next_req
        self.peers: Optional[PeerServer] = None
        self._incoming: Dict[int, Incoming] = {}
        self._keys: Dict[int, str] = {}
        self._tasks: List["asyncio.Future[None]"] = []

    def handles(self, req: int) -> bool:
        return req in self._incoming

    def serve(self, msg: Message) -> None:
        """``file.data``, ``file.end``, ``file.error`` or ``file.peers`` of one of these fetches."""
        incoming = self._incoming.get(msg["req"])
        if incoming is None or incoming.done.done():
            return
        if msg.type == "file.data" and msg.payload is not None:
            try:
                incoming.write(msg.payload)
            except OSError as exc:
                incoming.finish("cannot write into the content cache: {}".format(exc.strerror or exc))
        elif msg.type == "file.end":
            incoming.finish(None)  # the sha256 is checked as the data enter the cache
        elif msg.type == "file.error":
            incoming.finish(str(msg["reason"]))
        elif msg.type == "file.peers" and incoming.relay is None:
            incoming.finish("the controller named peers for a fetch that offered none")
        elif msg.type == "file.peers":
            self._tasks = [t for t in self._tasks if not t.done()]
            self._tasks.append(asyncio.ensure_future(self._from_peers(msg["req"], msg["sources"], incoming)))

    async def fetch(
        self,
        key: str,
        info: Mapping[str, Any],
        relay: Optional[Dict[str, Any]],
        cache: ContentCache,
        sink: Optional[Callable[[IO[bytes]], Any]] = None,
    ) -> Tuple[str, Any]:
        """Bring package ``key`` (``info``: its ``sha256`` and ``size``) into ``cache``; its sha256, and what
        ``sink`` returned (None: no sink, it failed, or it read bytes that did not enter the cache). With no
        ``relay`` (the host has no peer network) the controller streams it, and ``sink`` still reads it as it
        arrives.
        ValueError naming why when it cannot."""
        sha, size = str(info["sha256"]), int(info["size"])
        loop = asyncio.get_running_loop()
        for attempt in (0, 1) if relay is not None else (0,):  # what peers sent may be bad: again, from the controller
            req = self._next_req()
            incoming = Incoming(cache.incoming(), size)
            incoming.relay, incoming.sha = relay, sha
            self._incoming[req], self._keys[req] = incoming, key
            reading = None
            if sink is not None and attempt == 0:
                reading = loop.run_in_executor(None, _read, sink, incoming.progress)
            try:
                fields: Dict[str, Any] = {"req": req, "key": key}
                if attempt == 1:
                    fields["offset"] = 0
                elif relay is not None:
                    if self.peers is None:
                        self.peers = PeerServer()
                    fields["port"] = await loop.run_in_executor(None, self.peers.offer, relay, sha, incoming.progress)
                self._send(Message.of("fetch", **fields))
                error = await incoming.done
                if error is not None:
                    raise ValueError(error)
                what = "package {}".format(key)
                got = await incoming.store(cache, attempt == 0, what, what)
                if got is not None:
                    return got, (await reading if reading is not None else None)
            finally:
                del self._incoming[req], self._keys[req]
                incoming.discard()
                if reading is not None and not reading.done():
                    await asyncio.wait([reading])  # it ends: the transfer failed (it writes nowhere after)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _from_peers(self, req: int, sources: Any, incoming: Incoming) -> None:
        """``file.peers``: fetch from the sources named, in turn; when none gave it all, ask the controller for
        the rest (``fetch`` with the offset held)."""
        incoming.peered = True
        progress = incoming.progress
        assert incoming.relay is not None
        loop = asyncio.get_running_loop()
        failures = await loop.run_in_executor(
            None, fetch_from_peers, sources, incoming.relay, incoming.sha, incoming.fd, progress
        )
        if incoming.done.done():
            return
        if progress.written == progress.size:
            incoming.finish(None)
            return
        if failures:
            why = "; ".join(failures)
            log.warning("package fetch %s: no peer gave it (%s): the rest from the controller", req, why)
        self._send(Message.of("fetch", req=req, key=self._keys[req], offset=progress.written))

    async def close(self) -> None:
        """End the fetches in progress and the listener."""
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)
        close_quietly(self.peers)
        self.peers = None
