"""Moving messages: binary frames, encode-once broadcast, bounded reading, drain, clean close."""

from __future__ import annotations

import asyncio
from pathlib import Path

from fabric_world import TOKEN, next_event, prepare_for, start_listener

from plush.agent.link import AgentLink, client_ssl_context
from plush.fabric.listener import TLS_READ_BUFFER, ControllerListener, Peer, small_buffer_tls_protocol
from plush.fabric.tls import CA
from plush.protocol.framing import encode
from plush.protocol.messages import Message


def join_fields(host: str) -> dict[str, object]:
    return {"host": host, "pid": 1, "hostname": "x", "python": "3.11", "workdir": "/w", "agent_version": "0"}


async def joined_links(ca: CA, listener: ControllerListener, n: int) -> tuple[list[AgentLink], dict[str, Peer]]:
    """``n`` in-process agent links, welcomed, prepared and running."""
    connecting = [
        asyncio.ensure_future(
            AgentLink.connect(
                "127.0.0.1",
                listener.port,
                ssl_context=client_ssl_context(ca.cert_pem),
                token=TOKEN,
                join=join_fields(f"h{i}"),
            )
        )
        for i in range(n)
    ]
    peers: dict[str, Peer] = {}
    for _ in range(n):
        peer, msg, _ = await next_event(listener)
        assert msg is not None and peer.host is not None
        peers[peer.host] = peer
        peer.send(Message.of("welcome", host=peer.host))
        peer.send(prepare_for(peer.host))
    links = list(await asyncio.gather(*connecting))
    for link in links:
        assert (await link.recv()).type == "prepare"
        link.send(Message.of("prepared"))
    for _ in range(n):
        peer, msg, _ = await next_event(listener)
        assert msg == Message.of("prepared")
        peer.send(Message.of("go", stage="execute"))
    for link in links:
        assert (await link.recv()).type == "go"
    return links, peers


async def test_output_binary_frames_arrive_in_order_through_a_small_inbox(tmp_path: Path) -> None:
    ca, listener = await start_listener(tmp_path, inbox_limit=8)
    links: list[AgentLink] = []
    try:
        links, _peers = await joined_links(ca, listener, 1)
        chunks = [bytes([i % 256]) * (1000 + i) for i in range(300)]
        for i, chunk in enumerate(chunks):
            await links[0].send_binary(Message.binary("output", chunk, path="/app/c/p", instance=i, stream="stdout"))
        got = []
        for _ in chunks:
            _peer, msg, _ = await next_event(listener)
            assert msg is not None
            got.append((msg["instance"], msg.payload))
        assert got == list(enumerate(chunks))
    finally:
        for link in links:
            await link.close()
        await listener.close()


async def test_encode_once_broadcast_to_many(tmp_path: Path) -> None:
    ca, listener = await start_listener(tmp_path)
    links: list[AgentLink] = []
    try:
        links, peers = await joined_links(ca, listener, 4)
        release = Message.of("barrier.release", name="b1", late=False)
        frame = encode(release)
        for peer in peers.values():
            peer.send_bytes(frame, release)
        received = await asyncio.gather(*(link.recv() for link in links))
        assert received == [release] * 4
        big = Message.binary("file.data", b"z" * (256 * 1024), req=1)
        frame = encode(big)
        for _ in range(8):
            for peer in peers.values():
                peer.send_bytes(frame, big)
                await peer.drain()
        for link in links:
            for _ in range(8):
                assert (await link.recv()) == big
    finally:
        for link in links:
            await link.close()
        await listener.close()


async def test_agent_close_is_reported_once_after_its_last_message(tmp_path: Path) -> None:
    ca, listener = await start_listener(tmp_path)
    try:
        links, _peers = await joined_links(ca, listener, 1)
        links[0].send(Message.of("log", level="info", text="bye"))
        await links[0].close()
        peer, msg, _ = await next_event(listener)
        assert msg == Message.of("log", level="info", text="bye")
        last_peer, msg, reason = await next_event(listener)
        assert msg is None and reason and last_peer is peer
        assert listener.statistics()["peers"] == 0
    finally:
        await listener.close()


async def test_stop_handshake_closes_both_ends(tmp_path: Path) -> None:
    ca, listener = await start_listener(tmp_path)
    try:
        links, peers = await joined_links(ca, listener, 1)
        peers["h0"].send(Message.of("stop", grace=0.5, reason="test"))
        assert (await links[0].recv()).type == "stop"
        links[0].send(Message.of("stopped"))
        assert (await next_event(listener)).message == Message.of("stopped")
        assert (await next_event(listener)).message is None
        assert peers["h0"].conn.state == "CLOSED"
        await links[0].close()
        assert links[0].closed
    finally:
        await listener.close()


async def test_each_tls_connection_reads_through_a_small_buffer(tmp_path: Path) -> None:
    assert small_buffer_tls_protocol() is not None  # this asyncio allows it (else: create_server(ssl=...))
    ca, listener = await start_listener(tmp_path)
    try:
        connecting = asyncio.ensure_future(
            AgentLink.connect(
                "127.0.0.1",
                listener.port,
                ssl_context=client_ssl_context(ca.cert_pem),
                token=TOKEN,
                join=join_fields("h1"),
            )
        )
        peer, msg, _ = await next_event(listener)
        assert msg is not None and msg.type == "join"
        ssl_protocol = peer._transport._ssl_protocol  # type: ignore[union-attr]
        assert ssl_protocol.max_size == TLS_READ_BUFFER and len(ssl_protocol._ssl_buffer) == TLS_READ_BUFFER
        assert peer._transport.get_extra_info("peername")[0] == "127.0.0.1"  # type: ignore[union-attr]
        peer.send(Message.of("welcome", host="h1"))
        link = await connecting
        big = b"x" * (3 * TLS_READ_BUFFER)  # larger than the buffer: arrives whole, in order
        peer.send(prepare_for("h1"))
        assert (await link.recv()).type == "prepare"
        link.send(Message.of("prepared"))
        await link.send_binary(Message.binary("output", big, path="/app/c/p", instance=0, stream="stdout"))
        assert (await next_event(listener)).message == Message.of("prepared")
        out = (await next_event(listener)).message
        assert out is not None and out.type == "output" and out.payload == big
        await link.close()
    finally:
        await listener.close()
