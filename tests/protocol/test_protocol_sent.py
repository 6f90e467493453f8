"""Every message the code sends uses only what the schema declares, and every declared type is sent.

A static scan of every message construction in src/ (``Message.of("t", ...)``, ``Message.binary("t", ...)``,
``Message("t", {...})`` and the agent runtime's ``self._send("t", ...)``): the type is in the table, every
field named is declared for it (with its kind, when the value is a literal), a construction that names all
its fields names every required one, binary types are built with a payload, and every type of the table is
built somewhere (a type documented but never sent -- ``kill`` and ``restart_process`` were -- fails).

The same table is enforced at run time at each side's send point (``Connection.send``, the two outboxes);
:func:`test_the_send_points_refuse_an_undeclared_field` checks that.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

from plush.errors import ProtocolError
from plush.protocol.messages import SCHEMA, Message, _kind_ok
from plush.protocol.secret import Secret

SRC = Path(__file__).resolve().parents[2] / "src" / "plush"


@dataclass
class Construction:
    where: str
    mtype: str
    fields: dict[str, ast.expr]
    complete: bool  # False when some fields come from a ``**splat`` or a non-literal dict
    binary: bool


def _construction(node: ast.Call, where: str) -> Construction | None:
    if not node.args or not isinstance(node.args[0], ast.Constant) or not isinstance(node.args[0].value, str):
        return None
    mtype = node.args[0].value
    func = node.func
    owner = func.value.id if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) else None
    keywords = {k.arg: k.value for k in node.keywords if k.arg is not None}
    splat = any(k.arg is None for k in node.keywords)
    if isinstance(func, ast.Attribute) and owner == "Message" and func.attr in ("of", "binary"):
        return Construction(where, mtype, keywords, not splat, func.attr == "binary")
    if isinstance(func, ast.Attribute) and owner == "self" and func.attr == "_send":  # the agent runtime's helper
        return Construction(where, mtype, keywords, not splat, False)
    if isinstance(func, ast.Name) and func.id == "Message":
        if len(node.args) == 1:
            return Construction(where, mtype, {}, True, len(node.args) > 2)
        given = node.args[1]
        if isinstance(given, ast.Dict) and all(isinstance(k, ast.Constant) for k in given.keys):
            fields = {k.value: v for k, v in zip(given.keys, given.values, strict=True) if isinstance(k, ast.Constant)}
            return Construction(where, mtype, fields, True, len(node.args) > 2)
        return Construction(where, mtype, {}, False, len(node.args) > 2)
    return None


def constructions() -> list[Construction]:
    found = []
    for path in sorted(SRC.rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                c = _construction(node, f"{path.relative_to(SRC.parent)}:{node.lineno}")
                if c is not None:
                    found.append(c)
    return found


CONSTRUCTIONS = constructions()


def test_the_scan_finds_the_constructions() -> None:
    kinds = {(c.mtype, c.complete) for c in CONSTRUCTIONS}
    assert ("proc.exited", False) in kinds  # the runtime's optional action/rule/liveness
    assert ("prepare", True) in kinds and ("output", True) in kinds and ("heartbeat", True) in kinds
    assert len(CONSTRUCTIONS) > 50


@pytest.mark.parametrize("c", CONSTRUCTIONS, ids=lambda c: f"{c.where}:{c.mtype}")
def test_every_construction_uses_only_declared_fields(c: Construction) -> None:
    spec = SCHEMA.get(c.mtype)
    assert spec is not None, f"{c.where}: message type {c.mtype!r} is not in the schema"
    for name, value in c.fields.items():
        kind = spec.kind_of(name)
        assert kind is not None, f"{c.where}: {c.mtype!r} has no field {name!r} in the schema"
        if isinstance(value, ast.Constant):
            assert _kind_ok(kind, value.value), f"{c.where}: {c.mtype} field {name}={value.value!r} is not {kind}"
    if c.complete:
        missing = sorted(set(spec.required) - set(c.fields))
        assert not missing, f"{c.where}: {c.mtype!r} is built without its required field(s) {missing}"
    assert c.binary == spec.binary, f"{c.where}: {c.mtype} binary={spec.binary}"


def test_every_declared_type_is_sent_somewhere() -> None:
    built = {c.mtype for c in CONSTRUCTIONS}
    assert sorted(set(SCHEMA) - built) == [], "declared in the schema (and docs) but never sent"


def test_the_send_points_refuse_an_undeclared_field() -> None:
    """At run time, each side's send point checks the message against the same table."""
    from plush.agent.outbox import SpoolOutbox
    from plush.controller.sessions import HostSession
    from plush.protocol.connection import AGENT, Connection

    extra = {"path": "/a", "instance": 1, "code": 0, "signal": None, "exit_code": 0}
    with pytest.raises(ProtocolError, match="undeclared field 'exit_code'"):
        SpoolOutbox().add(Message("proc.exited", dict(extra)))
    with pytest.raises(ProtocolError, match="undeclared field 'grace_period'"):
        HostSession("h").number(Message.of("work.none", path="/a", grace_period=1))
    conn = Connection(AGENT, Secret("t"), 0.0)
    with pytest.raises(ProtocolError, match="undeclared field 'cookie'"):
        conn.send(
            Message.of("join", host="h", pid=1, hostname="x", python="3", workdir="/", agent_version="0", cookie=1), 0.0
        )
