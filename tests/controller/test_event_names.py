"""The failure report is tied to what the controller really emits (issue 7, item 11).

The report reads events by the names in :mod:`plush.controller.events` and declares what it reads
(:data:`plush.controller.report.READS`). These tests read the emitters' source (``bus.emit`` calls, see
``event_emitters``) and fail when an event or a data field the report reads is no longer emitted (renamed),
when the report reads a name or field it does not declare, or when the journal's documented table
(docs/operations.md) misses an emitted event.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from event_emitters import emitted, fields_of

import plush.controller.report as report_module
from plush.controller import events as events_module
from plush.controller.report import READS

DOCS = Path(__file__).resolve().parents[2] / "docs" / "operations.md"


def missing(reads: dict[str, tuple[str, ...]], table: dict[str, set[str] | None]) -> list[str]:
    """What ``reads`` wants that ``table`` does not emit: ``name`` or ``name.field``."""
    out = []
    for name, fields in reads.items():
        try:
            got = fields_of(name, table)
        except KeyError:
            out.append(name)
            continue
        if got is not None:
            out += [f"{name}:{field}" for field in fields if field not in got]
    return out


def test_every_event_and_field_the_report_reads_is_emitted() -> None:
    assert missing(READS, emitted()) == []


def test_a_renamed_event_or_field_is_caught() -> None:
    table = emitted()
    renamed = dict(table)
    renamed["host.replaced"] = renamed.pop("host.rematched")
    assert missing(READS, renamed) == ["host.rematched"]
    renamed = dict(table)
    renamed["process.exited"] = (table["process.exited"] or set()) - {"code"} | {"exit_code"}
    assert missing(READS, renamed) == ["process.exited:code"]


def _compared_constants(tree: ast.AST) -> list[str]:
    """String constants that ``tree`` compares something with (``ev.name == "x"``, ``ev.name in ("x", ...)``)."""
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            for side in [node.left, *node.comparators]:
                for c in ast.walk(side):
                    if isinstance(c, ast.Constant) and isinstance(c.value, str):
                        out.append(c.value)
    return out


def test_the_report_reads_no_event_name_literal_and_only_declared_fields() -> None:
    tree = ast.parse(Path(report_module.__file__).read_text())
    names = {v for k, v in vars(events_module).items() if k.isupper() and isinstance(v, str)} | set(emitted())
    literals = [c for c in _compared_constants(tree) if c in names]
    assert literals == [], "use the constants of plush.controller.events"
    declared = {field for fields in READS.values() for field in fields}
    read: set[str] = set()
    for node in ast.walk(tree):
        # d.get("x"), ev.data.get("x"), ev.data["x"], "x" in ev.data
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "get"
            and node.args
            and isinstance(node.args[0], ast.Constant)
        ):
            receiver = node.func.value
            if (isinstance(receiver, ast.Name) and receiver.id == "d") or (
                isinstance(receiver, ast.Attribute) and receiver.attr == "data"
            ):
                read.add(node.args[0].value)
        if (
            isinstance(node, ast.Subscript)
            and isinstance(node.value, ast.Attribute)
            and node.value.attr == "data"
            and isinstance(node.slice, ast.Constant)
        ):
            read.add(node.slice.value)
    assert read, "the walker found no field read: has report.py changed shape?"
    assert read <= declared, f"declare in READS: {sorted(read - declared)}"


def test_every_emitted_event_is_in_the_documented_table() -> None:
    text = DOCS.read_text()
    documented = set(re.findall(r"^\| `([a-z_]+\.[a-z_]+)` \|", text, flags=re.MULTILINE))
    for name in emitted():
        assert any(re.fullmatch(name.replace(".", r"\.").replace("*", "[a-z_]+"), d) for d in documented), (
            f"{name} is not in the event table of docs/operations.md"
        )
