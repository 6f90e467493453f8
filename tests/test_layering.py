"""Keeps the architecture's import rules (DESIGN.md, 'Rooms').

- The pure rooms import no asyncio and no third-party package.
- ``plush.agent`` and everything it imports use only the standard library and parse as Python 3.8.
- Imports flow downward only: front ends -> controller -> lower rooms -> protocol/spec -> errors.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PKG = SRC / "plush"

PURE_ROOMS = ("spec", "protocol", "barriers")
#: pure modules of rooms that also hold I/O (resources: providers read files and run commands)
PURE_MODULES = (
    "plush.resources.host",
    "plush.resources.requirements",
    "plush.resources.matcher",
    "plush.resources.hostset",
    "plush.controller.gather",
    "plush.controller.copyresult",
    "plush.controller.plan",
    "plush.controller.hostsource",
    "plush.controller.catalogue",
    "plush.controller.lifecycle",
    "plush.controller.lifecycle_commands",
    "plush.controller.relayplan",
    "plush.controller.timeline",
    "plush.controller.hostspans",
    "plush.cluster.plan",
    "plush.cluster.hostfiles",
)
#: what a pure module must not import: the event loop, processes, files and sockets, clocks, threads
IO_MODULES = {"asyncio", "os", "subprocess", "socket", "pathlib", "shutil", "io", "tempfile", "time"}
IO_MODULES |= {"select", "selectors", "signal", "threading", "multiprocessing", "sqlite3"}
#: rooms whose every module ships to agents
SHIPPED = ("agent", "protocol", "processes", "hostmon")
#: single modules that ship too (the model, not the readers)
SHIPPED_MODULES = ("plush.errors", "plush.spec.model", "plush.spec.paths", "plush.spec")
#: modules of the spec room that stay on the controller (they use defusedxml / PyYAML)
CONTROLLER_ONLY_SPEC = {"xmlreader", "yamlreader", "xmlwriter", "loader", "validate", "yamlwriter", "load"}

# A room may import only rooms listed for it (and itself). Top-level modules errors/config are for all.
ALLOWED: dict[str, set[str]] = {
    "spec": set(),
    "protocol": {"spec"},
    "barriers": {"spec"},
    "processes": {"spec", "protocol"},
    "hostmon": set(),
    "agent": {"spec", "protocol", "processes", "hostmon"},
    "resources": {"spec"},
    "files": {"spec", "protocol"},
    "fabric": {"protocol", "spec"},
    "launch": {"protocol", "spec", "agent", "processes", "hostmon", "fabric", "resources"},
    "controller": {
        "spec",
        "protocol",
        "barriers",
        "processes",
        "hostmon",
        "files",
        "fabric",
        "launch",
        "resources",
        # create resources: the emulated cluster makes a run's <resource type="netns"> hosts
        "cluster",
    },
    # the shell hosts the control server (plush serve, plush run SPEC) and is its client (plush info, ...)
    # ... and gives the HTTP API its web UI (plush serve --http)
    "shell": {"controller", "spec", "resources", "files", "protocol", "barriers", "api", "cluster", "web"},
    # the emulated cluster: namespaces, sshds and the files the SSH launcher reads (nothing of the rest)
    "cluster": set(),
    # the HTTP API reads directory entries (resources) and serves TLS with the controller's CA (fabric)
    "api": {"controller", "spec", "resources", "fabric"},
    "web": {"api", "controller", "spec"},
    # the HTTP API's client runs where the controller is not: it imports none of it
    "client": set(),
}


def module_name(path: Path) -> str:
    rel = path.relative_to(SRC).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def all_modules() -> dict[str, Path]:
    return {module_name(p): p for p in PKG.rglob("*.py")}


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    mod = module_name(path)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = mod.split(".")
                if path.name != "__init__.py":
                    base = base[:-1]
                base = base[: len(base) - (node.level - 1)]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            found.add(name)
            for alias in node.names:
                found.add(f"{name}.{alias.name}")
    return found


def room_of(mod: str) -> str | None:
    parts = mod.split(".")
    return parts[1] if len(parts) > 2 or (len(parts) == 2 and (PKG / parts[1]).is_dir()) else None


def is_stdlib(name: str) -> bool:
    top = name.split(".", maxsplit=1)[0]
    return top in sys.stdlib_module_names or top == "__future__"


MODULES = all_modules()


def shipped_modules() -> list[str]:
    """Every module the agent zipapp needs: the shipped rooms and the closure of their plush imports."""
    todo = [m for m in MODULES if room_of(m) in SHIPPED] + list(SHIPPED_MODULES)
    seen: set[str] = set()
    while todo:
        mod = todo.pop()
        if mod in seen or mod not in MODULES:
            continue
        seen.add(mod)
        for imp in imports_of(MODULES[mod]):
            if imp.startswith("plush"):
                # "from plush.x import y" gives both plush.x and plush.x.y; keep what is a module
                todo.append(imp)
                parent = imp.rsplit(".", 1)[0]
                todo.append(parent)
    return sorted(seen)


def _pure_modules() -> list[str]:
    """Modules of the pure rooms, less the spec readers (they run on the controller: defusedxml, PyYAML)."""
    return sorted(
        m
        for m in MODULES
        if (room_of(m) in PURE_ROOMS or m in PURE_MODULES)
        and not (m.startswith("plush.spec.") and m.rsplit(".", maxsplit=1)[-1] in CONTROLLER_ONLY_SPEC)
    )


@pytest.mark.parametrize("mod", _pure_modules())
def test_pure_rooms_import_no_io_framework_or_third_party(mod: str) -> None:
    bad = sorted(
        i
        for i in imports_of(MODULES[mod])
        if i.split(".")[0] == "asyncio" or not (is_stdlib(i) or i.startswith("plush"))
    )
    assert not bad, f"{mod} is pure but imports {bad}"


@pytest.mark.parametrize("mod", PURE_MODULES)
def test_pure_modules_do_no_io(mod: str) -> None:
    assert mod in MODULES
    bad = sorted(i for i in imports_of(MODULES[mod]) if i.split(".")[0] in IO_MODULES)
    assert not bad, f"{mod} is pure (no I/O) but imports {bad}"
    used = {i if i in MODULES else i.rsplit(".", 1)[0] for i in imports_of(MODULES[mod]) if i.startswith("plush.")}
    impure = sorted(used - set(_pure_modules()) - {"plush.errors"})
    assert not impure, f"{mod} is pure but imports {impure}"


def test_shipped_modules_exist() -> None:
    shipped = shipped_modules()
    assert "plush.spec.model" in shipped
    assert "plush.errors" in shipped


@pytest.mark.parametrize("mod", shipped_modules())
def test_shipped_code_is_stdlib_only_and_python38(mod: str) -> None:
    path = MODULES[mod]
    ast.parse(path.read_text(), filename=str(path), feature_version=(3, 8))
    third_party = sorted(i for i in imports_of(path) if not (is_stdlib(i) or i.startswith("plush")))
    assert not third_party, f"{mod} ships to agents but imports {third_party}"
    if room_of(mod) == "spec":
        leaf = mod.rsplit(".", maxsplit=1)[-1]
        assert leaf not in CONTROLLER_ONLY_SPEC, f"{mod} must not ship"


@pytest.mark.parametrize("mod", sorted(m for m in MODULES if room_of(m) in ALLOWED))
def test_imports_flow_downward(mod: str) -> None:
    room = room_of(mod)
    assert room is not None
    allowed = ALLOWED[room] | {room}
    for imp in imports_of(MODULES[mod]):
        if not imp.startswith("plush."):
            continue
        target = imp.split(".")[1]
        if (PKG / target).is_dir():
            assert target in allowed, f"{mod} (room {room}) imports {imp}: rooms it may use are {sorted(allowed)}"


#: top-level modules that every room may import, and the only plush modules each of them may import
TOP_LEVEL: dict[str, set[str]] = {
    "plush.errors": set(),
    # the controller's settings take the agents' defaults from the one place that defines them
    "plush.config": {"plush.errors", "plush.protocol.agentsettings"},
}


@pytest.mark.parametrize("mod", sorted(TOP_LEVEL))
def test_top_level_modules_import_only_what_they_declare(mod: str) -> None:
    modules = {i for i in imports_of(MODULES[mod]) if i.startswith("plush.") and i in MODULES}
    assert modules <= TOP_LEVEL[mod], f"{mod} imports {sorted(modules - TOP_LEVEL[mod])}"


def test_agent_settings_import_nothing_of_plush_but_errors() -> None:
    """plush.config imports it: nothing of the protocol's other modules (no cycle, whoever imports first)."""
    used = {i for i in imports_of(MODULES["plush.protocol.agentsettings"]) if i.startswith("plush")}
    assert {i for i in used if i in MODULES} <= {"plush.errors"}
