"""Hostile input at the decoder and the connection, in both roles: only ProtocolError ever comes out.

Whatever bytes or JSON-ish structures a peer sends -- bad lengths, huge lengths, non-UTF-8, bad JSON, deep
nesting, non-finite numbers, wrong types, unknown types, binary frames before authentication -- the
decoder and the connection raise :class:`~plush.errors.ProtocolError` (an :class:`AuthenticationError`
before the controller side authenticated) and nothing else, and they never hand a message to the owner
before a valid join.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hostile_input import JOIN, cuts, frame, nested, stream
from plush.errors import AuthenticationError, ProtocolError
from plush.protocol.connection import AGENT, CONTROLLER, Connection
from plush.protocol.framing import KIND_JSON, MAX_DEPTH, FrameDecoder, encode
from plush.protocol.messages import SCHEMA, Message
from plush.protocol.secret import Secret

TOKEN = Secret("hostile-test-token")


def split(data: bytes, points: list[int]) -> list[bytes]:
    at = sorted({p % (len(data) + 1) for p in points})
    return [data[a:b] for a, b in zip([0, *at], [*at, len(data)], strict=True)]


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(stream, cuts)
def test_the_decoder_raises_only_protocol_errors(data: bytes, points: list[int]) -> None:
    decoder = FrameDecoder()
    try:
        for piece in split(data, points):
            for msg in decoder.feed(piece):
                assert msg.type in SCHEMA
    except ProtocolError:
        with pytest.raises(ProtocolError):
            decoder.feed(b"")  # broken for good


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(stream, cuts)
def test_an_unauthenticated_controller_side_yields_nothing_and_raises_only_authentication_errors(
    data: bytes, points: list[int]
) -> None:
    conn = Connection(CONTROLLER, TOKEN, 0.0)
    conn.send(Message("invite", {"run": "r", "protocol": 1}), 0.0)
    got: list[Message] = []
    try:
        for piece in split(data, points):
            got += conn.receive_data(piece, 1.0)
    except AuthenticationError:
        assert conn.state == "CLOSED"
    assert got == []  # the token is never guessed: nothing reaches the owner


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(stream, cuts, st.booleans())
def test_the_agent_side_raises_only_protocol_errors(data: bytes, points: list[int], welcomed: bool) -> None:
    agent = Connection(AGENT, TOKEN, 0.0)
    if welcomed:
        agent.receive_data(encode(Message("invite", {"run": "r", "protocol": 1})), 0.0)
        agent.send(Message("join", dict(JOIN)), 0.0)
        agent.receive_data(encode(Message.of("welcome", host="h1")), 0.0)
    try:
        for piece in split(data, points):
            agent.receive_data(piece, 1.0)
    except ProtocolError:
        pass


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 1000, 60_000])
@pytest.mark.parametrize("opener", ["[", "{"])
def test_deep_nesting_is_a_protocol_error(depth: int, opener: str) -> None:
    data = frame(KIND_JSON, b'{"t":"ping","v":1,"seq":' + nested(depth, opener) + b"}")
    with pytest.raises(ProtocolError, match="nest"):
        FrameDecoder(max_frame=1 << 20).feed(data)


def test_nesting_up_to_the_limit_is_accepted() -> None:
    item = json.loads(nested(MAX_DEPTH - 1))
    msg = Message.of("work.item", path="/a/b", item=item)
    assert FrameDecoder().feed(encode(msg)) == [msg]


@pytest.mark.parametrize("number", [b"NaN", b"Infinity", b"-Infinity", b"1e999", b"-1e999"])
def test_non_finite_numbers_are_protocol_errors(number: bytes) -> None:
    with pytest.raises(ProtocolError, match="finite"):
        FrameDecoder(validate_schema=False).feed(frame(KIND_JSON, b'{"t":"ping","v":1,"seq":' + number + b"}"))
