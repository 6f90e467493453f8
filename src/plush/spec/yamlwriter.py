"""The YAML writer: a model printed in the YAML form that :mod:`plush.spec.yamlreader` reads.

Invariant: ``parse_yaml(write_yaml(m)) == m`` for every valid model ``m`` (``where`` and ``source`` take
no part in equality). The writer picks the compact spelling wherever it reads back to the same model (a
one-process block as ``run:``, ``hosts: 2``, ``cpu_mhz: ">=1000"``, a package as its path) and the long
one otherwise. Scalars go through PyYAML's emitter, which quotes whatever would otherwise read back as
something else (``'yes'``, ``'010'``, ``'null'``); argv lists print on one line unless an argument spans
several lines, and multi-line strings print as ``|`` blocks where YAML allows it.

Controller-only (PyYAML); never shipped to agents.
"""

from __future__ import annotations

from typing import Any, Dict, List

import yaml

from plush.spec.model import (
    AttrRequirement,
    BarrierBlock,
    Block,
    Component,
    ExitPolicy,
    LivenessMonitor,
    Package,
    Process,
    ProcessBlock,
    Project,
    Software,
)

__all__ = ["write_yaml"]

#: the name a workflow task gets when the YAML does not give one
DEFAULT_TASK = "task"


class _Flow(list):  # type: ignore[type-arg]
    """A list printed on one line (``[python3, -c, '...']``) when none of its items spans lines."""


_BASE: Any = getattr(yaml, "CSafeDumper", yaml.SafeDumper)  # libyaml's emitter when PyYAML has it


class _FlowMap(dict):  # type: ignore[type-arg]
    """A small mapping of scalars printed on one line (``{code: 3, action: ignore}``)."""


class _Dumper(_BASE):  # type: ignore[misc]
    """SafeDumper with readable multi-line strings and one-line argv lists."""


def _represent_str(dumper: Any, data: str) -> yaml.Node:
    style = "|" if "\n" in data else None
    node: yaml.Node = dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)
    return node


def _represent_flow(dumper: Any, data: _Flow) -> yaml.Node:
    one_line = not any(isinstance(x, str) and "\n" in x for x in data)
    node: yaml.Node = dumper.represent_sequence("tag:yaml.org,2002:seq", list(data), flow_style=one_line)
    return node


def _represent_flow_map(dumper: Any, data: _FlowMap) -> yaml.Node:
    node: yaml.Node = dumper.represent_mapping("tag:yaml.org,2002:map", dict(data), flow_style=True)
    return node


_Dumper.add_representer(str, _represent_str)
_Dumper.add_representer(_Flow, _represent_flow)
_Dumper.add_representer(_FlowMap, _represent_flow_map)


def _base(path: str) -> str:
    return path.rstrip("/").rsplit("/", 1)[-1]


def _num(x: float) -> str:
    """A float as short text that ``float()`` reads back exactly: ``1000`` rather than ``1000.0``."""
    if x.is_integer() and abs(x) < 1e15:
        return str(int(x))
    return repr(x)


def _package(p: Package) -> Any:
    if p.name == _base(p.path) and p.type == "local" and p.dest is None:
        return p.path
    out: Dict[str, Any] = {}
    if p.name != _base(p.path):
        out["name"] = p.name
    out["path"] = p.path
    if p.type != "local":
        out["type"] = p.type
    if p.dest is not None:
        out["dest"] = p.dest
    return out


def _software(s: Software) -> Dict[str, Any]:
    out: Dict[str, Any] = {"type": s.type}
    if s.packages:
        out["packages"] = [_package(p) for p in s.packages]
    return out


def _constraint(r: AttrRequirement) -> Any:
    """The compact text of a requirement where there is one, else ``{min, max, equals}``."""
    if r.equals is None and r.min is not None and r.max is None:
        return ">=" + _num(r.min)
    if r.equals is None and r.min is None and r.max is not None:
        return "<=" + _num(r.max)
    if r.equals is None and r.min is not None and r.max is not None:
        return _num(r.min) + ".." + _num(r.max)
    if r.equals is not None and r.min is None and r.max is None:
        return "==" + r.equals
    return _limits(r)


def _limits(r: AttrRequirement) -> Dict[str, Any]:
    out: Dict[str, Any] = {}
    if r.min is not None:
        out["min"] = r.min
    if r.max is not None:
        out["max"] = r.max
    if r.equals is not None:
        out["equals"] = r.equals
    return out


def _component(c: Component) -> Dict[str, Any]:
    n = c.num_hosts
    out: Dict[str, Any] = {"hosts": n.min if n.min == n.max else "{}..{}".format(n.min, n.max)}
    attrs = [r.attr for r in c.requirements]
    if len(set(attrs)) == len(attrs):
        if c.requirements:
            out["require"] = {r.attr: _constraint(r) for r in c.requirements}
    else:  # an attribute named twice needs the list form
        out["require"] = [{"attr": r.attr, **_limits(r)} for r in c.requirements]
    if c.max_load is not None:
        out["max_load"] = c.max_load
    if c.min_free_mem is not None:
        out["min_free_mem"] = c.min_free_mem
    if c.software:
        out["software"] = _Flow(c.software)
    if c.resources:
        out["resources"] = [r.type if r.group is None else {"type": r.type, "group": r.group} for r in c.resources]
    return out


def _process_fields(p: Process) -> Dict[str, Any]:
    out: Dict[str, Any] = {"run": _Flow([p.path, *p.args])}
    if p.env:
        keys = [k for k, _ in p.env]
        if len(set(keys)) == len(keys):
            out["env"] = dict(p.env)
        else:  # a name given twice needs the list form
            out["env"] = [k + "=" + v for k, v in p.env]
    for key in ("cwd", "stdin", "stdout", "stderr"):
        value = getattr(p, key)
        if value is not None:
            out[key] = value
    return out


def _exit_policy(e: ExitPolicy) -> _FlowMap:
    code: Any = e.match
    if e.match == "*":
        code = "any"
    elif e.match.isdigit() and str(int(e.match)) == e.match:
        code = int(e.match)
    out = _FlowMap(code=code, action=e.action)
    if e.max_restarts is not None:
        out["max_restarts"] = e.max_restarts
    return out


def _liveness(m: LivenessMonitor) -> Dict[str, Any]:
    out: Dict[str, Any] = {"run": _Flow([m.path, *m.args])}
    if m.interval != 1.0:
        out["interval"] = m.interval
    return out


def _process_block(b: ProcessBlock, *, default: str = "") -> Dict[str, Any]:
    out: Dict[str, Any] = {}
    if b.name != default:
        out["process"] = b.name
    if b.predecessors:
        out["after"] = _Flow(b.predecessors)
    if len(b.processes) == 1 and b.processes[0].name == b.name:
        out.update(_process_fields(b.processes[0]))
    else:
        out["processes"] = [{"name": p.name, **_process_fields(p)} for p in b.processes]
    if b.exit_policies:
        out["exit"] = [_exit_policy(e) for e in b.exit_policies]
    if b.liveness is not None:
        out["liveness"] = _liveness(b.liveness)
    if b.outputs:
        out["outputs"] = list(b.outputs)
    return out


def _barrier(b: BarrierBlock) -> Dict[str, Any]:
    out: Dict[str, Any] = {b.kind: b.name}
    if b.predecessors:
        out["after"] = _Flow(b.predecessors)
    for key in ("max", "threshold", "timeout", "capacity", "until"):
        value = getattr(b, key)
        if value is not None:
            out[key] = value
    if b.adaptive:
        out["adaptive"] = True
    return out


def _block(b: Block) -> Dict[str, Any]:
    if isinstance(b, ProcessBlock):
        return _process_block(b)
    if isinstance(b, BarrierBlock):
        return _barrier(b)
    out: Dict[str, Any] = {"workflow": b.name}
    if b.predecessors:
        out["after"] = _Flow(b.predecessors)
    out["data"] = list(b.data_files)
    out["task"] = _process_block(b.task, default=DEFAULT_TASK)
    return out


def _document(project: Project) -> Dict[str, Any]:
    doc: Dict[str, Any] = {"project": project.name}
    if project.software:
        doc["software"] = {s.name: _software(s) for s in project.software}
    if project.components:
        doc["components"] = {c.name: _component(c) for c in project.components}
    app = project.application
    a: Dict[str, Any] = {}
    if app.name != project.name:
        a["name"] = app.name
    if app.service:
        a["service"] = True
    if app.reconnect_interval is not None:
        a["reconnect_interval"] = app.reconnect_interval
    if app.on_failure is not None:
        a["on_failure"] = app.on_failure
    execution: Dict[str, Any] = {}
    for cb in app.component_blocks:
        entry: Dict[str, Any] = {}
        if cb.component != cb.name:
            entry["component"] = cb.component
        blocks: List[Dict[str, Any]] = [_block(b) for b in cb.blocks]
        entry["blocks"] = blocks
        execution[cb.name] = entry
    a["execution"] = execution
    doc["application"] = a
    return doc


def write_yaml(project: Project) -> str:
    """``project`` as a YAML spec; :func:`plush.spec.yamlreader.parse_yaml` reads it back equal."""
    text: str = yaml.dump(
        _document(project),
        Dumper=_Dumper,
        sort_keys=False,
        allow_unicode=True,
        default_flow_style=False,
        width=100,
    )
    return text
