"""The timeline of a run: where each host's time went, built from the run's journal.

Role: :func:`build_timeline` reads a run's events (the journal: :func:`plush.controller.journal.read_events`)
and returns a :class:`Timeline`, which the web UI's run view (``GET /v1/runs/{run}/timeline``) and the
self-contained ``report.html`` of every results directory draw as a Gantt chart (``web/static/js/timeline.js``).
Pure: no clock (an unfinished run is drawn up to ``now`` when given), no I/O.

Theory of operation:

1. **Time.** Zero is ``run.started`` (else the first event); the end is ``run.finished`` (else the latest
   event, or ``now``). Every time is seconds from zero, clamped to ``[0, duration]`` and rounded to the
   millisecond: nothing lies outside the run. Events whose time is not a finite number are ignored.
2. **Spans and marks** per host, paired in journal order by :mod:`plush.controller.hostspans` (its
   docstring has the table): process instances (``process.started`` -> ``process.exited``: ``ok``,
   ``failed``, ``killed``), barrier waits (``barrier.arrived`` -> ``barrier.released`` / ``admitted`` /
   ``late``), installs (``host.prepared`` -> ``host.installed`` / ``install_failed``); marks of hosts (late
   passes, failures, restarts, rematches, disconnections) and of the whole run (barrier releases,
   application restarts, abort, stop).
3. **Samples.** ``host.sample`` (plush.hostmon.sample.HostSample: ``load1``, ``mem_total_mb``,
   ``mem_available_mb``, ``cpus``) become ``(at, load, memory used %)`` at the controller's time of the event,
   reduced to at most :data:`SAMPLES` per row (the worst of each time bucket: highest load, most memory used).
4. **Rows.** Hosts are grouped by component (``host.joined``'s, else any event's ``component``, else the
   component block of the host's first block event: the journal of a run on hosts that joined before it);
   within a component, hosts whose spans and marks are the same (kinds, outcomes, names, labels) at times no further
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
from dataclasses import dataclass
from typing import Any

from plush.controller.catalogue import RUN_FINISHED, RUN_STARTED
from plush.controller.hostspans import READS, EventLike, HostSpans, Mark, Span, SpanBuilder, text
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
#: clusters of hosts of one shape a host is compared with (hosts are visited in time order)
_NEAREST = 8


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


# --- folding ------------------------------------------------------------------------------------------


def _shape(host: HostSpans) -> tuple[tuple[Any, ...], tuple[float, ...]]:
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


def _row(members: list[HostSpans], duration: float) -> Row:
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


def _fold(hosts: list[HostSpans], tolerance: float, duration: float) -> list[Row]:
    """Rows of one component: hosts of one shape within ``tolerance`` fold (visited in time order, each compared
    with the latest few rows of its shape)."""

    def order(item: tuple[tuple[Any, tuple[float, ...]], HostSpans]) -> tuple[Any, ...]:
        times = item[0][1]
        near = tuple(round(t / tolerance) for t in times) if tolerance > 0 else times
        return near, natural_key(item[1].name)

    shaped = sorted(((_shape(h), h) for h in hosts), key=order)
    clusters: dict[tuple[Any, ...], list[tuple[tuple[float, ...], list[HostSpans]]]] = {}
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
    builder = SpanBuilder(t0, duration)
    for ev in timed:
        builder.event(ev)
    builder.finish()
    tol = tolerance if tolerance is not None else max(MIN_TOLERANCE, TOLERANCE * duration)

    components: dict[str | None, list[HostSpans]] = {}
    for host in builder.hosts.values():
        components.setdefault(host.component or host.block_component, []).append(host)
    order = sorted(components, key=lambda c: (c is None, natural_key(c) if c else ()))
    groups = tuple(Group(c, tuple(_fold(components[c], tol, duration))) for c in order)

    ok = None
    if finished is not None and isinstance(finished.data, Mapping):
        ok = bool(finished.data.get("ok"))
    run = started.data.get("run") if started is not None and isinstance(started.data, Mapping) else None
    return Timeline(
        run=text(run) if run is not None else None,
        started_at=t0 if started is not None else None,
        duration=duration,
        finished=finished is not None,
        ok=ok,
        groups=groups,
        marks=tuple(sorted(builder.marks, key=lambda m: m.at)),
        tolerance=round(tol, 3),
    )
