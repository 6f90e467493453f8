"""The application model: one set of frozen dataclasses for everything a spec says.

Readers (Plush XML, YAML) build it, validation checks it, the writer prints it back, and agents receive it
over the wire (``to_dict`` / ``from_dict``), so the runtime never re-parses XML. Invariants:

- every object is immutable; collections are tuples, so models compare and hash by value;
- ``where`` (the source location) takes no part in equality, so ``parse(write(m)) == m``;
- numbers are already typed (seconds as float, megabytes as int); optional limits are ``None``; a valid
  model's floats are finite and its whole numbers at most :data:`MAX_INTEGER` in size;
- enumerated fields hold the lower-case names of PLUSH-FORMAT.md (see the ``*_KINDS`` / ``ACTIONS`` sets).

This module ships to agents: standard library only, Python 3.8 syntax (hence no ``slots``/``kw_only``;
construct models with keywords all the same).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Dict, Iterator, Optional, Tuple, Union

from plush.spec.paths import BlockPath

__all__ = [
    "ACTIONS",
    "BARRIER_KINDS",
    "MAX_INTEGER",
    "PACKAGE_TYPES",
    "RESOURCE_TYPES",
    "SOFTWARE_TYPES",
    "Application",
    "AttrRequirement",
    "BarrierBlock",
    "Block",
    "Component",
    "ComponentBlock",
    "ExitPolicy",
    "HostCount",
    "LivenessMonitor",
    "Package",
    "Process",
    "ProcessBlock",
    "Project",
    "ResourceRef",
    "Software",
    "Where",
    "WorkflowBlock",
    "from_dict",
    "to_dict",
]

SOFTWARE_TYPES = frozenset({"tar", "none"})
PACKAGE_TYPES = frozenset({"web", "local"})
RESOURCE_TYPES = frozenset({"ssh", "local", "netns", "command", "planetlab"})
ACTIONS = frozenset({"ignore", "restart_process", "restart_application", "abort"})
BARRIER_KINDS = frozenset({"barrier", "semaphore"})
#: the largest whole number a spec may hold (2**53 - 1: what any JSON reader keeps exactly)
MAX_INTEGER = 2**53 - 1


def _where() -> Any:
    return field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class Where:
    """Where something was written: file, line and column (1-based; column where known)."""

    file: Optional[str] = None
    line: Optional[int] = None
    column: Optional[int] = None


# --- software ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Package:
    """One file of a software bundle: fetched from ``path`` (URL or spec-relative path) to ``dest``."""

    name: str
    path: str
    type: str = "local"  # "web" | "local"
    dest: Optional[str] = None  # file name in the host's working directory; default: base name of path
    where: Optional[Where] = _where()


@dataclass(frozen=True)
class Software:
    """A software bundle installed on every host of the components that name it."""

    name: str
    type: str = "none"  # "tar": unpack after copying; "none": copy only
    packages: Tuple[Package, ...] = ()
    where: Optional[Where] = _where()


# --- resources --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HostCount:
    """How many hosts a component wants: at least ``min``, at most ``max``."""

    min: int
    max: int


@dataclass(frozen=True)
class AttrRequirement:
    """A static host attribute requirement (``<require attr="cpu_mhz" min="1000"/>``)."""

    attr: str
    min: Optional[float] = None
    max: Optional[float] = None
    equals: Optional[str] = None
    where: Optional[Where] = _where()


@dataclass(frozen=True)
class ResourceRef:
    """Where a component's hosts come from: a provider type and an optional group."""

    type: str
    group: Optional[str] = None
    where: Optional[Where] = _where()


@dataclass(frozen=True)
class Component:
    """A group of hosts with their requirements, software and resources."""

    name: str
    num_hosts: HostCount = HostCount(min=1, max=1)
    requirements: Tuple[AttrRequirement, ...] = ()
    max_load: Optional[float] = None  # live load average limit
    min_free_mem: Optional[int] = None  # live free memory floor, MB
    software: Tuple[str, ...] = ()  # names of Software bundles
    resources: Tuple[ResourceRef, ...] = ()
    where: Optional[Where] = _where()


# --- execution --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExitPolicy:
    """What to do when a process exits: ``match`` is a code ("3"), "nonzero", "signal" or "*"."""

    match: str
    action: str
    max_restarts: Optional[int] = None
    where: Optional[Where] = _where()


@dataclass(frozen=True)
class LivenessMonitor:
    """A check run every ``interval`` seconds beside a process; a failing check kills the process tree."""

    path: str
    args: Tuple[str, ...] = ()
    interval: float = 1.0
    where: Optional[Where] = _where()


@dataclass(frozen=True)
class Process:
    """One command: ``path`` (looked up on PATH) and its arguments, never a concatenated string."""

    name: str
    path: str
    args: Tuple[str, ...] = ()
    cwd: Optional[str] = None  # relative to the host's working directory
    env: Tuple[Tuple[str, str], ...] = ()
    stdin: Optional[str] = None
    stdout: Optional[str] = None
    stderr: Optional[str] = None
    where: Optional[Where] = _where()

    @property
    def argv(self) -> Tuple[str, ...]:
        return (self.path, *self.args)


@dataclass(frozen=True)
class ProcessBlock:
    """Processes run in parallel on a host; the block completes when all of them have succeeded."""

    name: str
    processes: Tuple[Process, ...] = ()
    predecessors: Tuple[str, ...] = ()
    exit_policies: Tuple[ExitPolicy, ...] = ()
    liveness: Optional[LivenessMonitor] = None
    outputs: Tuple[str, ...] = ()  # glob patterns, relative to the host's working directory, collected back
    where: Optional[Where] = _where()


@dataclass(frozen=True)
class BarrierBlock:
    """A barrier shared by name across component blocks, or a semaphore (``kind="semaphore"``)."""

    name: str
    predecessors: Tuple[str, ...] = ()
    kind: str = "barrier"  # "barrier" | "semaphore"
    max: Optional[int] = None  # release when this many hosts arrived
    threshold: Optional[float] = None  # release at this fraction of expected hosts (0 < t <= 1)
    timeout: Optional[float] = None  # seconds after the first arrival, release anyway
    adaptive: bool = False  # release at the knee of the arrival curve
    capacity: Optional[int] = None  # semaphore: hosts admitted at a time
    until: Optional[str] = None  # semaphore: the sibling block whose completion frees a place
    where: Optional[Where] = _where()

    def release_rule(self) -> Tuple[Any, ...]:
        """The attributes that must agree wherever this barrier name is used."""
        return (self.kind, self.max, self.threshold, self.timeout, self.adaptive, self.capacity)


@dataclass(frozen=True)
class WorkflowBlock:
    """Data files processed over the hosts: each item runs ``task`` exactly once, somewhere."""

    name: str
    task: ProcessBlock
    data_files: Tuple[str, ...] = ()
    predecessors: Tuple[str, ...] = ()
    where: Optional[Where] = _where()


Block = Union[ProcessBlock, BarrierBlock, WorkflowBlock]


@dataclass(frozen=True)
class ComponentBlock:
    """What every host of ``component`` executes: a DAG of blocks (predecessor edges between siblings)."""

    name: str
    component: str
    blocks: Tuple[Block, ...] = ()
    where: Optional[Where] = _where()

    def block(self, name: str) -> Block:
        for b in self.blocks:
            if b.name == name:
                return b
        raise KeyError(name)


@dataclass(frozen=True)
class Application:
    """The application block: the whole run, its liveness mode and default failure policy."""

    name: str
    component_blocks: Tuple[ComponentBlock, ...] = ()
    service: bool = False
    reconnect_interval: Optional[float] = None  # service mode: seconds between pool refreshes
    on_failure: Optional[str] = None  # None: "abort", or "restart_process" for services
    where: Optional[Where] = _where()

    @property
    def failure_action(self) -> str:
        if self.on_failure is not None:
            return self.on_failure
        return "restart_process" if self.service else "abort"

    @property
    def path(self) -> BlockPath:
        return BlockPath.of(self.name)


@dataclass(frozen=True)
class Project:
    """A whole spec: software bundles, components and the application."""

    name: str
    application: Application
    software: Tuple[Software, ...] = ()
    components: Tuple[Component, ...] = ()
    source: Optional[str] = field(default=None, compare=False)  # the spec file, for relative package paths
    where: Optional[Where] = _where()

    def component(self, name: str) -> Component:
        for c in self.components:
            if c.name == name:
                return c
        raise KeyError(name)

    def software_bundle(self, name: str) -> Software:
        for s in self.software:
            if s.name == name:
                return s
        raise KeyError(name)

    def walk(self) -> Iterator[Tuple[BlockPath, Union[ComponentBlock, Block]]]:
        """Every component block and block with its path, depth first, in spec order."""
        app = self.application.path
        for cb in self.application.component_blocks:
            cb_path = app / cb.name
            yield cb_path, cb
            for b in cb.blocks:
                yield cb_path / b.name, b
                if isinstance(b, WorkflowBlock):
                    yield cb_path / b.name / b.task.name, b.task


# --- plain data (JSON) --------------------------------------------------------------------------------

_CLASSES: Dict[str, Any] = {
    cls.__name__: cls
    for cls in (
        Where,
        Package,
        Software,
        HostCount,
        AttrRequirement,
        ResourceRef,
        Component,
        ExitPolicy,
        LivenessMonitor,
        Process,
        ProcessBlock,
        BarrierBlock,
        WorkflowBlock,
        ComponentBlock,
        Application,
        Project,
    )
}


def to_dict(obj: Any) -> Any:
    """A model (or part of one) as JSON-ready data. Dataclasses carry their class in ``"kind"``.

    A field itself named ``kind`` (``BarrierBlock.kind``) is stored as ``"kind_"`` so as not to clobber it.
    """
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        out: Dict[str, Any] = {"kind": type(obj).__name__}
        for f in dataclasses.fields(obj):
            value = getattr(obj, f.name)
            if value is None or value == () or (f.name == "where" and value is None):
                continue
            out["kind_" if f.name == "kind" else f.name] = to_dict(value)
        return out
    if isinstance(obj, tuple):
        return [to_dict(v) for v in obj]
    return obj


def from_dict(data: Any) -> Any:
    """The inverse of :func:`to_dict`: lists become tuples, ``"kind"`` dicts become models."""
    if isinstance(data, dict):
        kind = data.get("kind")
        cls = _CLASSES.get(kind) if isinstance(kind, str) else None
        if cls is None:
            raise ValueError("not a model object: kind={!r}".format(kind))
        kwargs = {("kind" if k == "kind_" else k): from_dict(v) for k, v in data.items() if k != "kind"}
        return cls(**kwargs)
    if isinstance(data, list):
        return tuple(from_dict(v) for v in data)
    return data
