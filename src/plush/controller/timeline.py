"""The timeline of a run: where each host's time went, built from the run's journal.

Role: :func:`build_timeline` reads a run's events (the journal: :func:`plush.controller.journal.read_events`)
and returns a :class:`Timeline`, which the web UI's run view (``GET /v1/runs/{run}/timeline``) and the
self-contained ``report.html`` of every results directory draw as a Gantt chart (``web/static/js/timeline.js``).
Pure: no clock (an unfinished run is drawn up to ``now`` when given), no I/O.

Theory of operation:

1. **Time.** Zero is ``run.started`` (else the first event); the end is ``run.finished`` (else the latest
   event, or ``now``). Every time is seconds from zero, clamped to ``[0, duration]`` and rounded to the
   millisecond: nothing lies outside the run. Events whose time is not a finite number are ignored.
2. **Spans** per host, paired in journal order:

   ========== ============================================= ============================================
   kind       from                                          to (outcome)
   ========== ============================================= ============================================
   process    ``process.started`` (host, block, instance)   ``process.exited``: ``ok`` (success),
                                                            ``killed`` (a signal, or stopped by Plush),
                                                            ``failed`` (any other exit)
   wait       ``barrier.arrived`` / ``barrier.waiting``     ``barrier.released`` naming the host
                                                            (``released``), ``barrier.admitted``
                                                            (``admitted``), ``barrier.late`` (``late``)
   install    ``host.prepared`` (else ``host.joined``)      ``host.installed`` (``ok``),
                                                            ``host.install_failed`` (``failed``)
   ========== ============================================= ============================================

   A span still open when its host fails or leaves ends there as ``lost``; one open at the end of the
   journal ends with the run as ``open``. An end without its start is a span of no length at the end.
3. **Marks** per host: ``late`` (a late pass of a released barrier), ``failed``, ``limits``, ``restart``
   (``host.restarted``, ``block.restarted``), ``rematch`` (on the lost host and on its replacement),
   ``dropped``, ``disconnect``, ``reconnect``, ``liveness``; and for the whole run: ``start`` (the start
   barrier), ``release`` (a barrier released), ``restart`` (``app.restarted``), ``abort``, ``stop``.
4. **Samples.** ``host.sample`` (plush.hostmon.sample.HostSample: ``load1``, ``mem_total_mb``,
   ``mem_available_mb``, ``cpus``) become ``(at, load, memory used %)`` at the controller's time of the event,
   reduced to at most :data:`SAMPLES` per row (the worst of each time bucket: highest load, most memory used).
5. **Rows.** Hosts are grouped by component (``host.joined``'s, else any event's ``component``); within a
   component, hosts whose spans and marks are the same (kinds, outcomes, names, labels) at times no further
   apart than the tolerance (:data:`TOLERANCE` of the run's duration, at least :data:`MIN_TOLERANCE` s) fold
   into one row labelled with their folded host set (``plush.resources.hostset.fold``); its spans cover the
   folded hosts' (earliest start, latest end). At most :data:`MAX_SPANS` spans and :data:`MAX_MARKS` marks a
   row; what is left out is counted (``omitted``).

Invariants: total over any event sequence (never raises); ``0 <= start <= end <= duration`` for every span,
``0 <= at <= duration`` for every mark and sample; every host an event of a host names (and every host a
release or a rematch names) is in exactly one row;
:meth:`Timeline.to_dict` is JSON-ready, its shape is documented in docs/api.md.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from plush.controller.catalogue import (
    APP_ABORTED,
    APP_RESTARTED,
    APP_STOPPED,
    BARRIER_ADMITTED,
    BARRIER_ARRIVED,
    BARRIER_LATE,
    BARRIER_RELEASED,
    BARRIER_START_RELEASED,
    BARRIER_WAITING,
    BLOCK_RESTARTED,
    HOST_DISCONNECTED,
    HOST_DROPPED,
    HOST_FAILED,
    HOST_INSTALL_FAILED,
    HOST_INSTALLED,
    HOST_JOINED,
    HOST_LEFT,
    HOST_OVER_LIMITS,
    HOST_PREPARED,
    HOST_RECONNECTED,
    HOST_REMATCHED,
    HOST_RESTARTED,
    HOST_SAMPLE,
    PROCESS_EXITED,
    PROCESS_LIVENESS_FAILED,
    PROCESS_STARTED,
    RUN_FINISHED,
    RUN_STARTED,
)
from plush.resources.hostset import HostSetError, fold, natural_key

__all__ = [
    "MAX_MARKS",
    "MAX_SPANS",
    "MIN_TOLERANCE",
    "READS",
    "SAMPLES",
    "TOLERANCE",
    "VERSION",
    "EventLike",
    "Group",
    "Mark",
    "Row",
    "Span",
    "Timeline",
    "build_timeline",
]

#: the version of :meth:`Timeline.to_dict`'s shape
VERSION = 1
#: samples a row keeps at most
SAMPLES = 48
#: hosts fold when their times differ by at most this fraction of the run's duration ...
TOLERANCE = 0.01
#: ... or by this many seconds, whichever is more
MIN_TOLERANCE = 0.05
#: spans and marks a row keeps at most (the rest are counted in ``omitted``)
MAX_SPANS = 400
MAX_MARKS = 200
#: labels are cut to this many characters
LABEL = 160
#: clusters of hosts of one shape a host is compared with (hosts are visited in time order)
_NEAREST = 8


#: every event the timeline reads, with the ``data`` fields it reads of it (tests/controller/test_timeline.py
#: checks that the controller emits them, so a renamed event or field breaks a test, not the timeline)
READS: dict[str, tuple[str, ...]] = {
    RUN_STARTED: ("run",),
    RUN_FINISHED: ("ok",),
    PROCESS_STARTED: (),
    PROCESS_EXITED: ("code", "signal", "action"),
    PROCESS_LIVENESS_FAILED: ("reason",),
    BARRIER_ARRIVED: ("barrier",),
    BARRIER_WAITING: ("barrier",),
    BARRIER_RELEASED: ("barrier", "reason", "hosts"),
    BARRIER_LATE: ("barrier",),
    BARRIER_ADMITTED: ("barrier",),
    BARRIER_START_RELEASED: ("hosts",),
    HOST_JOINED: ("component",),
    HOST_PREPARED: (),
    HOST_INSTALLED: ("software",),
    HOST_INSTALL_FAILED: ("software", "reason"),
    HOST_FAILED: ("reason", "component"),
    HOST_LEFT: (),
    HOST_RESTARTED: ("reason", "component"),
    BLOCK_RESTARTED: ("reason",),
    HOST_OVER_LIMITS: ("reasons",),
    HOST_DROPPED: ("reason", "component"),
    HOST_DISCONNECTED: ("reason",),
    HOST_RECONNECTED: ("down_for",),
    HOST_REMATCHED: ("replacement", "component"),
    HOST_SAMPLE: (),
    APP_RESTARTED: ("count", "reason"),
    APP_ABORTED: ("reason",),
    APP_STOPPED: ("reason",),
}


class EventLike(Protocol):
    """What the timeline reads of an event (:class:`plush.controller.events.Event` is one)."""

    @property
    def name(self) -> str: ...
    @property
    def at(self) -> float: ...
    @property
    def host(self) -> str | None: ...
    @property
    def block(self) -> str | None: ...
    @property
    def instance(self) -> int | None: ...
    @property
    def data(self) -> Mapping[str, Any]: ...


@dataclass(frozen=True, slots=True)
class Span:
    """A stretch of a host's time: a process instance, a barrier wait or an install."""

    kind: str  # process | wait | install
    start: float
    end: float
    outcome: str  # process: ok|failed|killed; wait: released|admitted|late; install: ok|failed; any: lost|open
    name: str  # the process's block path, the barrier's name, "install"
    info: str = ""

    def to_list(self) -> list[Any]:
        return [self.kind, self.start, self.end, self.outcome, self.name, self.info]


@dataclass(frozen=True, slots=True)
class Mark:
    """A moment: a host failure, a restart, a late pass, a barrier release ..."""

    kind: str
    at: float
    label: str

    def to_list(self) -> list[Any]:
        return [self.kind, self.at, self.label]


@dataclass(frozen=True, slots=True)
class Row:
    """One host, or hosts of one shape folded (``label``: their host set)."""

    hosts: tuple[str, ...]
    label: str
    spans: tuple[Span, ...]
    marks: tuple[Mark, ...]
    #: ``(at, load1, memory used %)``; a value is None when no sample of that bucket told it
    samples: tuple[tuple[float, float | None, float | None], ...] = ()
    cpus: int | None = None
    omitted: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "hosts": self.label,
            "count": len(self.hosts),
            "cpus": self.cpus,
            "spans": [s.to_list() for s in self.spans],
            "marks": [m.to_list() for m in self.marks],
            "samples": [list(s) for s in self.samples],
            "omitted": self.omitted,
        }


@dataclass(frozen=True, slots=True)
class Group:
    """The rows of one component (``None``: hosts whose component the journal does not tell)."""

    component: str | None
    rows: tuple[Row, ...]

    @property
    def hosts(self) -> int:
        return sum(len(r.hosts) for r in self.rows)

    def to_dict(self) -> dict[str, Any]:
        return {"component": self.component, "hosts": self.hosts, "rows": [r.to_dict() for r in self.rows]}


@dataclass(frozen=True, slots=True)
class Timeline:
    """A run's timeline; see the module docstring. ``to_dict()`` is what the API answers and report.html holds."""

    run: str | None
    started_at: float | None
    duration: float
    finished: bool
    ok: bool | None
    groups: tuple[Group, ...]
    marks: tuple[Mark, ...]
    tolerance: float

    @property
    def hosts(self) -> int:
        return sum(g.hosts for g in self.groups)

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": VERSION,
            "run": self.run,
            "started_at": self.started_at,
            "duration": self.duration,
            "finished": self.finished,
            "ok": self.ok,
            "hosts": self.hosts,
            "rows": sum(len(g.rows) for g in self.groups),
            "tolerance": self.tolerance,
            "fields": {
                "span": ["kind", "start", "end", "outcome", "name", "info"],
                "mark": ["kind", "at", "label"],
                "sample": ["at", "load", "mem"],
            },
            "marks": [m.to_list() for m in self.marks],
            "groups": [g.to_dict() for g in self.groups],
        }


# --- building -----------------------------------------------------------------------------------------


def _text(value: Any) -> str:
    text = "" if value is None else str(value)
    return text if len(text) <= LABEL else text[: LABEL - 1] + "…"


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _process_outcome(data: Mapping[str, Any]) -> str:
    action, code, sig = data.get("action"), data.get("code"), data.get("signal")
    if action == "success" or (action is None and code == 0 and sig is None):
        return "ok"
    if sig is not None or action == "stopped":
        return "killed"
    return "failed"


def _exit_text(data: Mapping[str, Any]) -> str:
    if data.get("signal") is not None:
        return f"signal {_text(data.get('signal'))}"
    if data.get("code") is not None:
        return f"exit {_text(data.get('code'))}"
    return "exited"


@dataclass(slots=True)
class _Host:
    name: str
    first: int  # the index of its first event: hosts of no component keep the journal's order
    component: str | None = None
    spans: list[Span] = field(default_factory=list)
    marks: list[Mark] = field(default_factory=list)
    samples: list[tuple[float, float | None, float | None]] = field(default_factory=list)
    cpus: int | None = None
    processes: dict[tuple[str, int | None], tuple[float, str]] = field(default_factory=dict)
    waits: dict[str, float] = field(default_factory=dict)
    install: float | None = None  # host.prepared
    joined: float | None = None

    def close_all(self, at: float, outcome: str) -> None:
        for (block, _), (start, info) in self.processes.items():
            self.spans.append(Span("process", start, max(start, at), outcome, block, info))
        for barrier, start in self.waits.items():
            self.spans.append(Span("wait", start, max(start, at), outcome, barrier))
        if self.install is not None:
            self.spans.append(Span("install", self.install, max(self.install, at), outcome, "install"))
        self.processes, self.waits, self.install, self.joined = {}, {}, None, None


class _Builder:
    def __init__(self, t0: float, duration: float) -> None:
        self.t0, self.duration = t0, duration
        self.hosts: dict[str, _Host] = {}
        self.marks: list[Mark] = []
        self.count = 0

    def time(self, at: float) -> float:
        return round(min(max(at - self.t0, 0.0), self.duration), 3)

    def host(self, name: Any) -> _Host | None:
        if not isinstance(name, str) or not name:
            return None
        host = self.hosts.get(name)
        if host is None:
            host = self.hosts[name] = _Host(name, len(self.hosts))
        return host

    def event(self, ev: EventLike) -> None:
        at = self.time(ev.at)
        data: Mapping[str, Any] = ev.data if isinstance(ev.data, Mapping) else {}
        name = ev.name
        if name == BARRIER_RELEASED:
            hosts = data.get("hosts")
            names = [h for h in hosts if isinstance(h, str)] if isinstance(hosts, list) else []
            barrier, reason = _text(data.get("barrier")), _text(data.get("reason"))
            self.marks.append(Mark("release", at, f"{barrier} released ({reason}, {len(names)} hosts)"))
            for each in names:
                host = self.host(each)
                if host is not None:
                    start = host.waits.pop(barrier, at)
                    host.spans.append(Span("wait", start, max(start, at), "released", barrier, reason))
            return
        if name in _RUN_MARKS:
            self.marks.append(Mark(_RUN_MARKS[name], at, _run_label(name, data, ev.host)))
            return
        host = self.host(ev.host)
        if host is None:
            return
        component = data.get("component")
        if host.component is None and isinstance(component, str) and component:
            host.component = component
        handler = _HANDLERS.get(name)
        if handler is not None:
            handler(self, host, ev, at, data)

    def finish(self) -> None:
        for host in self.hosts.values():
            host.close_all(self.duration, "open")


def _process_started(b: _Builder, host: _Host, ev: EventLike, at: float, data: Mapping[str, Any]) -> None:
    key = (_text(ev.block), ev.instance if isinstance(ev.instance, int) else None)
    previous = host.processes.pop(key, None)
    if previous is not None:  # started again without an exit: the first one's end is unknown
        host.spans.append(Span("process", previous[0], max(previous[0], at), "lost", key[0], previous[1]))
    host.processes[key] = (at, f"#{key[1]}" if key[1] is not None else "")


def _process_exited(b: _Builder, host: _Host, ev: EventLike, at: float, data: Mapping[str, Any]) -> None:
    key = (_text(ev.block), ev.instance if isinstance(ev.instance, int) else None)
    start, number = host.processes.pop(key, (at, f"#{key[1]}" if key[1] is not None else ""))
    info = ", ".join(x for x in (number, _exit_text(data)) if x)
    host.spans.append(Span("process", start, max(start, at), _process_outcome(data), key[0], info))


def _arrived(b: _Builder, host: _Host, ev: EventLike, at: float, data: Mapping[str, Any]) -> None:
    host.waits.setdefault(_text(data.get("barrier")), at)


def _passed(b: _Builder, host: _Host, ev: EventLike, at: float, data: Mapping[str, Any]) -> None:
    barrier = _text(data.get("barrier"))
    start = host.waits.pop(barrier, at)
    outcome = "late" if ev.name == BARRIER_LATE else "admitted"
    info = "released before it arrived: passed late" if outcome == "late" else ""
    host.spans.append(Span("wait", start, max(start, at), outcome, barrier, info))
    if outcome == "late":
        host.marks.append(Mark("late", at, f"passed {barrier} late"))


def _joined(b: _Builder, host: _Host, ev: EventLike, at: float, data: Mapping[str, Any]) -> None:
    host.joined = at


def _prepared(b: _Builder, host: _Host, ev: EventLike, at: float, data: Mapping[str, Any]) -> None:
    host.install = at


def _installed(b: _Builder, host: _Host, ev: EventLike, at: float, data: Mapping[str, Any]) -> None:
    begun = host.install if host.install is not None else host.joined if host.joined is not None else at
    if ev.name == HOST_INSTALLED:
        software = data.get("software")
        info = ", ".join(_text(s) for s in software) if isinstance(software, list) else ""
        host.spans.append(Span("install", begun, max(begun, at), "ok", "install", _text(info)))
    else:
        info = f"{_text(data.get('software'))}: {_text(data.get('reason'))}"
        host.spans.append(Span("install", begun, max(begun, at), "failed", "install", _text(info)))
    host.install = host.joined = None


def _lost(b: _Builder, host: _Host, ev: EventLike, at: float, data: Mapping[str, Any]) -> None:
    host.close_all(at, "lost")
    if ev.name == HOST_FAILED:
        host.marks.append(Mark("failed", at, f"host failed: {_text(data.get('reason'))}"))


def _mark(b: _Builder, host: _Host, ev: EventLike, at: float, data: Mapping[str, Any]) -> None:
    name = ev.name
    if name == HOST_RESTARTED:
        host.marks.append(Mark("restart", at, f"host restarted: {_text(data.get('reason'))}"))
    elif name == BLOCK_RESTARTED:
        host.marks.append(Mark("restart", at, f"{_text(ev.block)} restarted: {_text(data.get('reason'))}"))
    elif name == HOST_OVER_LIMITS:
        reasons = data.get("reasons")
        told = "; ".join(_text(r) for r in reasons) if isinstance(reasons, list) else ""
        host.marks.append(Mark("limits", at, _text(f"over its limits: {told}")))
    elif name == HOST_DROPPED:
        host.marks.append(Mark("dropped", at, f"dropped: {_text(data.get('reason'))}"))
    elif name == HOST_DISCONNECTED:
        host.marks.append(Mark("disconnect", at, f"disconnected: {_text(data.get('reason'))}"))
    elif name == HOST_RECONNECTED:
        down = _number(data.get("down_for"))
        host.marks.append(Mark("reconnect", at, "reconnected" + (f" after {down:.1f}s" if down is not None else "")))
    elif name == PROCESS_LIVENESS_FAILED:
        host.marks.append(Mark("liveness", at, f"{_text(ev.block)}: liveness failed: {_text(data.get('reason'))}"))


def _rematched(b: _Builder, host: _Host, ev: EventLike, at: float, data: Mapping[str, Any]) -> None:
    replacement = b.host(data.get("replacement"))
    host.marks.append(Mark("rematch", at, f"replaced by {_text(data.get('replacement'))}"))
    if replacement is not None and replacement is not host:
        replacement.marks.append(Mark("rematch", at, f"replaces {host.name}"))
        if replacement.component is None:
            replacement.component = host.component


def _sample(b: _Builder, host: _Host, ev: EventLike, at: float, data: Mapping[str, Any]) -> None:
    load = _number(data.get("load1"))
    total, available = _number(data.get("mem_total_mb")), _number(data.get("mem_available_mb"))
    used = None
    if total is not None and available is not None and total > 0:
        used = round(min(100.0, max(0.0, 100.0 * (1 - available / total))), 1)
    if load is not None:
        load = round(max(0.0, load), 2)
    cpus = data.get("cpus")
    if isinstance(cpus, int) and not isinstance(cpus, bool) and 0 < cpus < 1_000_000:
        host.cpus = max(host.cpus or 0, cpus)
    if load is not None or used is not None:
        host.samples.append((at, load, used))


_Handler = Any
_HANDLERS: dict[str, _Handler] = {
    PROCESS_STARTED: _process_started,
    PROCESS_EXITED: _process_exited,
    BARRIER_ARRIVED: _arrived,
    BARRIER_WAITING: _arrived,
    BARRIER_LATE: _passed,
    BARRIER_ADMITTED: _passed,
    HOST_JOINED: _joined,
    HOST_PREPARED: _prepared,
    HOST_INSTALLED: _installed,
    HOST_INSTALL_FAILED: _installed,
    HOST_FAILED: _lost,
    HOST_LEFT: _lost,
    HOST_RESTARTED: _mark,
    BLOCK_RESTARTED: _mark,
    HOST_OVER_LIMITS: _mark,
    HOST_DROPPED: _mark,
    HOST_DISCONNECTED: _mark,
    HOST_RECONNECTED: _mark,
    PROCESS_LIVENESS_FAILED: _mark,
    HOST_REMATCHED: _rematched,
    HOST_SAMPLE: _sample,
}

_RUN_MARKS = {
    BARRIER_START_RELEASED: "start",
    APP_RESTARTED: "restart",
    APP_ABORTED: "abort",
    APP_STOPPED: "stop",
}


def _run_label(name: str, data: Mapping[str, Any], host: str | None) -> str:
    reason = _text(data.get("reason"))
    if name == BARRIER_START_RELEASED:
        return f"every host installed: the application starts ({_text(data.get('hosts'))} hosts)"
    if name == APP_RESTARTED:
        on = f" ({_text(host)})" if host else ""
        return _text(f"application restarted (#{_text(data.get('count'))}){on}: {reason}")
    if name == APP_ABORTED:
        return _text(f"run aborted: {reason}")
    return _text(f"run stopped: {reason}")


# --- folding ------------------------------------------------------------------------------------------


def _shape(host: _Host) -> tuple[tuple[Any, ...], tuple[float, ...]]:
    spans = sorted(host.spans, key=lambda s: (s.start, s.end))
    marks = sorted(host.marks, key=lambda m: m.at)
    signature = (
        tuple((s.kind, s.outcome, s.name, s.info) for s in spans),
        tuple((m.kind, m.label) for m in marks),
    )
    times = tuple(t for s in spans for t in (s.start, s.end)) + tuple(m.at for m in marks)
    return signature, times


def _label(names: Sequence[str]) -> str:
    try:
        return fold(names)
    except HostSetError:  # a name a host set cannot hold (a comma, a space): listed as they are
        return ",".join(sorted(names, key=natural_key))


def _bucketed(
    samples: Iterable[tuple[float, float | None, float | None]], duration: float
) -> tuple[tuple[float, float | None, float | None], ...]:
    """At most :data:`SAMPLES` samples: per time bucket, its samples' mean time, highest load, most memory."""
    buckets: dict[int, list[tuple[float, float | None, float | None]]] = {}
    for sample in samples:
        index = min(SAMPLES - 1, int(sample[0] / duration * SAMPLES)) if duration > 0 else 0
        buckets.setdefault(index, []).append(sample)
    out = []
    for index in sorted(buckets):
        group = buckets[index]
        at = round(min(duration, max(0.0, sum(s[0] for s in group) / len(group))), 3)
        loads = [s[1] for s in group if s[1] is not None]
        mems = [s[2] for s in group if s[2] is not None]
        out.append((at, max(loads) if loads else None, max(mems) if mems else None))
    return tuple(out)


def _row(members: list[_Host], duration: float) -> Row:
    shaped = [sorted(h.spans, key=lambda s: (s.start, s.end)) for h in members]
    spans = [
        Span(s.kind, min(o[i].start for o in shaped), max(o[i].end for o in shaped), s.outcome, s.name, s.info)
        for i, s in enumerate(shaped[0])
    ]
    marked = [sorted(h.marks, key=lambda m: m.at) for h in members]
    marks = [Mark(m.kind, min(o[i].at for o in marked), m.label) for i, m in enumerate(marked[0])]
    omitted = max(0, len(spans) - MAX_SPANS) + max(0, len(marks) - MAX_MARKS)
    names = sorted((h.name for h in members), key=natural_key)
    cpus = [h.cpus for h in members if h.cpus is not None]
    return Row(
        hosts=tuple(names),
        label=_label(names),
        spans=tuple(spans[:MAX_SPANS]),
        marks=tuple(marks[:MAX_MARKS]),
        samples=_bucketed((s for h in members for s in h.samples), duration),
        cpus=max(cpus) if cpus else None,
        omitted=omitted,
    )


def _fold(hosts: list[_Host], tolerance: float, duration: float) -> list[Row]:
    """Rows of one component: hosts of one shape within ``tolerance`` fold (visited in time order, each compared
    with the latest few rows of its shape)."""

    def order(item: tuple[tuple[Any, tuple[float, ...]], _Host]) -> tuple[Any, ...]:
        times = item[0][1]
        near = tuple(round(t / tolerance) for t in times) if tolerance > 0 else times
        return near, natural_key(item[1].name)

    shaped = sorted(((_shape(h), h) for h in hosts), key=order)
    clusters: dict[tuple[Any, ...], list[tuple[tuple[float, ...], list[_Host]]]] = {}
    for (signature, times), host in shaped:
        found = clusters.setdefault(signature, [])
        for reference, members in reversed(found[-_NEAREST:]):
            if all(abs(a - b) <= tolerance for a, b in zip(reference, times, strict=True)):
                members.append(host)
                break
        else:
            found.append((times, [host]))
    rows = [_row(members, duration) for found in clusters.values() for _, members in found]
    rows.sort(key=lambda r: natural_key(r.hosts[0]))
    return rows


def build_timeline(
    events: Sequence[EventLike], *, now: float | None = None, tolerance: float | None = None
) -> Timeline:
    """The timeline of the run whose events are ``events`` (journal order); see the module docstring.

    ``now``: the time of an unfinished run's end (else its latest event); ``tolerance``: how far apart (s)
    two hosts' times may be and still fold into one row (default: :data:`TOLERANCE` of the duration, at least
    :data:`MIN_TOLERANCE`)."""
    timed = [e for e in events if isinstance(e.at, int | float) and math.isfinite(e.at)]
    started = next((e for e in timed if e.name == RUN_STARTED), None)
    finished = next((e for e in reversed(timed) if e.name == RUN_FINISHED), None)
    t0 = started.at if started is not None else min((e.at for e in timed), default=0.0)
    if finished is not None:
        end = finished.at
    else:
        end = max((e.at for e in timed), default=t0)
        if now is not None and math.isfinite(now):
            end = max(end, now)
    duration = round(max(0.0, end - t0), 3)
    builder = _Builder(t0, duration)
    for ev in timed:
        builder.event(ev)
    builder.finish()
    tol = tolerance if tolerance is not None else max(MIN_TOLERANCE, TOLERANCE * duration)

    components: dict[str | None, list[_Host]] = {}
    for host in builder.hosts.values():
        components.setdefault(host.component, []).append(host)
    order = sorted(components, key=lambda c: (c is None, natural_key(c) if c else ()))
    groups = tuple(Group(c, tuple(_fold(components[c], tol, duration))) for c in order)

    ok = None
    if finished is not None and isinstance(finished.data, Mapping):
        ok = bool(finished.data.get("ok"))
    run = started.data.get("run") if started is not None and isinstance(started.data, Mapping) else None
    return Timeline(
        run=_text(run) if run is not None else None,
        started_at=t0 if started is not None else None,
        duration=duration,
        finished=finished is not None,
        ok=ok,
        groups=groups,
        marks=tuple(sorted(builder.marks, key=lambda m: m.at)),
        tolerance=round(tol, 3),
    )
