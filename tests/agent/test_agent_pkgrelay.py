"""A relayed package fetch (plush.agent.pkgrelay) over real TLS on loopback, the controller's side played by the
test: the first ``fetch`` offers the package and names the listener's port; what a peer sent enters the cache
only when its sha256 is the announced one, else the package is fetched again, all of it from the controller; a
sink reads the bytes as they arrive, and what it made counts only when they entered the cache."""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import os
from pathlib import Path
from typing import IO, Any

import pytest

from plush.agent.cache import ContentCache
from plush.agent.peers import RELAY_NAME, PeerServer, Progress
from plush.agent.pkgrelay import PackageFetches, relay_for
from plush.fabric.tls import ensure_ca, issue_server_cert
from plush.protocol.messages import Message
from plush.protocol.secret import Secret

KEY = "pkg:soft/soft.tgz"


@pytest.fixture(scope="module")
def relay(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    ca = ensure_ca(tmp_path_factory.mktemp("ca"))
    cert, key = issue_server_cert(ca, (RELAY_NAME,))
    tokens = {KEY: Secret.generate().reveal()}
    return {"tokens": tokens, "ca": ca.cert_pem.decode(), "cert": cert.decode(), "key": key.decode(), "timeout": 30.0}


def read_all(stream: IO[bytes]) -> str:
    """A sink: the sha256 of the package's bytes, read as they arrive."""
    return hashlib.sha256(stream.read()).hexdigest()


@pytest.mark.parametrize("parent_lies", [False, True])
async def test_a_package_from_a_peer_is_checked_and_fetched_again_from_the_controller_when_wrong(
    tmp_path: Path, relay: dict[str, Any], parent_lies: bool
) -> None:
    data = os.urandom(300_000)
    sha = hashlib.sha256(data).hexdigest()
    own = relay_for(relay, KEY)
    assert own is not None and relay_for(relay, "pkg:other/x") is None
    parent_file = tmp_path / "parent"
    parent_file.write_bytes(bytes(len(data)) if parent_lies else data)  # zeros: other bytes of the same size
    held = Progress(str(parent_file), len(data))
    held.advance(len(data))
    held.finish(True)
    parent = PeerServer()
    port = parent.offer(own, sha, held)
    loop = asyncio.get_running_loop()
    sent: list[Message] = []
    numbers = itertools.count(1)

    def controller(msg: Message) -> None:
        sent.append(msg)
        req = msg["req"]
        if msg.get("port") is not None:  # the first ask: fetch it from the parent
            loop.call_soon(fetches.serve, Message.of("file.peers", req=req, sources=[["127.0.0.1", port]]))
        else:  # an ask again: the controller streams it
            loop.call_soon(fetches.serve, Message.binary("file.data", data, req=req))
            loop.call_soon(fetches.serve, Message.of("file.end", req=req, size=len(data), sha256=sha))

    fetches = PackageFetches(controller, lambda: next(numbers))
    cache = ContentCache(str(tmp_path / "cache"))
    try:
        fetching = fetches.fetch(KEY, {"sha256": sha, "size": len(data)}, own, cache, read_all)
        got, read = await asyncio.wait_for(fetching, 30)
    finally:
        await fetches.close()
        parent.close()
    assert got == sha and Path(cache.entry(sha)).read_bytes() == data
    assert read == (None if parent_lies else sha)  # what the sink read, only when it entered the cache
    asks = [(m["key"], m.get("port") is not None, m.get("offset")) for m in sent]
    assert asks[0] == (KEY, True, None)
    assert asks[1:] == ([(KEY, False, 0)] if parent_lies else [])
    assert [p.name for p in (tmp_path / "cache").iterdir() if p.name.startswith(".incoming")] == []


@pytest.mark.parametrize("corrupt", [False, True])
async def test_without_a_relay_the_controller_streams_the_package_and_the_sink_reads_it_as_it_arrives(
    tmp_path: Path, corrupt: bool
) -> None:
    """A host with no peer network: one ``fetch`` without a port; the controller streams the package in chunks,
    the sink reads them as they arrive (it has read the first chunk before the second is sent), and the entry
    enters the cache only with the announced sha256 -- a corrupted stream fails, nothing is fetched again."""
    data = os.urandom(300_000)
    sha = hashlib.sha256(data).hexdigest()
    loop = asyncio.get_running_loop()
    sent: list[Message] = []
    first_read = asyncio.Event()
    numbers = itertools.count(1)

    streams: list[asyncio.Task[None]] = []

    def controller(msg: Message) -> None:
        sent.append(msg)
        streams.append(loop.create_task(stream(msg["req"])))

    async def stream(req: int) -> None:
        fetches.serve(Message.binary("file.data", data[:100_000], req=req))
        await asyncio.wait_for(first_read.wait(), 30)  # the sink read before the rest exists
        rest = bytes(len(data) - 100_000) if corrupt else data[100_000:]
        fetches.serve(Message.binary("file.data", rest, req=req))
        fetches.serve(Message.of("file.end", req=req, size=len(data), sha256=sha))

    def sink(stream_in: IO[bytes]) -> str:
        first = stream_in.read(100_000)
        loop.call_soon_threadsafe(first_read.set)
        return hashlib.sha256(first + stream_in.read()).hexdigest()

    fetches = PackageFetches(controller, lambda: next(numbers))
    cache = ContentCache(str(tmp_path / "cache"))
    try:
        fetching = fetches.fetch(KEY, {"sha256": sha, "size": len(data)}, None, cache, sink)
        if corrupt:
            with pytest.raises(ValueError, match="arrived corrupted"):
                await asyncio.wait_for(fetching, 30)
        else:
            got, read = await asyncio.wait_for(fetching, 30)
            assert got == sha == read and Path(cache.entry(sha)).read_bytes() == data
    finally:
        await fetches.close()
    await asyncio.wait_for(asyncio.gather(*streams), 30)
    assert [(m.type, m["key"], m.get("port"), m.get("offset")) for m in sent] == [("fetch", KEY, None, None)]
    assert fetches.peers is None  # no listener was started
    assert not list((tmp_path / "cache").glob(".incoming-*"))  # removed, whatever happened
