"""Hypothesis strategies that generate VALID application models (:class:`plush.spec.model.Project`).

Every generated project passes :func:`plush.spec.validate.validate` with no problem: names match
``NAME_RE`` and are unique among siblings, predecessors name earlier siblings (so the DAG is acyclic),
component blocks name defined components, components name defined software, barriers that share a name
share one release rule and come in one order in every component block (so no barriers wait for each other
in a cycle), semaphores have a capacity and an ``until`` that depends on them, numbers are finite and in
range, paths on hosts (``dest``, ``cwd``, redirections, ``outputs``, a package's or data file's base name)
are plain relative paths. Free text (paths, arguments, environment values) is XML-safe printable text, so
readers and writers of any form can round-trip it. ``where`` is left ``None`` (it takes no part in
equality). Import ``projects()`` from here for round-trip tests of any spec form.
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from plush.spec.model import (
    ACTIONS,
    RESOURCE_TYPES,
    Application,
    AttrRequirement,
    BarrierBlock,
    Block,
    Component,
    ComponentBlock,
    ExitPolicy,
    HostCount,
    LivenessMonitor,
    Package,
    Process,
    ProcessBlock,
    Project,
    ResourceRef,
    Software,
    WorkflowBlock,
)
from plush.spec.paths import host_path_problem

__all__ = ["host_paths", "names", "process_blocks", "projects", "texts"]

#: a valid name (a subset of NAME_RE, short so that collisions and sharing happen)
names = st.from_regex(r"[a-z][a-z0-9_]{0,5}", fullmatch=True)

_SAFE = st.characters(
    codec="utf-8",
    exclude_categories=("Cc", "Cs", "Co", "Cn"),
)
#: free text with no leading/trailing white space (paths, file names, values kept as written)
texts = st.text(_SAFE, min_size=1, max_size=12).map(str.strip).filter(bool)
#: a plain relative path inside a host's working directory (free text segments joined by /)
host_paths = (
    st.lists(texts.filter(lambda t: "/" not in t and not t.startswith("~")), min_size=1, max_size=3)
    .map("/".join)
    .filter(lambda t: host_path_problem(t) is None)
)
#: a command-line argument: any printable text, spaces and empty string included
args = st.text(_SAFE, max_size=8)
#: finite, non-negative numbers that print and parse back exactly
numbers = st.floats(min_value=0, max_value=1e6, allow_nan=False, allow_infinity=False)
positive = st.floats(min_value=0.001, max_value=1e6, allow_nan=False, allow_infinity=False)
env_names = st.from_regex(r"[A-Z_][A-Z0-9_]{0,6}", fullmatch=True)


def _unique(strategy: st.SearchStrategy[Any], *, min_size: int = 0, max_size: int = 3) -> Any:
    return st.lists(strategy, min_size=min_size, max_size=max_size, unique_by=lambda x: x.name)


packages = st.builds(
    Package,
    name=names,
    path=host_paths,
    type=st.sampled_from(["web", "local"]),
    dest=st.none() | host_paths,
)
software_bundles = st.builds(
    Software,
    name=names,
    type=st.sampled_from(["tar", "none"]),
    packages=_unique(packages).map(tuple),
)


@st.composite
def host_counts(draw: st.DrawFn) -> HostCount:
    low = draw(st.integers(min_value=0, max_value=50))
    return HostCount(min=low, max=draw(st.integers(min_value=low, max_value=100)))


@st.composite
def requirements(draw: st.DrawFn) -> AttrRequirement:
    low = draw(st.none() | numbers)
    high = draw(st.none() | numbers.map(lambda x: x + (low or 0)))
    return AttrRequirement(attr=draw(names), min=low, max=high, equals=draw(st.none() | texts))


def components(software: tuple[str, ...]) -> st.SearchStrategy[Component]:
    soft = st.lists(st.sampled_from(software), unique=True, max_size=2).map(tuple) if software else st.just(())
    return st.builds(
        Component,
        name=names,
        num_hosts=host_counts(),
        requirements=st.lists(requirements(), max_size=2).map(tuple),
        max_load=st.none() | numbers,
        min_free_mem=st.none() | st.integers(min_value=0, max_value=1 << 20),
        software=soft,
        resources=st.lists(
            st.builds(ResourceRef, type=st.sampled_from(sorted(RESOURCE_TYPES)), group=st.none() | names),
            max_size=2,
        ).map(tuple),
    )


processes = st.builds(
    Process,
    name=names,
    path=texts,
    args=st.lists(args, max_size=3).map(tuple),
    cwd=st.none() | host_paths,
    env=st.lists(st.tuples(env_names, st.text(_SAFE, max_size=6)), max_size=2).map(tuple),
    stdin=st.none() | host_paths,
    stdout=st.none() | host_paths,
    stderr=st.none() | host_paths,
)
exit_policies = st.builds(
    ExitPolicy,
    match=st.sampled_from(["*", "nonzero", "signal"]) | st.integers(min_value=1, max_value=255).map(str),
    action=st.sampled_from(sorted(ACTIONS)),
    max_restarts=st.none() | st.integers(min_value=0, max_value=10),
)
liveness = st.builds(
    LivenessMonitor,
    path=texts,
    args=st.lists(args, max_size=2).map(tuple),
    interval=positive,
)


def process_blocks(name: st.SearchStrategy[str] = names) -> st.SearchStrategy[ProcessBlock]:
    """A process block with no predecessors (the caller adds them)."""
    return st.builds(
        ProcessBlock,
        name=name,
        processes=st.lists(processes, min_size=1, max_size=2).map(tuple),
        exit_policies=st.lists(exit_policies, max_size=2).map(tuple),
        liveness=st.none() | liveness,
        outputs=st.lists(host_paths, max_size=2).map(tuple),
    )


workflow_blocks = st.builds(
    WorkflowBlock,
    name=names,
    task=process_blocks(),
    data_files=st.lists(host_paths, max_size=3).map(tuple),
)


@st.composite
def barrier_rules(draw: st.DrawFn) -> BarrierBlock:
    """A barrier or semaphore with its release rule; name, predecessors and ``until`` come later."""
    if draw(st.booleans()):
        return BarrierBlock(name="x", kind="semaphore", capacity=draw(st.integers(min_value=1, max_value=20)))
    return BarrierBlock(
        name="x",
        max=draw(st.none() | st.integers(min_value=1, max_value=100)),
        threshold=draw(st.none() | st.floats(min_value=0.01, max_value=1.0)),
        timeout=draw(st.none() | positive),
        adaptive=draw(st.booleans()),
    )


def _dependents(blocks: list[Block], name: str) -> list[str]:
    """Names of blocks that transitively have ``name`` as a predecessor."""
    found: set[str] = set()
    todo = [name]
    while todo:
        current = todo.pop()
        for b in blocks:
            if current in b.predecessors and b.name not in found:
                found.add(b.name)
                todo.append(b.name)
    return [b.name for b in blocks if b.name in found]


@st.composite
def component_blocks(draw: st.DrawFn, component_names: tuple[str, ...], barriers: dict[str, BarrierBlock]) -> Any:
    kinds = draw(st.lists(st.sampled_from(["process", "process", "barrier", "workflow"]), max_size=5))
    blocks: list[Block] = []
    used: set[str] = set()
    ranked = sorted(barriers)  # barriers come in this order in every component block
    for kind in kinds:
        earlier = [b.name for b in blocks]
        preds = tuple(draw(st.lists(st.sampled_from(earlier), unique=True, max_size=2))) if earlier else ()
        if kind == "barrier" and barriers:
            last = max((ranked.index(u) for u in used if u in barriers), default=-1)
            if last + 1 == len(ranked):
                continue
            name = draw(st.sampled_from(ranked[last + 1 :]))
            rule = barriers[name]
            block: Block = BarrierBlock(
                name=name,
                predecessors=preds,
                kind=rule.kind,
                max=rule.max,
                threshold=rule.threshold,
                timeout=rule.timeout,
                adaptive=rule.adaptive,
                capacity=rule.capacity,
            )
        elif kind == "workflow":
            wf = draw(workflow_blocks)
            block = WorkflowBlock(name=wf.name, task=wf.task, data_files=wf.data_files, predecessors=preds)
        else:
            pb = draw(process_blocks())
            block = ProcessBlock(
                name=pb.name,
                processes=pb.processes,
                predecessors=preds,
                exit_policies=pb.exit_policies,
                liveness=pb.liveness,
                outputs=pb.outputs,
            )
        if block.name in used or (block.name in barriers and not isinstance(block, BarrierBlock)):
            continue
        used.add(block.name)
        blocks.append(block)
    # semaphores: pick an ``until`` among the blocks that follow them
    final: list[Block] = []
    for b in blocks:
        if isinstance(b, BarrierBlock) and b.kind == "semaphore":
            after = _dependents(blocks, b.name)
            until = draw(st.none() | st.sampled_from(after)) if after else None
            b = BarrierBlock(name=b.name, predecessors=b.predecessors, kind=b.kind, capacity=b.capacity, until=until)
        final.append(b)
    order = draw(st.permutations(final))
    return ComponentBlock(name=draw(names), component=draw(st.sampled_from(component_names)), blocks=tuple(order))


@st.composite
def projects(draw: st.DrawFn) -> Project:
    """A valid project: see the module docstring for what 'valid' covers."""
    software = tuple(draw(_unique(software_bundles)))
    soft_names = tuple(s.name for s in software)
    comps = tuple(draw(_unique(components(soft_names), min_size=1)))
    comp_names = tuple(c.name for c in comps)
    barrier_names = draw(st.lists(names, unique=True, max_size=2))
    barriers = {n: draw(barrier_rules()) for n in barrier_names}
    cbs = tuple(draw(_unique(component_blocks(comp_names, barriers), max_size=3)))
    service = draw(st.booleans())
    app = Application(
        name=draw(names),
        component_blocks=cbs,
        service=service,
        reconnect_interval=draw(st.none() | positive) if service else None,
        on_failure=draw(st.none() | st.sampled_from(sorted(ACTIONS))),
    )
    return Project(name=draw(names), application=app, software=software, components=comps)
