"""The agent's side of ``plush copy`` and ``plush gather``: files into and out of this host's exec directory,
outside any application, checked by sha256.

Theory of operation (docs/protocol.md, "File fan-out and fan-in"):

- ``copy`` (``req``, ``dest``, ``sha256``, ``size``, ``mode``): the file is looked up in the host's content
  cache (:class:`~plush.agent.cache.ContentCache`, shared by the agents of a machine, as the install phase
  does). On a miss the agent asks for the data (``copy.fetch``); the controller streams ``copy.data`` chunks
  then ``copy.end``; the data enter the cache only if their sha256 is the announced one. The cache entry is
  then copied (never linked) to ``dest`` with ``mode`` (no setuid/setgid/sticky), replacing what was there.
  One ``copy.result`` answers: ``ok``, ``cached`` (no data travelled), ``reason`` when not ok;
- ``gather`` (``req``, ``path``): the regular file ``path`` is streamed back in ``gather.data`` chunks, then
  ``gather.end`` with its ``size``, ``sha256`` and permission bits (or ``ok`` false and the ``reason``).

Paths (:func:`exec_parts`): ``dest`` and ``path`` are relative to the host's **exec directory** and judged by
the rule of a spec's host paths (:func:`~plush.spec.paths.host_path_problem`: no ``..``, not absolute, no
``~``, no empty or ``.`` segment); on disk no symbolic link is followed, neither on the way nor at the end
(:class:`~plush.agent.tree.Tree` for writes, :func:`~plush.agent.outputs.open_contained` for reads), so
nothing outside the exec directory is ever written or read, whatever links a command made there.

Invariants: each request is one task of :class:`FileRequests` and ends with one reply (unless the link broke or
the agent stops: :meth:`FileRequests.close` ends them, a partial download removed); a failed copy leaves
``dest`` as it was. Standard library only, Python 3.8 syntax.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import hashlib
import logging
import os
from typing import Any, Dict, List, Optional, Set

from plush.agent.cache import ContentCache, copy_into
from plush.agent.link import Channel, LinkClosed
from plush.agent.outputs import open_contained
from plush.agent.paths import Parts, PathRefused, dest_parts
from plush.agent.peers import PeerServer, Progress, close_quietly, fetch_from_peers
from plush.agent.tree import Tree
from plush.protocol.messages import Message
from plush.spec.paths import host_path_problem

__all__ = ["CHUNK", "FileRequests", "Incoming", "exec_parts"]

log = logging.getLogger(__name__)

#: bytes of a ``gather.data`` chunk
CHUNK = 256 * 1024


def exec_parts(text: str) -> Parts:
    """The components of ``text``, a path relative to the exec directory; :class:`PathRefused` naming why
    when it is not a plain relative path inside it (:func:`~plush.spec.paths.host_path_problem`)."""
    problem = host_path_problem(text)
    if problem is not None:
        raise PathRefused("{!r}: {}".format(text, problem))
    return dest_parts(text)


class Incoming:
    """The data of one ``copy`` being received into the cache's incoming file (:class:`Progress`: what is on
    disk, for the children a relay serves as it arrives)."""

    def __init__(self, path: str, size: int) -> None:
        self.path = path
        self.fd = os.open(path, os.O_WRONLY)
        self.progress = Progress(path, size)
        self.relay: Optional[Dict[str, Any]] = None  # the copy's ``relay``, when it has one
        self.sha = ""
        self.peered = False  # some of the data came from peers
        self.done: "asyncio.Future[Optional[str]]" = asyncio.get_running_loop().create_future()

    def write(self, data: bytes) -> None:
        self.progress.append(self.fd, data)

    def finish(self, error: Optional[str]) -> None:
        if not self.done.done():
            self.done.set_result(error)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    async def store(self, cache: ContentCache, first: bool, what: str, corrupt: str) -> Optional[str]:
        """The data arrived: move them into ``cache`` (their sha256, announced as :attr:`sha`, is checked there)
        and tell the children served from them; None when the peers sent bad data on the ``first`` attempt
        (fetch again, all from the controller). ValueError (``corrupt`` "arrived corrupted") otherwise."""
        loop = asyncio.get_running_loop()
        try:
            got = await loop.run_in_executor(None, cache.store, self.path, self.sha, self.progress.digest())
        except ValueError as exc:
            if self.peered and first:
                log.warning("%s: what the peers sent is not %s (%s): fetched again", what, self.sha, exc)
                return None
            raise ValueError("{} arrived corrupted ({})".format(corrupt, exc)) from None
        self.progress.finish(True, cache.entry(got))
        return str(got)

    def discard(self) -> None:
        """The transfer is over, done or not: waiters released, children served from a failed one stopped (a
        no-op once done), the incoming file closed and removed (a stored one was moved into the cache)."""
        self.finish("ended")
        self.progress.finish(False)
        self.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)


class FileRequests:
    """The ``copy`` and ``gather`` requests of one agent; ``channel`` (set by its owner): where replies go."""

    def __init__(self, directory: str, channel: Optional[Channel] = None, host: str = "") -> None:
        self.directory = directory
        self.channel = channel
        self.host = host
        self.peers: Optional[PeerServer] = None  # started by the first relayed copy
        self._incoming: Dict[int, Incoming] = {}
        self._tasks: Set["asyncio.Future[None]"] = set()

    def serve(self, msg: Message) -> None:
        """Handle ``msg``: a new request starts a task; ``copy.data``/``copy.end`` feed the copy waiting."""
        if msg.type == "copy.data":
            incoming = self._incoming.get(msg["req"])
            if incoming is not None and msg.payload is not None and not incoming.done.done():
                try:
                    incoming.write(msg.payload)
                except OSError as exc:
                    incoming.finish("cannot write into the content cache: {}".format(exc.strerror or exc))
        elif msg.type == "copy.end":
            incoming = self._incoming.get(msg["req"])
            if incoming is not None:
                incoming.finish(msg.get("error"))
        elif msg.type == "copy.peers":
            incoming = self._incoming.get(msg["req"])
            if incoming is not None and not incoming.done.done():
                task = asyncio.ensure_future(self._from_peers(msg, incoming))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
        elif msg.type in ("copy", "gather"):
            serve = self._copy if msg.type == "copy" else self._gather
            task = asyncio.ensure_future(serve(msg))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)
        close_quietly(self.peers)
        self.peers = None

    def _send(self, msg: Message) -> None:
        if self.channel is not None:
            with contextlib.suppress(LinkClosed, ConnectionError):
                self.channel.send(msg)

    async def _copy(self, msg: Message) -> None:
        req = msg["req"]
        cached = False
        try:
            parts = exec_parts(msg["dest"])
            loop = asyncio.get_running_loop()
            cache = ContentCache()
            sha = msg["sha256"]
            source = await loop.run_in_executor(None, cache.lookup, sha)
            cached = source is not None
            if source is None:
                source = cache.entry(await self._receive(msg, cache))
            await loop.run_in_executor(None, _place, self.directory, parts, source, msg["mode"])
        except (OSError, ValueError) as exc:  # PathRefused is a ValueError
            self._send(Message.of("copy.result", req=req, ok=False, cached=cached, reason=_why(msg["dest"], exc)))
            return
        self._send(Message.of("copy.result", req=req, ok=True, cached=cached))

    async def _receive(self, msg: Message, cache: ContentCache) -> str:
        """Ask for the data of copy ``msg`` (from the controller, or from the peers it names) and store them in
        ``cache``; their sha256 (ValueError: not the announced one, even from the controller)."""
        req, sha = msg["req"], msg["sha256"]
        relay = msg.get("relay")
        relayed = relay is not None and self.host in relay.get("hosts", ())
        loop = asyncio.get_running_loop()
        for attempt in (0, 1):  # what peers sent may be bad: then once more, all from the controller
            incoming = Incoming(cache.incoming(), int(msg["size"]))
            incoming.relay, incoming.sha = relay, sha
            self._incoming[req] = incoming
            try:
                fetch: Dict[str, Any] = {"req": req}
                if relayed and attempt == 0:
                    assert relay is not None
                    if self.peers is None:
                        self.peers = PeerServer()
                    fetch["port"] = await loop.run_in_executor(None, self.peers.offer, relay, sha, incoming.progress)
                elif attempt:
                    fetch["offset"] = 0
                self._send(Message.of("copy.fetch", **fetch))
                error = await incoming.done
                if error is not None:
                    raise ValueError(error)
                got = await incoming.store(cache, attempt == 0, "copy {}".format(req), "the file")
                if got is not None:
                    return got
            finally:
                del self._incoming[req]
                incoming.discard()
        raise AssertionError("unreachable")  # pragma: no cover

    async def _from_peers(self, msg: Message, incoming: Incoming) -> None:
        """``copy.peers``: fetch from the sources named, in turn; when none gave it all, the rest from the
        controller (``copy.fetch`` with the offset held)."""
        req = msg["req"]
        relay = incoming.relay
        incoming.peered = True
        loop = asyncio.get_running_loop()
        progress = incoming.progress
        failures: List[str] = []
        if relay is not None:
            failures = await loop.run_in_executor(
                None, fetch_from_peers, msg["sources"], relay, incoming.sha, incoming.fd, progress
            )
        if progress.written == progress.size:
            incoming.finish(None)
            return
        if failures:
            log.warning("copy %s: no peer gave the file (%s): the rest from the controller", req, "; ".join(failures))
        self._send(Message.of("copy.fetch", req=req, offset=progress.written))

    async def _gather(self, msg: Message) -> None:
        req = msg["req"]
        try:
            parts = exec_parts(msg["path"])
            source, mode = open_contained(self.directory, "/".join(parts))
        except (OSError, ValueError) as exc:
            self._send(Message.of("gather.end", req=req, ok=False, reason=_why(msg["path"], exc)))
            return
        digest = hashlib.sha256()
        size = 0
        try:
            with source:
                while True:
                    chunk = source.read(CHUNK)
                    if not chunk:
                        break
                    digest.update(chunk)
                    size += len(chunk)
                    if self.channel is None:
                        return
                    await self.channel.send_binary(Message.binary("gather.data", chunk, req=req))
        except OSError as exc:
            self._send(Message.of("gather.end", req=req, ok=False, reason=exc.strerror or str(exc)))
            return
        except (LinkClosed, ConnectionError):
            return
        self._send(Message.of("gather.end", req=req, ok=True, size=size, sha256=digest.hexdigest(), mode=mode))


def _why(path: str, exc: Exception) -> str:
    """The reason of a refused or failed request, naming ``path``."""
    if isinstance(exc, PathRefused):
        return str(exc)
    if isinstance(exc, OSError) and exc.errno in (errno.ELOOP, errno.ENOTDIR):
        return "{}: a component is a symbolic link or not a directory (links are not followed)".format(path)
    if isinstance(exc, OSError) and exc.strerror:
        return "{}: {}".format(path, exc.strerror)
    return "{}: {}".format(path, exc)


def _place(directory: str, parts: Parts, source: str, mode: Any) -> None:
    os.makedirs(directory, exist_ok=True)

    def fill(fd: int) -> None:
        copy_into(source, fd)

    with Tree(directory) as tree:
        tree.write_file(parts, fill, int(mode) & 0o777)
