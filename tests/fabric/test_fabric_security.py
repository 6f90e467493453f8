"""Who gets in: wrong tokens, messages before join, untrusted CAs, wrong names and plain TCP get nothing."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path

import pytest
from fabric_world import TOKEN, RawClient, next_event, prepare_for, start_listener

from plush.agent.link import AgentLink, LinkClosed, client_ssl_context
from plush.config import Settings
from plush.fabric.listener import ControllerListener, Peer
from plush.fabric.tls import ensure_ca
from plush.protocol.framing import encode
from plush.protocol.messages import Message
from plush.protocol.secret import Secret

JOIN = {"host": "h1", "pid": 1, "hostname": "x", "python": "3.11", "workdir": "/w", "agent_version": "0"}


def assert_nothing_delivered(listener: ControllerListener) -> None:
    with pytest.raises(asyncio.QueueEmpty):
        listener.next_event_nowait()


async def test_wrong_token_is_disconnected_and_nothing_is_delivered(tmp_path: Path) -> None:
    ca, listener = await start_listener(tmp_path)
    try:
        client = await RawClient.connect(listener.port, ca.cert_pem)
        invite = await client.recv()
        assert invite.type == "invite" and invite["run"] == "run-test"
        client.send_raw(encode(Message("join", dict(JOIN, token="not-the-token"))))
        # the next frames would be acted upon if the join had been accepted
        client.send_raw(encode(Message.of("prepared")))
        rest = await client.read_until_closed()
        assert rest == b""
        await client.close()
        assert_nothing_delivered(listener)
        assert listener.statistics()["refused"] == 1
    finally:
        await listener.close()


@pytest.mark.parametrize(
    "first",
    [
        prepare_for("h1"),
        Message.of("prepared"),
        Message.of("stopped"),
        Message.of("block", path="/app/c", state="started"),
        Message.of("ping", seq=1),
    ],
    ids=lambda m: m.type,
)
async def test_any_message_before_join_is_disconnected(tmp_path: Path, first: Message) -> None:
    ca, listener = await start_listener(tmp_path)
    try:
        client = await RawClient.connect(listener.port, ca.cert_pem)
        assert (await client.recv()).type == "invite"
        # a well-formed join with the RIGHT token after the first message must not rescue the connection
        client.send_raw(encode(first) + encode(Message("join", dict(JOIN, token=TOKEN.reveal()))))
        assert await client.read_until_closed() == b""  # not even a pong
        await client.close()
        assert_nothing_delivered(listener)
    finally:
        await listener.close()


async def test_an_agent_link_with_a_wrong_token_fails_to_connect(tmp_path: Path) -> None:
    ca, listener = await start_listener(tmp_path)
    try:
        with pytest.raises(LinkClosed):
            await AgentLink.connect(
                "127.0.0.1",
                listener.port,
                ssl_context=client_ssl_context(ca.cert_pem),
                token=Secret("wrong"),
                join=JOIN,
                connect_timeout=10,
            )
        assert_nothing_delivered(listener)
    finally:
        await listener.close()


async def test_a_client_not_trusting_the_ca_fails(tmp_path: Path) -> None:
    _, listener = await start_listener(tmp_path / "real")
    other = ensure_ca(tmp_path / "other")
    try:
        with pytest.raises(ssl.SSLCertVerificationError):
            await RawClient.connect(listener.port, other.cert_pem)
        assert_nothing_delivered(listener)
    finally:
        await listener.close()


async def test_a_client_checks_the_name_it_dialled(tmp_path: Path) -> None:
    ca, listener = await start_listener(tmp_path)
    try:
        with pytest.raises(ssl.SSLCertVerificationError, match="mismatch"):
            await RawClient.connect(listener.port, ca.cert_pem, server_hostname="controller.example.org")
    finally:
        await listener.close()


async def test_plain_tcp_gets_nothing(tmp_path: Path) -> None:
    _, listener = await start_listener(tmp_path)
    try:
        client = await RawClient.connect(listener.port, None)
        client.send_raw(encode(Message("join", dict(JOIN, token=TOKEN.reveal()))))
        data = await client.read_until_closed()
        assert b"invite" not in data and b"run-test" not in data
        await client.close()
        assert_nothing_delivered(listener)
    finally:
        await listener.close()


async def test_a_silent_peer_is_pinged_then_declared_dead(tmp_path: Path) -> None:
    dead: asyncio.Future[tuple[Peer, str]] = asyncio.get_running_loop().create_future()
    settings = Settings(silence_timeout=0.2, ping_timeout=0.2)
    ca, listener = await start_listener(
        tmp_path, settings=settings, on_peer_dead=lambda p, r: None if dead.done() else dead.set_result((p, r))
    )
    try:
        client = await RawClient.connect(listener.port, ca.cert_pem)
        assert (await client.recv()).type == "invite"
        client.send_raw(encode(Message("join", dict(JOIN, token=TOKEN.reveal()))))
        peer, msg, _ = await next_event(listener)
        assert msg is not None and msg.type == "join" and "token" not in msg.fields
        peer.send(Message.of("welcome", host="h1"))
        assert (await client.recv()).type == "welcome"
        assert (await client.recv()).type == "ping"  # after the silence; the raw client never answers
        dead_peer, reason = await asyncio.wait_for(dead, 30)
        assert dead_peer is peer and "ping" in reason
        gone_peer, gone_msg, gone_reason = await next_event(listener)
        assert gone_peer is peer and gone_msg is None and gone_reason is not None and "ping" in gone_reason
        await client.close()
    finally:
        await listener.close()


async def test_heartbeats_keep_an_agent_link_alive(tmp_path: Path) -> None:
    settings = Settings(silence_timeout=0.3, ping_timeout=0.3)
    dead: list[str] = []
    ca, listener = await start_listener(tmp_path, settings=settings, on_peer_dead=lambda p, r: dead.append(r))
    link = None
    try:
        connecting = asyncio.ensure_future(
            AgentLink.connect(
                "127.0.0.1",
                listener.port,
                ssl_context=client_ssl_context(ca.cert_pem),
                token=TOKEN,
                join=JOIN,
                connect_timeout=10,
            )
        )
        peer, msg, _ = await next_event(listener)
        assert msg is not None and msg.type == "join"
        peer.send(Message.of("welcome", host="h1"))
        link = await connecting
        peer.send(prepare_for("h1", heartbeat_interval=0.05))
        assert (await link.recv()).type == "prepare"
        link.send(Message.of("prepared"))
        assert (await next_event(listener)).message == Message.of("prepared")
        # two seconds of quiet from the application's side: only heartbeats flow, the peer stays alive
        before = peer.conn.messages_out
        await asyncio.sleep(2.0)
        assert dead == [] and not peer.closed
        assert peer.conn.messages_out == before  # never needed to ping
        assert link.conn.messages_out > 10  # heartbeats
    finally:
        if link is not None:
            await link.close()
        await listener.close()
