"""Hypothesis strategies of hostile wire input, shared by the protocol and fabric tests.

:data:`stream` draws one to four frames built to be almost right -- arbitrary bytes, a plausible header with
random fields, deep nesting, any JSON value as a body, a length prefix of any size and kind, a join with a
wrong token or wrong field types (in either frame kind), a well-formed message of a known type with one
undeclared field or one field of the wrong kind, non-UTF-8 and non-finite numbers -- joined into one byte
string. It never holds a valid join with the real token (it does not know it).
"""

from __future__ import annotations

import json
import struct
from typing import Any

from hypothesis import strategies as st

from plush.protocol.framing import KIND_BINARY, KIND_JSON, MAX_DEPTH
from plush.protocol.messages import SCHEMA, FieldKind

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
_RIGHT: dict[str, Any] = {
    "str": "x",
    "int": 1,
    "number": 1.5,
    "bool": True,
    "object": {},
    "array": [],
    "any": None,
    "int|null": None,
    "settings": {"stop_grace": 1.0},
}


_WRONG: dict[str, Any] = {
    "str": 1,
    "int": "1",
    "number": "x",
    "bool": 0,
    "object": [],
    "array": {},
    "int|null": 1.5,
    "settings": {"stop_grace": -1},
}


def _right(kind: FieldKind) -> Any:
    return kind[0] if isinstance(kind, tuple) else _RIGHT[kind]


def _wrong(kind: FieldKind) -> Any:
    return "not one of them" if isinstance(kind, tuple) else _WRONG[kind]


def frame(kind: int, body: bytes) -> bytes:
    return struct.pack(">IB", len(body) + 1, kind) + body


def nested(depth: int, opener: str = "[") -> bytes:
    closer = "]" if opener == "[" else "}"
    if opener == "{":
        return ('{"a":' * depth + "0" + closer * depth).encode()
    return (opener * depth + closer * depth).encode()


@st.composite
def hostile_frames(draw: st.DrawFn) -> bytes:
    """One frame, or a few, built to be almost right: a plausible header with hostile contents."""
    choice = draw(st.integers(0, 7))
    if choice == 0:
        return draw(st.binary(max_size=300))
    if choice == 1:  # a header object with a known or random type, a version and random fields
        obj: dict[str, Any] = {"t": draw(types), "v": draw(st.sampled_from([1, 1, 0, 2, "1", None, True]))}
        obj.update(draw(st.dictionaries(st.text(max_size=8), json_ish, max_size=6)))
        text = json.dumps(obj, allow_nan=True)
        body = text.encode("utf-8", "surrogatepass")
        if draw(st.booleans()):
            header = body[:0xFFFF]
            return frame(KIND_BINARY, struct.pack(">H", len(header)) + header + draw(st.binary(max_size=50)))
        return frame(KIND_JSON, body)
    if choice == 2:  # deep nesting, at the top or inside a field
        depth = draw(st.integers(MAX_DEPTH - 2, 60_000))
        inner = nested(depth, draw(st.sampled_from(["[", "{"])))
        if draw(st.booleans()):
            return frame(KIND_JSON, inner)
        return frame(KIND_JSON, b'{"t":"join","v":1,"token":"x","host":' + inner + b"}")
    if choice == 3:  # any JSON value as the whole frame body
        return frame(KIND_JSON, json.dumps(draw(json_ish), allow_nan=True).encode("utf-8", "surrogatepass"))
    if choice == 4:  # a length prefix of any size, any kind
        return struct.pack(">IB", draw(st.integers(0, 2**32 - 1)), draw(st.integers(0, 255))) + draw(
            st.binary(max_size=40)
        )
    if choice == 5:  # a join with the wrong token or wrong field types, in either frame kind
        fields = dict(JOIN, token=draw(st.text(max_size=10)))
        fields.update(draw(st.dictionaries(st.sampled_from(sorted(JOIN)), json_ish, max_size=2)))
        body = json.dumps(dict(fields, t="join", v=1), allow_nan=True).encode("utf-8", "surrogatepass")
        if draw(st.booleans()):  # a join must travel in a JSON frame
            return frame(KIND_BINARY, struct.pack(">H", len(body[:0xFFFF])) + body[:0xFFFF])
        return frame(KIND_JSON, body)
    if choice == 7:  # a message of a known type, right but for one undeclared field or one wrong kind
        spec = SCHEMA[draw(st.sampled_from(sorted(SCHEMA)))]
        fields = {name: _right(kind) for name, kind in spec.required.items()}
        wrong = [name for name, kind in spec.required.items() if kind != "any"]
        if wrong and draw(st.booleans()):
            name = draw(st.sampled_from(wrong))
            fields[name] = _wrong(spec.required[name])
        else:
            fields[draw(st.sampled_from(["extra", "token2", "Q", "_"]))] = draw(json_ish)
        body = json.dumps(dict(fields, t=spec.type, v=1)).encode()
        if spec.binary:
            return frame(KIND_BINARY, struct.pack(">H", len(body)) + body + b"payload")
        return frame(KIND_JSON, body)
    # non-UTF-8 and non-finite numbers
    return frame(
        KIND_JSON,
        draw(st.sampled_from([b'{"t":"ping","v":1,"seq":NaN}', b'{"t":"ping","v":1,"seq":1e999}', b"\xff\xfe{}"])),
    )


stream = st.lists(hostile_frames(), min_size=1, max_size=4).map(b"".join)
cuts = st.lists(st.integers(0, 100_000), max_size=6)
