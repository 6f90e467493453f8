"""XML-RPC callbacks never block the controller and arrive in order (plush.api.xmlrpc.ClientQueue), incoming XML
goes through defusedxml (parse_call), and the HTTP token file is refused when unsafe (plush.api.token).

Real loopback servers: a client that refuses the first attempts of every call gets each call, in order, once
it accepts (retries with back-off; the back-off shortened by configuration, nothing sleeps to synchronise); a
client that never answers costs the controller nothing: ``put`` returns at once, the queue stays bounded and
the dropped calls are counted.
"""

from __future__ import annotations

import asyncio
import os
import socket
import xmlrpc.client
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from plush.api import xmlrpc as rpc
from plush.api.token import TokenError, ensure_token, token_matches


async def _receiver(
    refuse_first: int, expect: int, arrived: asyncio.Event
) -> tuple[web.AppRunner, str, list[tuple[str, tuple[Any, ...]]]]:
    received: list[tuple[str, tuple[Any, ...]]] = []
    attempts: dict[bytes, int] = {}

    async def call(request: web.Request) -> web.Response:
        body = await request.read()
        attempts[body] = attempts.get(body, 0) + 1
        if attempts[body] <= refuse_first:
            return web.Response(status=503)
        params, method = xmlrpc.client.loads(body)
        received.append((method or "", params))
        if len(received) == expect:
            arrived.set()
        return web.Response(text=xmlrpc.client.dumps((True,), methodresponse=True), content_type="text/xml")

    app = web.Application()
    app.router.add_post("/RPC2", call)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    return runner, f"http://127.0.0.1:{port}/RPC2", received


async def test_each_call_is_retried_until_accepted_and_they_arrive_in_order(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rpc, "BACKOFF", 0.001)
    arrived = asyncio.Event()
    runner, url, received = await _receiver(refuse_first=2, expect=5, arrived=arrived)
    async with aiohttp.ClientSession() as session:
        client = rpc.ClientQueue(url, session)
        sent = [("sendBlockStatus", (f"/app/b{k}", "local-1", "started")) for k in range(5)]
        for method, params in sent:
            client.put(method, params)
        await asyncio.wait_for(arrived.wait(), 30)
        await client.close()
    await runner.cleanup()
    assert received == sent and client.dropped == 0 and client.delivered == 5


async def test_a_client_that_never_answers_costs_nothing_and_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rpc, "QUEUE", 5)
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    async with aiohttp.ClientSession() as session:
        client = rpc.ClientQueue(f"http://127.0.0.1:{port}/RPC2", session)
        for k in range(50):
            client.put("sendHostStatus", (f"h{k}", "joined"))  # synchronous: the caller never waits
        assert len(client._queue) == 5 and client.dropped == 45
        assert client._queue[-1] == ("sendHostStatus", ("h49", "joined"))  # the newest are kept
        await client.close()


def test_incoming_xml_is_parsed_by_defusedxml() -> None:
    assert rpc.parse_call(xmlrpc.client.dumps(("a.xml",), "plushLoadApp").encode()) == ("plushLoadApp", ("a.xml",))
    bomb = (
        b'<?xml version="1.0"?><!DOCTYPE m [<!ENTITY a "aaaa">]><methodCall><methodName>&a;</methodName></methodCall>'
    )
    with pytest.raises(ValueError, match="not an XML-RPC call"):
        rpc.parse_call(bomb)
    with pytest.raises(ValueError, match="not an XML-RPC call"):
        rpc.parse_call(b"<methodCall><methodName>x</methodName>")


def test_the_token_is_kept_and_an_unsafe_token_file_is_refused(tmp_path: Path) -> None:
    token = ensure_token(tmp_path / "state")
    assert ensure_token(tmp_path / "state") == token and len(token) >= 32
    assert token_matches(f"Bearer {token}", token) and not token_matches(f"Bearer {token}x", token)
    assert not token_matches(token, token) and not token_matches(None, token)
    os.chmod(tmp_path / "state" / "api-token", 0o644)
    with pytest.raises(TokenError, match="not a 0600 file"):
        ensure_token(tmp_path / "state")
    os.unlink(tmp_path / "state" / "api-token")
    os.symlink(tmp_path / "elsewhere", tmp_path / "state" / "api-token")
    with pytest.raises(TokenError):
        ensure_token(tmp_path / "state")
    assert not (tmp_path / "elsewhere").exists()
