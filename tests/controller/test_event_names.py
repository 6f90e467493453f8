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
from plush.controller import catalogue
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


# --- the catalogue (issue 8): one module names every event, with its columns and payload ---------------------


def _emit_name_nodes() -> list[tuple[str, ast.expr]]:
    from event_emitters import CONTROLLER

    out = []
    for path in sorted(CONTROLLER.glob("*.py")):
        if path.name == "events.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "emit"
                and node.args
            ):
                out.append((f"{path.name}:{node.lineno}", node.args[0]))
    return out


def test_every_emitter_names_its_event_by_a_catalogue_constant() -> None:
    def ok(node: ast.expr) -> bool:
        if isinstance(node, ast.Name):
            return node.id in catalogue.__all__
        if isinstance(node, ast.IfExp):
            return ok(node.body) and ok(node.orelse)
        return isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "block_event"

    found = _emit_name_nodes()
    assert len(found) > 30
    assert [f"{where}: {ast.unparse(node)}" for where, node in found if not ok(node)] == []


def test_every_emitted_event_and_field_is_in_the_catalogue_and_every_entry_is_emitted() -> None:
    table = emitted()
    undeclared = []
    for name, fields in table.items():
        kind = catalogue.CATALOGUE.get(name)
        assert kind is not None, f"{name} is emitted but not in plush.controller.catalogue"
        if kind.fields is not None and fields is not None:
            undeclared += [f"{name}:{f}" for f in sorted(fields - set(kind.fields))]
    assert undeclared == []
    assert sorted(set(catalogue.CATALOGUE) - set(table)) == []


def test_the_documented_table_is_the_catalogue() -> None:
    rows = re.findall(r"^\| `([a-z_]+\.[a-z_]+)` \|([^|]*)\|([^\n]*)\|$", DOCS.read_text(), flags=re.MULTILINE)
    documented = {name: (about.strip(), data) for name, about, data in rows}
    assert set(documented) == set(catalogue.CATALOGUE)
    for name, kind in catalogue.CATALOGUE.items():
        about, data = documented[name]
        assert tuple(a.strip() for a in about.split(",") if a.strip()) == kind.about, name
        for field in kind.fields or {}:
            assert f"`{field}`" in data, f"docs/operations.md: {name} does not describe its field {field}"


def test_process_output_is_on_the_bus_only_and_lossy_for_a_slow_subscriber() -> None:
    from plush.controller.events import LOSSY_BACKLOG, EventBus

    assert not catalogue.journaled(catalogue.PROCESS_OUTPUT) and catalogue.lossy(catalogue.PROCESS_OUTPUT)
    bus = EventBus()
    sunk: list[str] = []
    bus.add_sink(lambda event: sunk.append(event.name))  # a log writer: lossless
    slow = bus.subscribe()
    others = bus.subscribe(names=lambda name: name != catalogue.PROCESS_OUTPUT)
    assert bus.wants(catalogue.PROCESS_OUTPUT)
    for i in range(LOSSY_BACKLOG + 10):
        bus.emit(catalogue.PROCESS_OUTPUT, host="h", data={"stream": "stdout", "data": b"%d\n" % i})
    bus.emit(catalogue.HOST_FAILED, host="h", data={"reason": "r", "component": "c"})
    got = slow.drain_nowait()
    assert len(got) == LOSSY_BACKLOG + 1 and slow.missed == 10  # the newest output was dropped, no other event
    assert got[-1].name == catalogue.HOST_FAILED
    assert [e.name for e in others.drain_nowait()] == [catalogue.HOST_FAILED]
    assert len(sunk) == LOSSY_BACKLOG + 11
    assert [e.name for e in bus.history()] == [catalogue.HOST_FAILED]  # output is not kept
    slow.close()
    assert not bus.wants(catalogue.PROCESS_OUTPUT)  # nobody takes output: emitters skip it
