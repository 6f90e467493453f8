"""The HTTP API's answers: pydantic models of what each operation's ``200`` carries, for ``/openapi.json``.

Role: the response schemas of the OpenAPI document (:func:`plush.api.models.openapi`), so a client (and the
schemathesis test, tests/integration/test_api_schema.py) can check every answer against them. The handlers
answer plain dicts (the :class:`plush.Controller`'s data); these models describe them and are not used to
build them. Answers may carry more fields than modelled (``extra="allow"``: a new field is not a break);
every field modelled is always there. Pure: no I/O.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, RootModel

__all__ = [
    "Added",
    "AppAnswer",
    "BarrierState",
    "Barriers",
    "Connected",
    "Created",
    "Edge",
    "ExecAnswer",
    "Failed",
    "HostAnswer",
    "HostStates",
    "Hosts",
    "InFlight",
    "Loaded",
    "Nothing",
    "QueueState",
    "Quit",
    "Released",
    "Removed",
    "Replaced",
    "ResultFile",
    "ResultFiles",
    "RunEntry",
    "RunReport",
    "RunStarted",
    "RunStatus",
    "RunStatusAnswer",
    "RunTimeline",
    "Runs",
    "States",
    "TimelineFields",
    "TimelineGroup",
    "TimelineRow",
    "TreeAnswer",
    "TreeBarrier",
    "TreeBlock",
    "TreeComponent",
]


class _Answer(BaseModel):
    model_config = ConfigDict(extra="allow")


class HostAnswer(_Answer):
    """One host of the pool or of the mesh (``info("nodes")``)."""

    name: str
    address: str | None
    provider: str
    group: str | None
    properties: dict[str, Any]
    state: str
    agent_pid: int | None
    component: str | None


class Hosts(RootModel[list[HostAnswer]]):
    pass


class Added(_Answer):
    added: str


class Connected(_Answer):
    connected: list[str]


class Created(_Answer):
    """``create resources``: the hosts made (none without netns resources), their cluster, the hosts connected."""

    created: list[str]
    cluster: str | None
    connected: list[str]


class Removed(_Answer):
    removed: str


class Failed(_Answer):
    failed: str


class AppAnswer(_Answer):
    """The loaded application (``info("app")``): ``loaded``, and when it is, its name, spec, components and
    the run in progress or the last (``run``)."""

    loaded: bool


class Loaded(_Answer):
    application: str
    spec: str | None


class TreeComponent(_Answer):
    name: str
    min: int
    max: int
    software: list[str]
    blocks: list[str]


class TreeBlock(_Answer):
    path: str
    parent: str
    name: str
    kind: str
    predecessors: list[str]


class TreeBarrier(_Answer):
    name: str
    kind: str
    rule: str
    paths: list[str]
    shared_by: list[str]


class Edge(BaseModel):
    """``to`` runs after ``from`` (one of its predecessors)."""

    from_: str = Field(alias="from")
    to: str


class TreeAnswer(_Answer):
    """The loaded application's block tree and DAG (:func:`plush.spec.tree.block_tree`)."""

    name: str
    application: str
    service: bool
    on_failure: str
    components: list[TreeComponent]
    blocks: list[TreeBlock]
    barriers: list[TreeBarrier]
    edges: list[Edge]
    order: dict[str, list[list[str]]]


class HostStates(_Answer):
    """One host of the run: ``phase`` (idle, running, done, failed) and each block's state by path."""

    phase: str
    blocks: dict[str, str]
    ok: bool | None


class Replaced(_Answer):
    """A replacement of the run: ``replacement`` took failed ``host``'s place in ``component``."""

    host: str
    replacement: str
    component: str
    reason: str


class InFlight(_Answer):
    item: Any
    host: str


class QueueState(_Answer):
    """A work queue of the run: items ``done``, ``failed`` attempts, the items ``in_flight`` and their hosts."""

    done: int
    failed: int
    in_flight: list[InFlight]


class States(_Answer):
    """Each host of the run in progress (or the last), as of the event ``event`` (resume the stream after it);
    ``finished``: that run's ``run.finished`` is out; what the run did to its hosts (``replaced``, each failed
    host's reason in ``failures``, ``dropped`` ones', ``restarts`` per host) and its work queues (``work``, by
    the workflow block's path)."""

    event: int
    finished: bool
    hosts: dict[str, HostStates]
    replaced: list[Replaced]
    failures: dict[str, str]
    dropped: dict[str, str]
    restarts: dict[str, int]
    work: dict[str, QueueState]


class RunStarted(_Answer):
    run: str
    results: str
    notices: list[str]


class RunStatusAnswer(_Answer):
    """Whether a run is in progress; ``event``: the latest event id; ``last``: the last run started over the API."""

    running: bool
    run: str | None
    runs: int
    event: int
    last: dict[str, Any] | None


class Nothing(_Answer):
    pass


class BarrierState(_Answer):
    name: str
    kind: str
    expected: int
    arrived: int
    waiting: int
    late: int
    failed: int
    admitted: int
    released: bool
    reason: str | None


class Barriers(RootModel[list[BarrierState]]):
    pass


class Released(_Answer):
    released: str


class ExecAnswer(_Answer):
    hosts: list[str]
    results: dict[str, dict[str, Any]]
    status: int


class Quit(_Answer):
    quit: str


class RunEntry(_Answer):
    """A run of the runs directory, as its status file says."""

    run: str
    results: str
    state: str
    reason: str
    at: float | None


class Runs(RootModel[list[RunEntry]]):
    pass


class RunReport(_Answer):
    """A run's failure report (``plush report --json``)."""

    run: str | None
    ok: bool
    finished: bool
    stopped: bool
    outcome: str
    reason: str | None
    started_at: float | None
    finished_at: float | None
    duration: float | None
    root_cause: dict[str, Any] | None
    entries: list[dict[str, Any]]


class RunStatus(_Answer):
    """A run's status: its report's summary, ``results``, ``hosts``, ``failures`` (how many entries)."""

    run: str
    results: str
    ok: bool
    finished: bool
    outcome: str
    reason: str | None
    hosts: list[str]
    failures: int


class TimelineRow(_Answer):
    """A timeline's row: one host, or hosts of one shape folded (``hosts``: their host set, ``count``)."""

    hosts: str
    count: int
    cpus: int | None
    #: ``[kind, start, end, outcome, name, info]`` (``fields.span``)
    spans: list[list[Any]]
    #: ``[kind, at, label]`` (``fields.mark``)
    marks: list[list[Any]]
    #: ``[at, load, mem]`` (``fields.sample``; a value may be null)
    samples: list[list[Any]]
    omitted: int


class TimelineGroup(_Answer):
    component: str | None
    hosts: int
    rows: list[TimelineRow]


class TimelineFields(_Answer):
    span: list[str]
    mark: list[str]
    sample: list[str]


class RunTimeline(_Answer):
    """A run's timeline (plush.controller.timeline.Timeline.to_dict; docs/api.md, The timeline of a run)."""

    version: int
    run: str | None
    started_at: float | None
    duration: float
    finished: bool
    ok: bool | None
    hosts: int
    rows: int
    tolerance: float
    fields: TimelineFields
    marks: list[list[Any]]
    groups: list[TimelineGroup]


class ResultFile(_Answer):
    path: str
    host: str
    kind: str
    size: int


class ResultFiles(RootModel[list[ResultFile]]):
    pass
