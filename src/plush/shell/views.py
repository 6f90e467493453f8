"""The terminal's ``info`` views: rich tables of what :meth:`plush.Controller.info` answers, summaries first.

Role: pure presentation. Each function takes the plain data of one ``info`` topic (a list or dict, as the
HTTP API and ``plush info --json`` show it) and returns rich renderables; nothing here reads the controller
or changes anything. Readable at 500 hosts: ``info nodes`` starts with the counts per state and per
component, and lists hosts one per row only when they are few (:data:`DETAIL_ROWS`) or selected (the failed
ones, or a host set such as ``node[1-20]``); ``info control`` is one row per barrier (counts, not host
lists).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from plush.resources.hostset import expand, fold

__all__ = ["DETAIL_ROWS", "FAILED_STATES", "app_view", "control_view", "info_view", "mesh_view", "nodes_view"]

#: ``info nodes`` lists every host only up to this many; beyond, a selection does
DETAIL_ROWS = 40

#: the host lifecycle states ``info nodes --failed`` selects
FAILED_STATES = frozenset({"failed", "lost", "recovering", "replaced"})

#: lifecycle states in the order a host goes through them (others follow, sorted)
STATE_ORDER = (
    "pooled",
    "connecting",
    "joined",
    "matched",
    "preparing",
    "installing",
    "ready",
    "running",
    "resetting",
    "done",
    "stopping",
    "lost",
    "recovering",
    "failed",
    "replaced",
    "gone",
)


def _state_key(state: str) -> tuple[int, str]:
    return (STATE_ORDER.index(state) if state in STATE_ORDER else len(STATE_ORDER), state)


def _style(state: str) -> str:
    if state in FAILED_STATES:
        return "red"
    if state in ("done", "joined", "ready"):
        return "green"
    if state in ("running", "installing", "preparing", "connecting"):
        return "yellow"
    return ""


def select_nodes(
    nodes: list[dict[str, Any]], *, failed: bool = False, hostset: str | None = None
) -> list[dict[str, Any]]:
    """The nodes ``info nodes`` details: the failed ones (``--failed``) and/or those of ``hostset``."""
    chosen = nodes
    if failed:
        chosen = [n for n in chosen if n["state"] in FAILED_STATES]
    if hostset:
        names = set(expand(hostset))
        chosen = [n for n in chosen if n["name"] in names]
    return chosen


def nodes_view(nodes: list[dict[str, Any]], *, failed: bool = False, hostset: str | None = None) -> RenderableType:
    """Counts per state (and per component, with the hosts folded), then the selected hosts' rows."""
    states = Counter(n["state"] for n in nodes)
    summary = Table(title=f"{len(nodes)} hosts", title_justify="left", show_edge=False)
    summary.add_column("STATE")
    summary.add_column("HOSTS", justify="right")
    summary.add_column("NAMES", overflow="fold")
    for state in sorted(states, key=_state_key):
        names = fold(n["name"] for n in nodes if n["state"] == state)
        summary.add_row(Text(state, style=_style(state)), str(states[state]), names)
    parts: list[RenderableType] = [summary]
    components = Counter(n["component"] for n in nodes if n.get("component"))
    if components:
        comp = Table(show_edge=False)
        comp.add_column("COMPONENT")
        comp.add_column("HOSTS", justify="right")
        comp.add_column("STATES")
        for name in sorted(components):
            mine = Counter(n["state"] for n in nodes if n.get("component") == name)
            comp.add_row(name, str(components[name]), _counts(mine))
        parts.append(comp)
    selected = failed or bool(hostset)
    chosen = select_nodes(nodes, failed=failed, hostset=hostset)
    if selected or len(nodes) <= DETAIL_ROWS:
        parts.append(_node_rows(chosen))
    else:
        parts.append(Text(f"(details: info nodes --failed, or info nodes 'HOSTSET' such as '{_example(nodes)}')"))
    return Group(*parts)


def _example(nodes: list[dict[str, Any]]) -> str:
    return fold(n["name"] for n in nodes[:20])


def _counts(counts: Counter[str]) -> str:
    return ", ".join(f"{state} {counts[state]}" for state in sorted(counts, key=_state_key))


def _node_rows(nodes: Iterable[dict[str, Any]]) -> Table:
    rows = list(nodes)
    table = Table(title=f"{len(rows)} selected", title_justify="left", show_edge=False)
    for column in ("NAME", "STATE", "AGENT", "COMPONENT", "ADDRESS", "GROUP"):
        table.add_column(column)
    for n in rows:
        table.add_row(
            n["name"],
            Text(n["state"], style=_style(n["state"])),
            _cell(n.get("agent_pid")),
            _cell(n.get("component")),
            _cell(n.get("address")),
            _cell(n.get("group")),
        )
    return table


def _cell(value: Any) -> str:
    return "-" if value is None else str(value)


def _pairs(title: str, pairs: Iterable[tuple[str, Any]]) -> Table:
    table = Table(title=title, title_justify="left", show_header=False, show_edge=False)
    table.add_column("KEY", style="bold")
    table.add_column("VALUE", overflow="fold")
    for key, value in pairs:
        table.add_row(key, _cell(value))
    return table


def mesh_view(mesh: dict[str, Any]) -> RenderableType:
    states = mesh.get("states") or {}
    listener = mesh.get("listener")
    pairs = [
        ("id", mesh.get("id")),
        ("connected", mesh.get("connected")),
        ("members", mesh.get("members")),
        ("states", _counts(Counter(states)) or "-"),
        ("agents alive", mesh.get("agents_alive")),
        ("listener", f"{listener['host']}:{listener['port']}" if listener else None),
        ("workspace", mesh.get("workspace")),
    ]
    return _pairs("mesh", pairs)


def control_view(control: dict[str, Any]) -> RenderableType:
    """The controller (application, runs) and one row per barrier: arrived/expected, waiting, late, released."""
    pairs = [
        ("application", control.get("application")),
        ("spec", control.get("spec")),
        ("runs", control.get("runs")),
        ("run", control.get("run")),
        ("running", "yes" if control.get("running") else "no"),
        ("settings", "plush config show"),
    ]
    parts: list[RenderableType] = [_pairs("control", pairs)]
    barriers = control.get("barriers") or []
    if barriers:
        table = Table(title=f"{len(barriers)} barriers", title_justify="left", show_edge=False)
        for column in ("BARRIER", "KIND", "ARRIVED", "WAITING", "LATE", "FAILED", "RELEASED"):
            table.add_column(column, justify="left" if column in ("BARRIER", "KIND", "RELEASED") else "right")
        for b in barriers:
            released = Text(f"released ({b['reason']})", style="green") if b["released"] else Text("held", "yellow")
            table.add_row(
                b["name"],
                b["kind"],
                f"{b['arrived']}/{b['expected']}",
                str(b["waiting"]),
                str(b["late"]),
                str(b["failed"]),
                released,
            )
        parts.append(table)
    else:
        parts.append(Text("no barriers (none in the application, or no run yet)"))
    return Group(*parts)


def app_view(app: dict[str, Any]) -> RenderableType:
    """The loaded application's components and its run: outcome, host states, hosts per component."""
    if not app.get("loaded"):
        return Text("no application is loaded (load FILE)")
    run = app.get("run")
    table = Table(title=f"{app['name']} ({app['spec']})", title_justify="left", show_edge=False)
    for column in ("COMPONENT", "MIN", "MAX", "LIVE HOSTS", "SOFTWARE"):
        table.add_column(column)
    for name, comp in app["components"].items():
        live = run["hosts"].get(name, []) if run else []
        hosts = f"{len(live)}: {fold(live)}" if live else "-"
        table.add_row(name, str(comp["min"]), _cell(comp["max"]), hosts, ", ".join(comp["software"]) or "-")
    parts: list[RenderableType] = [table]
    if run:
        outcome = run.get("outcome")
        status = "running" if not run["finished"] else ("completed" if outcome and outcome["ok"] else "ended")
        if outcome and not outcome["ok"]:
            status = f"{'stopped' if outcome['stopped'] else 'failed'}: {outcome['reason']}"
        pairs = [
            ("run", run["id"]),
            ("status", status),
            ("host states", _counts(Counter(run.get("states") or {})) or "-"),
            ("app restarts", run.get("app_restarts")),
            ("results", run["results"]),
        ]
        parts.append(_pairs("run", pairs))
    return Group(*parts)


def info_view(what: str, data: Any, *, failed: bool = False, hostset: str | None = None) -> RenderableType:
    if what == "nodes":
        return nodes_view(data, failed=failed, hostset=hostset)
    if what == "mesh":
        return mesh_view(data)
    if what == "control":
        return control_view(data)
    return app_view(data)
