"""The message table: every type validates, errors name type and field (an undeclared one too), the accessor
knows the declared fields, and docs/protocol.md describes exactly the table (types, fields, kinds)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from plush.errors import ProtocolError
from plush.processes.policy import STOPPED, SUCCESS, UNHANDLED
from plush.protocol.agentsettings import AgentSettings
from plush.protocol.framing import FrameDecoder, encode
from plush.protocol.messages import ACTIONS, SCHEMA, SETTINGS, FieldKind, Message, MessageSpec, validate
from plush.protocol.secret import Secret
from plush.spec.model import ACTIONS as SPEC_ACTIONS

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
    SETTINGS: {"heartbeat_interval": 0.5, "output_buffer_bytes": 1024},
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


def test_an_undeclared_field_is_a_protocol_error_when_sent_or_decoded() -> None:
    """Regression: ``proc.exited`` travelled with ``action``, ``rule``, ``liveness`` that the table lacked,
    and any extra field passed. Now the table declares what is sent, and nothing else passes."""
    exited = Message.of("proc.exited", path="/a", instance=1, code=1, signal=None, action="abort", rule="r")
    validate(exited)
    validate(Message.of("proc.exited", path="/a", instance=1, code=None, signal=9, liveness="no answer"))
    validate(Message.of("block", path="/a", state="failed", reason="r", action="restart_application"))
    extra = Message.of("ping", seq=1, future_field={"x": 1})
    with pytest.raises(ProtocolError, match="message 'ping' has undeclared field 'future_field'"):
        validate(extra)
    with pytest.raises(ProtocolError, match="undeclared field 'future_field'"):
        FrameDecoder().feed(encode(extra))
    with pytest.raises(ProtocolError, match="field 'action' must be one of success"):
        validate(Message.of("proc.exited", path="/a", instance=1, code=1, signal=None, action="explode"))


def test_the_sequence_number_is_declared_on_numbered_types_only() -> None:
    numbered = {t for t, spec in SCHEMA.items() if spec.numbered}
    assert "go" in numbered and "output" in numbered and "reset" in numbered
    assert not numbered & {"prepare", "stop", "ping", "ack", "join", "log"}
    validate(Message.of("go", stage="install", q=3))
    validate(Message.binary("output", b"x", path="/a", instance=0, stream="stdout", q=7))
    with pytest.raises(ProtocolError, match="message 'stop' has undeclared field 'q'"):
        validate(Message.of("stop", grace=1.0, reason="r", q=1))
    with pytest.raises(ProtocolError, match="field 'q' must be int"):
        validate(Message.of("go", stage="install", q="1"))


def test_the_accessor_knows_the_declared_fields() -> None:
    msg = Message.of("proc.exited", path="/a", instance=1, code=0, signal=None)
    assert msg["path"] == "/a" and msg.get("action") is None and msg.get("rule", "none") == "none"
    with pytest.raises(KeyError, match=r"message 'proc\.exited' declares no field 'acton'"):
        msg.get("acton")
    with pytest.raises(KeyError, match="declares no field 'exit_code'"):
        msg["exit_code"]
    assert Message.of("go", stage="install", q=2)["q"] == 2
    assert Message.of("nonsense", x=1)["x"] == 1  # an unknown type has no table to check against


def test_prepare_settings_are_agent_settings() -> None:
    ok = Message.of("prepare", spec={}, host={}, settings={"stop_grace": 0, "hostmon_interval": 2})
    validate(ok)
    for settings, match in [
        ({"stop_grace": "5"}, "setting 'stop_grace' must be a number"),
        ({"output_buffer_bytes": 1.5}, "setting 'output_buffer_bytes' must be an int"),
        ({"heartbeat_interval": 0}, "setting 'heartbeat_interval' must be over 0"),
        ({"agent_grace": -1}, "setting 'agent_grace' must be at least 0"),
        ({"ping_timeout": True}, "setting 'ping_timeout' must be a number"),
        ({"warp_factor": 9}, "unknown setting 'warp_factor'"),
    ]:
        msg = Message.of("prepare", spec={}, host={}, settings=settings)
        with pytest.raises(ProtocolError, match=f"field 'settings' must be agent settings \\({match}"):
            validate(msg)
        with pytest.raises(ProtocolError, match=match):
            FrameDecoder().feed(encode(msg))


def test_actions_on_the_wire_are_the_spec_actions_and_the_agent_own() -> None:
    assert set(ACTIONS) == set(SPEC_ACTIONS) | {SUCCESS, STOPPED, UNHANDLED}


def test_message_helpers_and_masked_token() -> None:
    msg = Message.of("join", token="hunter2", host="h")
    assert msg["host"] == "h" and msg.get("pid", 5) == 5
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


_DIRECTIONS = {"controller->agent": "ctl→agent", "agent->controller": "agent→ctl", "both": "both ways"}


def _kind_text(kind: FieldKind) -> str:
    return "\\|".join(kind) if isinstance(kind, tuple) else kind.replace("|", "\\|")


def documented_messages(text: str) -> dict[str, tuple[str, dict[str, str]]]:
    """Each ``### `type``` section of docs/protocol.md: its first line and its field table (name -> kind)."""
    out: dict[str, tuple[str, dict[str, str]]] = {}
    for section in re.split(r"^### ", text, flags=re.MULTILINE)[1:]:
        head = re.match(r"`([a-z_.]+)`\n(.*)\n", section)
        if head is None:
            continue
        body = re.split(r"^#", section, maxsplit=1, flags=re.MULTILINE)[0]  # up to the next heading
        table = body.split("| field | kind | meaning |\n|---|---|---|\n", 1)
        fields: dict[str, str] = {}
        if len(table) == 2:
            for line in table[1].split("\n"):
                row = re.match(r"\| `([a-z_0-9]+)` \| (.+?) \| ", line)
                if row is None:
                    break
                fields[row.group(1)] = row.group(2)
        out[head.group(1)] = (head.group(2), fields)
    return out


def test_docs_describe_exactly_the_table() -> None:
    """Every message type and field of the schema is in docs/protocol.md with its direction, frame kind,
    field kind and optionality, and the docs describe no type or field that the schema lacks."""
    docs = documented_messages(DOCS.read_text())
    assert set(docs) == set(SCHEMA), (sorted(set(SCHEMA) - set(docs)), sorted(set(docs) - set(SCHEMA)))
    for spec in SCHEMA.values():
        first, fields = docs[spec.type]
        where = f"docs/protocol.md, `{spec.type}`"
        frame = "BINARY" if spec.binary else "JSON"
        assert first.startswith(f"{_DIRECTIONS[spec.direction]}, {frame}"), f"{where}: starts {first!r}"
        expected = {name: _kind_text(kind) for name, kind in spec.required.items()}
        expected.update({name: _kind_text(kind) + ", optional" for name, kind in spec.optional.items()})
        assert fields == expected, f"{where}: the field table differs from the schema"
        assert ("no fields" in first) == (not expected), f"{where}: 'no fields' iff the type has none"


def test_docs_list_the_agent_settings_and_their_defaults() -> None:
    text = DOCS.read_text().split("#### Agent settings", 1)[1].split("\n### ", 1)[0]
    rows = dict(re.findall(r"^\| `([a-z_]+)` \| ([0-9.]+) \|", text, flags=re.MULTILINE))
    assert rows == {name: repr(value) for name, value in AgentSettings().to_dict().items()}
