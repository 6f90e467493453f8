"""Hostile input at the decoder and the connection, in both roles: only ProtocolError ever comes out.

Whatever bytes or JSON-ish structures a peer sends -- bad lengths, huge lengths, non-UTF-8, bad JSON, deep
nesting, non-finite numbers, wrong types, unknown types, binary frames before authentication -- the
decoder and the connection raise :class:`~plush.errors.ProtocolError` (an :class:`AuthenticationError`
before the controller side authenticated) and nothing else, and they never hand a message to the owner
before a valid join.
"""

from __future__ import annotations

import json
import struct
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from plush.errors import AuthenticationError, ProtocolError
from plush.protocol.connection import AGENT, CONTROLLER, Connection
from plush.protocol.framing import KIND_BINARY, KIND_JSON, MAX_DEPTH, FrameDecoder, encode
from plush.protocol.messages import SCHEMA, Message
from plush.protocol.secret import Secret

TOKEN = Secret("hostile-test-token")
JOIN = {"host": "h1", "pid": 1, "hostname": "x", "python": "3.8", "workdir": "/w", "agent_version": "0"}

json_scalars = (
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=12)
)
json_ish = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=16,
)
types = st.sampled_from(sorted(SCHEMA)) | st.text(max_size=12)


def _frame(kind: int, body: bytes) -> bytes:
    return struct.pack(">IB", len(body) + 1, kind) + body


def nested(depth: int, opener: str = "[") -> bytes:
    closer = "]" if opener == "[" else "}"
    if opener == "{":
        return ('{"a":' * depth + "0" + closer * depth).encode()
    return (opener * depth + closer * depth).encode()


@st.composite
def hostile_frames(draw: st.DrawFn) -> bytes:
    """One frame, or a few, built to be almost right: a plausible header with hostile contents."""
    choice = draw(st.integers(0, 6))
    if choice == 0:
        return draw(st.binary(max_size=300))
    if choice == 1:  # a header object with a known or random type, a version and random fields
        obj: dict[str, Any] = {"t": draw(types), "v": draw(st.sampled_from([1, 1, 0, 2, "1", None, True]))}
        obj.update(draw(st.dictionaries(st.text(max_size=8), json_ish, max_size=6)))
        text = json.dumps(obj, allow_nan=True)
        body = text.encode("utf-8", "surrogatepass")
        if draw(st.booleans()):
            header = body[:0xFFFF]
            return _frame(KIND_BINARY, struct.pack(">H", len(header)) + header + draw(st.binary(max_size=50)))
        return _frame(KIND_JSON, body)
    if choice == 2:  # deep nesting, at the top or inside a field
        depth = draw(st.integers(MAX_DEPTH - 2, 60_000))
        inner = nested(depth, draw(st.sampled_from(["[", "{"])))
        if draw(st.booleans()):
            return _frame(KIND_JSON, inner)
        return _frame(KIND_JSON, b'{"t":"join","v":1,"token":"x","host":' + inner + b"}")
    if choice == 3:  # any JSON value as the whole frame body
        return _frame(KIND_JSON, json.dumps(draw(json_ish), allow_nan=True).encode("utf-8", "surrogatepass"))
    if choice == 4:  # a length prefix of any size, any kind
        return struct.pack(">IB", draw(st.integers(0, 2**32 - 1)), draw(st.integers(0, 255))) + draw(
            st.binary(max_size=40)
        )
    if choice == 5:  # a join with the wrong token or wrong field types, in either frame kind
        fields = dict(JOIN, token=draw(st.text(max_size=10)))
        fields.update(draw(st.dictionaries(st.sampled_from(sorted(JOIN)), json_ish, max_size=2)))
        body = json.dumps(dict(fields, t="join", v=1), allow_nan=True).encode("utf-8", "surrogatepass")
        if draw(st.booleans()):  # a join must travel in a JSON frame
            return _frame(KIND_BINARY, struct.pack(">H", len(body[:0xFFFF])) + body[:0xFFFF])
        return _frame(KIND_JSON, body)
    # non-UTF-8 and non-finite numbers
    return _frame(
        KIND_JSON,
        draw(st.sampled_from([b'{"t":"ping","v":1,"seq":NaN}', b'{"t":"ping","v":1,"seq":1e999}', b"\xff\xfe{}"])),
    )


stream = st.lists(hostile_frames(), min_size=1, max_size=4).map(b"".join)
cuts = st.lists(st.integers(0, 100_000), max_size=6)


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
    frame = _frame(KIND_JSON, b'{"t":"ping","v":1,"seq":' + nested(depth, opener) + b"}")
    with pytest.raises(ProtocolError, match="nest"):
        FrameDecoder(max_frame=1 << 20).feed(frame)


def test_nesting_up_to_the_limit_is_accepted() -> None:
    item = json.loads(nested(MAX_DEPTH - 1))
    msg = Message.of("work.item", path="/a/b", item=item)
    assert FrameDecoder().feed(encode(msg)) == [msg]


@pytest.mark.parametrize("number", [b"NaN", b"Infinity", b"-Infinity", b"1e999", b"-1e999"])
def test_non_finite_numbers_are_protocol_errors(number: bytes) -> None:
    with pytest.raises(ProtocolError, match="finite"):
        FrameDecoder(validate_schema=False).feed(_frame(KIND_JSON, b'{"t":"ping","v":1,"seq":' + number + b"}"))
