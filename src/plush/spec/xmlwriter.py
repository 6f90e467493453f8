"""The Plush XML writer: a :class:`Project` as a pretty ``<plush>`` document.

Invariant: ``parse_xml(write_xml(m)) == m`` for every valid model ``m`` (``where`` and ``source`` take no
part in equality). To keep it, the writer prints every field the model holds and nothing the reader
would default differently: numbers with ``repr`` (exact for floats), single-value texts as written (the
reader strips them, so a valid model holds them stripped), ``<arg>`` and ``<env>`` values with every
character escaped that XML would otherwise normalise (``\\r``; tabs and newlines in attributes). It
always writes ``<plush>`` and ``<application_block>``. Controller-side, stdlib only.
"""

from __future__ import annotations

from typing import List, Optional, Tuple

from plush.spec.model import (
    Application,
    BarrierBlock,
    Block,
    Component,
    LivenessMonitor,
    Process,
    ProcessBlock,
    Project,
    Software,
    WorkflowBlock,
)

__all__ = ["write_xml"]

_INDENT = "  "


def _text(value: str) -> str:
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\r", "&#13;")


def _attr(value: str) -> str:
    return _text(value).replace('"', "&quot;").replace("\n", "&#10;").replace("\t", "&#9;")


def _num(value: object) -> str:
    return repr(value)


class _Out:
    def __init__(self) -> None:
        self.lines: List[str] = ['<?xml version="1.0" encoding="utf-8"?>']
        self.depth = 0

    def _open(self, tag: str, attrs: List[Tuple[str, Optional[str]]]) -> str:
        parts = [tag] + ['{}="{}"'.format(k, _attr(v)) for k, v in attrs if v is not None]
        return " ".join(parts)

    def empty(self, tag: str, *attrs: Tuple[str, Optional[str]]) -> None:
        self.lines.append(_INDENT * self.depth + "<" + self._open(tag, list(attrs)) + "/>")

    def leaf(self, tag: str, text: str, *attrs: Tuple[str, Optional[str]]) -> None:
        head = self._open(tag, list(attrs))
        self.lines.append("{}<{}>{}</{}>".format(_INDENT * self.depth, head, _text(text), tag))

    def start(self, tag: str, *attrs: Tuple[str, Optional[str]]) -> None:
        self.lines.append(_INDENT * self.depth + "<" + self._open(tag, list(attrs)) + ">")
        self.depth += 1

    def end(self, tag: str) -> None:
        self.depth -= 1
        self.lines.append(_INDENT * self.depth + "</" + tag + ">")


def _opt(value: Optional[object]) -> Optional[str]:
    return None if value is None else _num(value)


def _software(out: _Out, sw: Software) -> None:
    out.start("software", ("name", sw.name), ("type", sw.type))
    for pkg in sw.packages:
        out.start("package", ("name", pkg.name), ("type", pkg.type))
        out.leaf("path", pkg.path)
        if pkg.dest is not None:
            out.leaf("dest", pkg.dest)
        out.end("package")
    out.end("software")


def _component(out: _Out, c: Component) -> None:
    out.start("component", ("name", c.name))
    out.start("rspec")
    if c.num_hosts.min == c.num_hosts.max:
        out.leaf("num_hosts", str(c.num_hosts.min))
    else:
        out.empty("num_hosts", ("min", str(c.num_hosts.min)), ("max", str(c.num_hosts.max)))
    for r in c.requirements:
        out.empty("require", ("attr", r.attr), ("min", _opt(r.min)), ("max", _opt(r.max)), ("equals", r.equals))
    if c.max_load is not None:
        out.leaf("max_load", _num(c.max_load))
    if c.min_free_mem is not None:
        out.leaf("min_free_mem", str(c.min_free_mem))
    out.end("rspec")
    for name in c.software:
        out.empty("software", ("name", name))
    if c.resources:
        out.start("resources")
        for res in c.resources:
            out.empty("resource", ("type", res.type), ("group", res.group))
        out.end("resources")
    out.end("component")


def _command(out: _Out, path: str, args: Tuple[str, ...]) -> None:
    out.leaf("path", path)
    if args:
        out.start("cmdline")
        for arg in args:
            out.leaf("arg", arg)
        out.end("cmdline")


def _predecessors(out: _Out, names: Tuple[str, ...]) -> None:
    for name in names:
        out.empty("predecessor", ("name", name))


def _process(out: _Out, p: Process) -> None:
    out.start("process", ("name", p.name))
    _command(out, p.path, p.args)
    if p.cwd is not None:
        out.leaf("cwd", p.cwd)
    for key, value in p.env:
        out.leaf("env", value, ("name", key))
    for tag in ("stdin", "stdout", "stderr"):
        value = getattr(p, tag)
        if value is not None:
            out.leaf(tag, value)
    out.end("process")


def _liveness(out: _Out, lm: LivenessMonitor) -> None:
    out.start("liveness_monitor", ("interval", _num(lm.interval)))
    _command(out, lm.path, lm.args)
    out.end("liveness_monitor")


def _process_block(out: _Out, b: ProcessBlock) -> None:
    out.start("process_block", ("name", b.name))
    _predecessors(out, b.predecessors)
    for p in b.processes:
        _process(out, p)
    for pol in b.exit_policies:
        out.empty("exit_policy", ("code", pol.match), ("action", pol.action), ("max_restarts", _opt(pol.max_restarts)))
    if b.liveness is not None:
        _liveness(out, b.liveness)
    for pattern in b.outputs:
        out.leaf("output", pattern)
    out.end("process_block")


def _barrier_block(out: _Out, b: BarrierBlock) -> None:
    attrs = [
        ("name", b.name),
        ("type", None if b.kind == "barrier" else b.kind),
        ("max", _opt(b.max)),
        ("threshold", _opt(b.threshold)),
        ("timeout", _opt(b.timeout)),
        ("adaptive", "1" if b.adaptive else None),
        ("capacity", _opt(b.capacity)),
        ("until", b.until),
    ]
    if b.predecessors:
        out.start("barrier_block", *attrs)
        _predecessors(out, b.predecessors)
        out.end("barrier_block")
    else:
        out.empty("barrier_block", *attrs)


def _workflow_block(out: _Out, b: WorkflowBlock) -> None:
    out.start("workflow_block", ("name", b.name))
    _predecessors(out, b.predecessors)
    for item in b.data_files:
        out.leaf("data_file", item)
    _process_block(out, b.task)
    out.end("workflow_block")


def _block(out: _Out, b: Block) -> None:
    if isinstance(b, ProcessBlock):
        _process_block(out, b)
    elif isinstance(b, BarrierBlock):
        _barrier_block(out, b)
    else:
        _workflow_block(out, b)


def _application(out: _Out, app: Application) -> None:
    out.start(
        "application_block",
        ("name", app.name),
        ("service", "1" if app.service else None),
        ("reconnect_interval", _opt(app.reconnect_interval)),
        ("on_failure", app.on_failure),
    )
    out.start("execution")
    for cb in app.component_blocks:
        out.start("component_block", ("name", cb.name))
        out.empty("component", ("name", cb.component))
        for b in cb.blocks:
            _block(out, b)
        out.end("component_block")
    out.end("execution")
    out.end("application_block")


def write_xml(project: Project) -> str:
    """``project`` as a Plush XML document (text ending with a newline)."""
    out = _Out()
    out.start("plush")
    out.start("project", ("name", project.name))
    for sw in project.software:
        _software(out, sw)
    for c in project.components:
        _component(out, c)
    _application(out, project.application)
    out.end("project")
    out.end("plush")
    return "\n".join(out.lines) + "\n"
