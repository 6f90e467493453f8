"""Semantic validation of an application model, whatever reader built it (Plush XML, YAML, code).

:func:`validate` returns every problem it finds, never raises for a bad model, and never stops at the
first problem. Each :class:`~plush.errors.SpecProblem` carries the location of the object at fault (its
``where``: file, line, column), the block path (``/app/cb/block``) when a block is concerned, and a hint
when there is an obvious fix. Problems come in file order (objects without a location keep the order of
the walk, after those with one).

Checks: names (``NAME_RE``) and duplicates among siblings, components, software and packages;
predecessors naming unknown or non-sibling blocks, and cycles; component blocks naming undefined
components, components naming undefined software; host counts; barrier and semaphore attributes, and one
release rule per barrier name across component blocks; exit policies; workflows; service-only
attributes; liveness intervals; resource and package types. The rules over the whole model (numbers in
range, no cycle of barrier waits across component blocks) live in :mod:`~plush.spec.modelwide`. Every
path that names a place on a host (package ``dest``, process ``cwd``/``stdin``/``stdout``/``stderr``,
``outputs`` patterns, the base name a workflow data file arrives under) must be a plain relative path
inside the host's working directory (:func:`~plush.spec.paths.host_path_problem`). Controller-side, pure
(no I/O).

Size: about 440 lines, one rule per function over one walk of the model; the whole-model rules that need
no walk already live in :mod:`plush.spec.modelwide`.
"""

from __future__ import annotations

import math
import posixpath
from typing import Dict, List, Optional, Sequence, Set, Tuple, Union, cast

from plush.errors import SpecProblem
from plush.spec import dag, modelwide
from plush.spec.model import (
    ACTIONS,
    BARRIER_KINDS,
    MAX_INTEGER,
    PACKAGE_TYPES,
    RESOURCE_TYPES,
    SOFTWARE_TYPES,
    BarrierBlock,
    Block,
    Component,
    ComponentBlock,
    ProcessBlock,
    Project,
    Software,
    Where,
    WorkflowBlock,
)
from plush.spec.paths import BlockPath, check_name, host_path_problem

__all__ = ["EXIT_MATCHES", "MAX_INTEGER", "describe_rule", "validate"]

#: exit_policy ``code`` values besides decimal exit codes
EXIT_MATCHES = frozenset({"*", "nonzero", "signal"})

_PATH_HINT = "write a path relative to the host's working directory, without '..', e.g. 'logs/out.txt'"

_NAME_HINT = "names use letters, digits and _ . + @ : - (no spaces or slashes) and do not start with . or -"


def describe_rule(b: BarrierBlock) -> str:
    """A barrier's release rule in words, e.g. ``max=2 threshold=0.9`` or ``semaphore capacity=4``."""
    if b.kind == "semaphore":
        return "semaphore capacity={}".format(b.capacity)
    parts = []
    if b.max is not None:
        parts.append("max={}".format(b.max))
    if b.threshold is not None:
        parts.append("threshold={:g}".format(b.threshold))
    if b.timeout is not None:
        parts.append("timeout={:g}s".format(b.timeout))
    if b.adaptive:
        parts.append("adaptive")
    return " ".join(parts) or "all hosts"


def _positive(x: Optional[float]) -> bool:
    return x is not None and not math.isnan(x) and x > 0


class _Checker:
    def __init__(self, project: Project) -> None:
        self.project = project
        self.problems: List[SpecProblem] = []
        # every block name anywhere -> the component blocks that hold it, for "not a sibling" messages
        self.everywhere: Dict[str, str] = {}
        # ids of model objects holding a number out of range: their other numeric rules are skipped
        self.bad_numbers: Set[int] = set()
        self.cycles = False  # a predecessor cycle was reported (then barrier cycles are not looked for)

    def add(
        self,
        where: Optional[Where],
        message: str,
        *,
        block: Optional[BlockPath] = None,
        hint: Optional[str] = None,
    ) -> None:
        w = where or Where()
        self.problems.append(
            SpecProblem(
                message=message,
                file=w.file or self.project.source,
                line=w.line,
                column=w.column,
                block=str(block) if block is not None else None,
                hint=hint,
            )
        )

    def name(self, obj_where: Optional[Where], what: str, name: str, block: Optional[BlockPath] = None) -> bool:
        if check_name(name):
            return True
        self.add(obj_where, "invalid {} name {!r}".format(what, name), block=block, hint=_NAME_HINT)
        return False

    def duplicates(
        self, items: Sequence[Union[Software, Component, ComponentBlock, Block]], what: str, parent: Optional[BlockPath]
    ) -> None:
        seen: Dict[str, Optional[Where]] = {}
        for item in items:
            if item.name in seen:
                first = seen[item.name]
                at = " (first at line {})".format(first.line) if first and first.line else ""
                path = parent / item.name if parent is not None and check_name(item.name) else parent
                self.add(item.where, "duplicate {} name {!r}{}".format(what, item.name, at), block=path)
            else:
                seen[item.name] = item.where

    def host_path(self, where: Optional[Where], what: str, text: str, block: Optional[BlockPath], hint: str) -> None:
        why = host_path_problem(text)
        if why is not None:
            self.add(
                where,
                "{} {} is not a plain relative path: {}".format(what, _cut(text), why),
                block=block,
                hint=hint,
            )

    def found(self, finding: Optional[modelwide.Finding]) -> None:
        if finding is not None:
            self.add(finding.where, finding.message, block=finding.block, hint=finding.hint)

    # --- top level -------------------------------------------------------------------------------

    def run(self) -> List[SpecProblem]:
        p = self.project
        self.name(p.where, "project", p.name)
        findings, self.bad_numbers = modelwide.number_findings(p)
        for finding in findings:
            self.found(finding)
        for sw in p.software:
            self.software(sw)
        self.duplicates(p.software, "software", None)
        for c in p.components:
            self.component(c)
        self.duplicates(p.components, "component", None)
        self.application()
        return self.problems

    def software(self, sw: Software) -> None:
        self.name(sw.where, "software", sw.name)
        if sw.type not in SOFTWARE_TYPES:
            self.add(sw.where, "unknown software type {!r}".format(sw.type), hint=_one_of(SOFTWARE_TYPES))
        seen: Dict[str, bool] = {}
        for pkg in sw.packages:
            if pkg.type not in PACKAGE_TYPES:
                self.add(pkg.where, "unknown package type {!r}".format(pkg.type), hint=_one_of(PACKAGE_TYPES))
            if not pkg.path.strip():
                self.add(pkg.where, "package {!r} has an empty path".format(pkg.name))
            if pkg.name in seen:
                self.add(pkg.where, "duplicate package name {!r} in software {!r}".format(pkg.name, sw.name))
            seen[pkg.name] = True
            what = "package {!r} of software {!r}".format(pkg.name, sw.name)
            if pkg.dest is not None:
                self.host_path(pkg.where, what + ": dest", pkg.dest, None, _PATH_HINT)
            elif pkg.path.strip():  # the agent names the file after the path's last segment
                base = posixpath.basename(pkg.path.rstrip("/"))
                self.host_path(
                    pkg.where,
                    what + ": the base name of its path,",
                    base,
                    None,
                    "give the package a dest (a file name in the host's working directory)",
                )

    def component(self, c: Component) -> None:
        self.name(c.where, "component", c.name)
        n = c.num_hosts
        if id(n) not in self.bad_numbers:  # (a number out of range was reported; it may not even print)
            if n.min < 0:
                self.add(c.where, "component {!r}: num_hosts min is {} (must be >= 0)".format(c.name, n.min))
            if n.min > n.max:
                self.add(c.where, "component {!r}: num_hosts min {} > max {}".format(c.name, n.min, n.max))
        for r in c.requirements:
            if id(r) in self.bad_numbers:
                continue
            if r.min is not None and r.max is not None and r.min > r.max:
                self.add(r.where, "requirement on {!r}: min {:g} > max {:g}".format(r.attr, r.min, r.max))
        if c.max_load is not None and math.isfinite(c.max_load) and not c.max_load >= 0:
            self.add(c.where, "component {!r}: max_load must be >= 0".format(c.name))
        if c.min_free_mem is not None and -MAX_INTEGER <= c.min_free_mem < 0:
            self.add(c.where, "component {!r}: min_free_mem must be >= 0".format(c.name))
        defined = {s.name for s in self.project.software}
        for name in c.software:
            if name not in defined:
                self.add(
                    c.where,
                    "component {!r} names undefined software {!r}".format(c.name, name),
                    hint=_suggest(name, defined, "software"),
                )
        for r2 in c.resources:
            if r2.type not in RESOURCE_TYPES:
                self.add(r2.where, "unknown resource type {!r}".format(r2.type), hint=_one_of(RESOURCE_TYPES))

    def application(self) -> None:
        app = self.project.application
        if not self.name(app.where, "application", app.name):
            return  # every block path below would be meaningless
        if app.on_failure is not None and app.on_failure not in ACTIONS:
            self.add(app.where, "unknown on_failure action {!r}".format(app.on_failure), hint=_one_of(ACTIONS))
        if app.reconnect_interval is not None:
            if not app.service:
                self.add(
                    app.where,
                    "reconnect_interval applies to services only",
                    hint='add service="1" or remove reconnect_interval',
                )
            elif not _positive(app.reconnect_interval):
                self.add(app.where, "reconnect_interval must be > 0")
        root = app.path
        for cb in app.component_blocks:
            for b in cb.blocks:
                self.everywhere.setdefault(b.name, cb.name)
        components = {c.name for c in self.project.components}
        for cb in app.component_blocks:
            ok = self.name(cb.where, "component block", cb.name)
            path = root / cb.name if ok else root
            if cb.component not in components:
                self.add(
                    cb.where,
                    "component block {!r} names undefined component {!r}".format(cb.name, cb.component),
                    block=path,
                    hint=_suggest(cb.component, components, "component"),
                )
            self.blocks(cb, path)
        self.duplicates(app.component_blocks, "component block", root)
        self.barriers()

    # --- blocks ----------------------------------------------------------------------------------

    def blocks(self, cb: ComponentBlock, cb_path: BlockPath) -> None:
        siblings = {b.name for b in cb.blocks}
        for b in cb.blocks:
            ok = self.name(b.where, "block", b.name, cb_path)
            path = cb_path / b.name if ok else cb_path
            for pred in b.predecessors:
                if pred in siblings:
                    continue
                if pred in self.everywhere:
                    self.add(
                        b.where,
                        "predecessor {!r} is not a sibling: it is in component block {!r}".format(
                            pred, self.everywhere[pred]
                        ),
                        block=path,
                        hint="predecessors order blocks of one component block; use a barrier across components",
                    )
                else:
                    self.add(
                        b.where,
                        "predecessor {!r} names no block".format(pred),
                        block=path,
                        hint=_suggest(pred, siblings, "block"),
                    )
            if isinstance(b, ProcessBlock):
                self.process_block(b, path)
            elif isinstance(b, BarrierBlock):
                self.barrier_block(b, path, cb)
            elif isinstance(b, WorkflowBlock):
                self.workflow_block(b, path)
        self.duplicates(cb.blocks, "block", cb_path)
        cycle = dag.find_cycle(cb.blocks)
        if cycle is not None:
            self.cycles = True
            first = cb.block(cycle[0])
            self.add(
                first.where,
                "predecessor cycle: {} (each waits for the next)".format(" → ".join(cycle)),
                block=cb_path / first.name if check_name(first.name) else cb_path,
                hint="remove one of these predecessor edges",
            )

    def process_block(self, b: ProcessBlock, path: BlockPath) -> None:
        if not b.processes:
            self.add(b.where, "process block has no <process>", block=path)
        for proc in b.processes:
            if not proc.path.strip():
                self.add(proc.where, "process {!r} has an empty path".format(proc.name), block=path)
            for key, _ in proc.env:
                if not key or "=" in key:
                    self.add(proc.where, "bad environment variable name {!r}".format(key), block=path)
            for field in ("cwd", "stdin", "stdout", "stderr"):
                value = getattr(proc, field)
                if value is not None:
                    self.host_path(proc.where, "process {!r}: {}".format(proc.name, field), value, path, _PATH_HINT)
        for pattern in b.outputs:
            self.host_path(
                b.where,
                "outputs pattern",
                pattern,
                path,
                "outputs are glob patterns relative to the host's working directory, e.g. 'logs/*.txt'",
            )
        for pol in b.exit_policies:
            if pol.action not in ACTIONS:
                self.add(pol.where, "unknown exit action {!r}".format(pol.action), block=path, hint=_one_of(ACTIONS))
            if pol.match not in EXIT_MATCHES and not _exit_code(pol.match):
                self.add(
                    pol.where,
                    "bad exit_policy code {}".format(_cut(pol.match)),
                    block=path,
                    hint="use an exit code 0-255, nonzero, signal or *",
                )
            if pol.max_restarts is not None and pol.max_restarts < 0:
                self.add(pol.where, "max_restarts must be >= 0", block=path)
        if b.liveness is not None and not _positive(b.liveness.interval):
            self.add(b.liveness.where, "liveness_monitor interval must be > 0", block=path)

    def barrier_block(self, b: BarrierBlock, path: BlockPath, cb: ComponentBlock) -> None:
        if b.kind not in BARRIER_KINDS:
            self.add(b.where, "unknown barrier type {!r}".format(b.kind), block=path, hint=_one_of(BARRIER_KINDS))
            return
        if b.kind == "semaphore":
            if b.capacity is None or b.capacity < 1:
                self.add(b.where, "semaphore needs a capacity >= 1", block=path, hint='add capacity="N"')
            for attr in ("max", "threshold", "timeout"):
                if getattr(b, attr) is not None:
                    self.add(b.where, "{} does not apply to a semaphore".format(attr), block=path)
            if b.adaptive:
                self.add(b.where, "adaptive does not apply to a semaphore", block=path)
            if b.until is not None and b.until not in dag.dependents(cb.blocks, b.name):
                self.add(
                    b.where,
                    "semaphore until={!r} is not a block that follows it".format(b.until),
                    block=path,
                    hint="until names a sibling that (transitively) has {!r} as predecessor".format(b.name),
                )
            return
        if id(b) in self.bad_numbers:
            return  # a number out of range was reported
        if b.threshold is not None and not 0 < b.threshold <= 1:
            self.add(b.where, "barrier threshold {} is outside (0, 1]".format(b.threshold), block=path)
        if b.max is not None and b.max < 1:
            self.add(b.where, "barrier max must be >= 1", block=path)
        if b.timeout is not None and not _positive(b.timeout):
            self.add(b.where, "barrier timeout must be > 0", block=path)
        if b.capacity is not None or b.until is not None:
            self.add(b.where, "capacity and until apply to semaphores only", block=path, hint='add type="semaphore"')

    def workflow_block(self, b: WorkflowBlock, path: BlockPath) -> None:
        task = cast(Optional[ProcessBlock], b.task)
        if task is None:
            self.add(b.where, "workflow block has no task (one <process_block>)", block=path)
            return
        ok = self.name(task.where, "block", task.name, path)
        task_path = path / task.name if ok else path
        if task.predecessors:
            self.add(task.where, "a workflow task has no siblings, so no predecessors", block=task_path)
        self.process_block(task, task_path)
        for item in b.data_files:  # read on the controller, relative to the spec; received under its base name
            why = host_path_problem(posixpath.basename(item))
            if why is not None:
                self.add(
                    b.where,
                    "workflow data file {}: its base name is not a plain file name: {}".format(_cut(item), why),
                    block=path,
                    hint="an item arrives in the host's working directory under its base name: name a file",
                )

    def barriers(self) -> None:
        """One barrier name, one release rule, across all component blocks."""
        first: Dict[str, Tuple[BarrierBlock, BlockPath]] = {}
        root = self.project.application.path
        for cb in self.project.application.component_blocks:
            for b in cb.blocks:
                if not isinstance(b, BarrierBlock) or not check_name(cb.name) or not check_name(b.name):
                    continue
                path = root / cb.name / b.name
                if b.name not in first:
                    first[b.name] = (b, path)
                    continue
                other, other_path = first[b.name]
                if id(b) in self.bad_numbers or id(other) in self.bad_numbers:
                    continue
                if other.release_rule() != b.release_rule():
                    at = other.where.line if other.where and other.where.line else None
                    self.add(
                        b.where,
                        "barrier {!r} is used with rule '{}' here but '{}' at {}{}".format(
                            b.name,
                            describe_rule(b),
                            describe_rule(other),
                            other_path,
                            " (line {})".format(at) if at else "",
                        ),
                        block=path,
                        hint="a barrier name is one barrier: give every use the same attributes",
                    )
        if not self.cycles:
            self.found(modelwide.barrier_cycle_finding(self.project))


def _cut(text: str, limit: int = 100) -> str:
    """A value for a message: quoted, and cut to ``limit`` characters."""
    return repr(text) if len(text) <= limit else repr(text[:limit]) + "…"


def _exit_code(match: str) -> bool:
    """True for an exit code 0-255 in ASCII digits."""
    digits = match.lstrip("0") or "0"
    return match.isascii() and match.isdigit() and len(digits) <= 3 and int(digits) <= 255


def _one_of(options: frozenset[str]) -> str:
    return "use one of " + ", ".join(sorted(options))


def _suggest(name: str, options: set[str], what: str) -> Optional[str]:
    import difflib

    close = difflib.get_close_matches(name, sorted(options), n=1)
    if close:
        return "did you mean {} {!r}?".format(what, close[0])
    if options:
        return "defined: " + ", ".join(sorted(options))
    return None


def validate(project: Project) -> List[SpecProblem]:
    """Every semantic problem of ``project``, in file order; an empty list when it is valid."""
    problems = _Checker(project).run()
    big = float("inf")
    return sorted(
        problems,
        key=lambda p: (p.line is None, p.line if p.line is not None else big, p.column or 0),
    )
