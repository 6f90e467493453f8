"""Framing: encode/decode round trips, any split of the stream, and every way a frame can be refused."""

from __future__ import annotations

import json
import struct
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from plush.config import Settings
from plush.errors import ProtocolError
from plush.protocol.framing import KIND_BINARY, KIND_JSON, MAX_FRAME, FrameDecoder, encode
from plush.protocol.messages import Message

json_scalars = st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=20)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
field_names = st.text(min_size=1, max_size=10).filter(lambda n: n not in ("t", "v"))
messages = st.builds(
    Message,
    st.text(min_size=1, max_size=15),
    st.dictionaries(field_names, json_values, max_size=5),
    st.none() | st.binary(max_size=300),
)


@given(st.lists(messages, max_size=8), st.lists(st.integers(0, 10_000), max_size=12))
def test_any_split_of_the_stream_yields_the_same_messages(msgs: list[Message], cuts: list[int]) -> None:
    stream = b"".join(encode(m) for m in msgs)
    points = sorted({c % (len(stream) + 1) for c in cuts})
    pieces = [stream[a:b] for a, b in zip([0, *points], [*points, len(stream)], strict=True)]
    decoder = FrameDecoder(validate_schema=False)
    got: list[Message] = []
    for piece in pieces:
        got += decoder.feed(piece)
    assert got == msgs
    assert decoder.buffered == 0


@given(messages)
def test_byte_at_a_time(msg: Message) -> None:
    data = encode(msg)
    decoder = FrameDecoder(validate_schema=False)
    got: list[Message] = []
    for i in range(len(data)):
        got += decoder.feed(data[i : i + 1])
        if i < len(data) - 1:
            assert got == []
    assert got == [msg]


def test_frame_layout_json_and_binary() -> None:
    frame = encode(Message.of("ping", seq=7))
    length, kind = struct.unpack(">IB", frame[:5])
    assert kind == KIND_JSON and length == len(frame) - 4
    assert json.loads(frame[5:]) == {"t": "ping", "v": 1, "seq": 7}

    payload = bytes(range(256)) * 3
    frame = encode(Message.binary("output", payload, path="/a/c/p", instance=0, stream="stdout"))
    length, kind = struct.unpack(">IB", frame[:5])
    assert kind == KIND_BINARY and length == len(frame) - 4
    (hlen,) = struct.unpack(">H", frame[5:7])
    assert json.loads(frame[7 : 7 + hlen])["t"] == "output"
    assert frame[7 + hlen :] == payload  # raw, no base64


def test_encode_once_send_many() -> None:
    frame = encode(Message.of("barrier.release", name="b1", late=False))
    assert isinstance(frame, bytes)
    results = [FrameDecoder().feed(frame) for _ in range(3)]
    assert results[0] == results[1] == results[2] == [Message.of("barrier.release", name="b1", late=False)]


def test_oversized_frame_is_refused_from_its_prefix() -> None:
    decoder = FrameDecoder(max_frame=1024)
    with pytest.raises(ProtocolError, match="1025 bytes refused"):
        decoder.feed(struct.pack(">IB", 1025, KIND_JSON))
    with pytest.raises(ProtocolError, match="already broken"):
        decoder.feed(encode(Message.of("ping", seq=1)))


def test_default_limit_is_16_mib_and_encode_refuses_too() -> None:
    assert MAX_FRAME == 16 * 1024 * 1024
    with pytest.raises(ProtocolError, match="frame limit"):
        encode(Message.binary("upload", b"x" * 2000, path="/p", name="f"), max_frame=1000)


def raw(kind: int, body: bytes) -> bytes:
    return struct.pack(">IB", len(body) + 1, kind) + body


@pytest.mark.parametrize(
    ("frame", "match"),
    [
        (raw(0x07, b"{}"), "unknown frame kind 0x07"),
        (raw(KIND_JSON, b"{not json"), "not valid UTF-8 JSON"),
        (raw(KIND_JSON, b"\xff\xfe"), "not valid UTF-8 JSON"),
        (raw(KIND_JSON, b"[1,2]"), "not a JSON object"),
        (raw(KIND_JSON, b'{"v":1}'), "no message type"),
        (raw(KIND_JSON, b'{"t":"ping","v":2,"seq":1}'), "protocol version 2"),
        (raw(KIND_JSON, b'{"t":"ping","seq":1}'), "protocol version None"),
        (raw(KIND_BINARY, b"\x00"), "too short"),
        (raw(KIND_BINARY, b"\x00\x50{}"), "overruns"),
        (struct.pack(">IB", 0, KIND_JSON), "0 bytes refused"),
    ],
)
def test_malformed_frames(frame: bytes, match: str) -> None:
    with pytest.raises(ProtocolError, match=match):
        FrameDecoder(validate_schema=False).feed(frame)


@pytest.mark.parametrize("bad", [{"t": 1}, {"v": 2}])
def test_reserved_field_names(bad: dict[str, Any]) -> None:
    with pytest.raises(ProtocolError, match="reserved"):
        encode(Message("ping", {"seq": 1, **bad}))


def test_unencodable_fields() -> None:
    with pytest.raises(ProtocolError, match="cannot be encoded"):
        encode(Message("log", {"level": "info", "text": object()}))
    with pytest.raises(ProtocolError, match="cannot be encoded"):
        encode(Message("hostmon", {"sample": {"load": float("nan")}}))


def test_decoder_validates_schema_by_default() -> None:
    with pytest.raises(ProtocolError, match="'join' is missing field 'token'"):
        FrameDecoder().feed(encode(Message.of("join", host="h")))


def test_a_frame_from_fields_encoded_once_is_the_frame_of_the_message() -> None:
    from plush.protocol.framing import encode_fields, json_text

    spec = {"name": "app", "components": [{"name": "c", "hosts": [1, 2]}], "text": "ünïcode"}
    host = {"name": "local-1", "env": {"PLUSH_HOSTS_C": "local-1,local-2"}}
    settings = Settings().agent_settings().to_dict()
    msg = Message.of("prepare", spec=spec, host=host, settings=settings)
    parts = [("spec", json_text(spec)), ("host", json_text(host)), ("settings", json_text(settings))]
    frame = encode_fields("prepare", parts)
    assert frame == encode(msg)
    assert FrameDecoder().feed(frame) == [msg]
    with pytest.raises(ProtocolError, match="reserved"):
        encode_fields("prepare", [("t", b"1")])
    with pytest.raises(ProtocolError, match="frame limit"):
        encode_fields("prepare", parts, max_frame=64)
