"""The message table: every type validates, errors name type and field, docs cover every type."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from plush.errors import ProtocolError
from plush.protocol.framing import FrameDecoder, encode
from plush.protocol.messages import SCHEMA, FieldKind, Message, MessageSpec, validate
from plush.protocol.secret import Secret

DOCS = Path(__file__).resolve().parents[2] / "docs" / "protocol.md"

SAMPLES: dict[str, Any] = {
    "str": "x",
    "int": 3,
    "number": 1.5,
    "bool": True,
    "object": {"a": 1},
    "array": [1, "two"],
    "any": ["anything"],
    "int|null": None,
}


def sample_value(kind: FieldKind) -> Any:
    return kind[-1] if isinstance(kind, tuple) else SAMPLES[kind]


def sample(spec: MessageSpec) -> Message:
    fields = {name: sample_value(kind) for name, kind in spec.required.items()}
    fields.update({name: sample_value(kind) for name, kind in spec.optional.items()})
    return Message(spec.type, fields, b"\x00data" if spec.binary else None)


@pytest.mark.parametrize("mtype", sorted(SCHEMA))
def test_every_type_round_trips_and_validates(mtype: str) -> None:
    msg = sample(SCHEMA[mtype])
    assert validate(msg) is SCHEMA[mtype]
    assert FrameDecoder().feed(encode(msg)) == [msg]


@pytest.mark.parametrize("mtype", sorted(t for t in SCHEMA if SCHEMA[t].required))
def test_missing_field_names_type_and_field(mtype: str) -> None:
    msg = sample(SCHEMA[mtype])
    field = next(iter(SCHEMA[mtype].required))
    del msg.fields[field]
    with pytest.raises(ProtocolError, match=f"message '{re.escape(mtype)}' is missing field '{field}'"):
        validate(msg)


@pytest.mark.parametrize(
    ("msg", "match"),
    [
        (Message.of("ping", seq="1"), "field 'seq' must be int"),
        (Message.of("ping", seq=True), "field 'seq' must be int"),
        (Message.of("go", stage="dance"), "field 'stage' must be one of install|execute"),
        (Message.of("block", path="/a", state="started", reason=5), "field 'reason' must be str"),
        (Message.of("stop", grace=False, reason="r"), "field 'grace' must be number"),
        (Message.of("proc.exited", path="/a", instance=0, code=1.5, signal=None), "field 'code' must be int|null"),
        (Message.of("nonsense"), "unknown message type 'nonsense'"),
        (Message.of("output", path="/a", instance=0, stream="stdout"), "must travel in a binary frame"),
        (Message.binary("ping", b"x", seq=1), "must travel in a JSON frame"),
    ],
)
def test_validation_errors(msg: Message, match: str) -> None:
    with pytest.raises(ProtocolError, match=match):
        validate(msg)


def test_extra_fields_are_accepted_for_forward_compatibility() -> None:
    validate(Message.of("ping", seq=1, future_field={"x": 1}))


def test_message_helpers_and_masked_token() -> None:
    msg = Message.of("join", token="hunter2", host="h")
    assert msg["host"] == "h" and msg.get("nope", 5) == 5
    assert "hunter2" not in repr(msg)
    assert "<3 bytes>" in repr(Message.binary("upload", b"abc", path="/p", name="n"))
    assert msg != Message.of("join", token="other", host="h")


def test_secret_is_masked_and_compares_in_constant_time() -> None:
    s = Secret("hunter2")
    assert "hunter2" not in repr(s) and "hunter2" not in str(s) and "hunter2" not in f"{s}"
    assert s.matches("hunter2") and not s.matches("hunter3") and not s.matches(None)
    assert s.reveal() == "hunter2"
    assert Secret.generate() != Secret.generate()
    with pytest.raises(ValueError, match="non-empty"):
        Secret("")


def test_docs_describe_every_message_type() -> None:
    text = DOCS.read_text()
    documented = set(re.findall(r"^### `([a-z_.]+)`", text, flags=re.MULTILINE))
    assert documented == set(SCHEMA), (set(SCHEMA) - documented, documented - set(SCHEMA))
    for spec in SCHEMA.values():
        section = text.split(f"### `{spec.type}`", 1)[1].split("\n### ", 1)[0]
        for name in [*spec.required, *spec.optional]:
            assert f"`{name}`" in section, f"docs/protocol.md: {spec.type} does not describe field {name}"
