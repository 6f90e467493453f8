"""The timeline of a run (plush.controller.timeline): spans, marks, samples, folding, the JSON; any event
sequence."""

from __future__ import annotations

import json
import math
from typing import Any

from event_emitters import emitted, fields_of
from hypothesis import given, settings
from hypothesis import strategies as st

from plush.controller.events import Event
from plush.controller.timeline import READS, SAMPLES, Timeline, build_timeline

T0 = 1_700_000_000.0
WORK = "/partial/racers/work/work"
REPORT = "/partial/racers/report/report"


class Run:
    """A synthetic event sequence; ``at`` is seconds after run.started."""

    def __init__(self) -> None:
        self.events: list[Event] = [Event(name="run.started", at=T0, data={"run": "r1", "hosts": 0})]

    def add(self, at: float, name: str, **fields: Any) -> Run:
        self.events.append(Event(name=name, at=T0 + at, **fields))
        return self

    def join(self, at: float, host: str, component: str = "racers") -> Run:
        self.add(at, "host.joined", host=host, data={"component": component})
        self.add(at + 0.01, "host.prepared", host=host)
        return self.add(at + 0.05, "host.installed", host=host, data={"software": ["tool"]})

    def process(self, start: float, end: float, host: str, block: str = WORK, **data: Any) -> Run:
        self.add(start, "process.started", host=host, block=block, instance=1, data={"pid": 1})
        exited = {"code": 0, "signal": None, "action": "success", **data}
        return self.add(end, "process.exited", host=host, block=block, instance=1, data=exited)

    def finish(self, at: float, ok: bool = True) -> Run:
        return self.add(at, "run.finished", data={"ok": ok, "stopped": False, "reason": "", "timings": {}})


def rows(timeline: Timeline) -> dict[str, Any]:
    return {row.label: row for group in timeline.groups for row in group.rows}


def partial() -> Run:
    """examples/partial.xml's shape: 3 of 5 racers release the quorum; local-4 and local-5 pass it late."""
    run = Run()
    for n in range(1, 6):
        run.join(0.1, f"local-{n}")
    for n in range(1, 6):
        host, done = f"local-{n}", float(n)
        run.process(0.2, done, host)
        run.add(done, "barrier.arrived", host=host, block="/partial/racers/quorum", data={"barrier": "quorum"})
        if n < 3:
            run.add(done, "barrier.waiting", host=host, data={"barrier": "quorum"})
        if n == 3:
            hosts = ["local-1", "local-2", "local-3"]
            run.add(3.0, "barrier.released", data={"barrier": "quorum", "reason": "threshold", "hosts": hosts})
        if n > 3:
            run.add(done, "barrier.late", host=host, data={"barrier": "quorum"})
        run.process(max(done, 3.0) + 0.01, max(done, 3.0) + 0.02, host, REPORT)
    return run.finish(5.1)


def test_the_partial_barrier_shows_each_wait_the_release_and_the_late_passes() -> None:
    timeline = build_timeline(partial().events)
    assert timeline.run == "r1" and timeline.finished and timeline.ok and timeline.duration == 5.1
    by = rows(timeline)
    assert sorted(by) == [f"local-{n}" for n in range(1, 6)]  # different shapes: no fold
    waits = {label: [s for s in row.spans if s.kind == "wait"] for label, row in by.items()}
    assert [(w.start, w.end, w.outcome, w.name) for w in waits["local-1"]] == [(1.0, 3.0, "released", "quorum")]
    late = waits["local-4"][0]
    assert (late.start, late.end, late.outcome, late.name) == (4.0, 4.0, "late", "quorum")
    assert [(m.kind, m.at) for m in by["local-4"].marks] == [("late", 4.0)]
    assert [(m.kind, m.at) for m in by["local-5"].marks] == [("late", 5.0)]
    assert [(m.kind, m.at) for m in timeline.marks] == [("release", 3.0)]
    assert "quorum" in timeline.marks[0].label and "threshold" in timeline.marks[0].label


def test_processes_are_coloured_by_outcome_and_open_ones_reach_now() -> None:
    run = Run().join(0, "h1").join(0, "h2").join(0, "h3").join(0, "h4")
    run.process(1, 2, "h1")
    run.process(1, 2, "h2", code=1, action="abort")
    run.process(1, 2, "h3", code=None, signal=9, action="restart_process")
    run.add(1, "process.started", host="h4", block=WORK, instance=1, data={"pid": 1})
    timeline = build_timeline(run.events, now=T0 + 7)
    assert not timeline.finished and timeline.ok is None and timeline.duration == 7
    outcome = {label: [s.outcome for s in row.spans if s.kind == "process"] for label, row in rows(timeline).items()}
    assert outcome == {"h1": ["ok"], "h2": ["failed"], "h3": ["killed"], "h4": ["open"]}
    h3 = next(s for s in rows(timeline)["h3"].spans if s.kind == "process")
    assert h3.info == "#1, signal 9"
    h4 = next(s for s in rows(timeline)["h4"].spans if s.kind == "process")
    assert (h4.start, h4.end) == (1, 7)


def test_an_install_starts_when_the_host_is_prepared_else_when_it_joined() -> None:
    run = Run()
    run.add(0.1, "host.joined", host="a", data={"component": "c"}).add(0.4, "host.prepared", host="a")
    run.add(0.9, "host.installed", host="a", data={"software": ["x", "y"]})
    run.add(0.2, "host.joined", host="b", data={"component": "c"})
    run.add(1.5, "host.install_failed", host="b", data={"software": "x", "reason": "sha256 mismatch"})
    by = rows(build_timeline(run.finish(2, ok=False).events))
    assert [(s.start, s.end, s.outcome, s.info) for s in by["a"].spans] == [(0.4, 0.9, "ok", "x, y")]
    assert [(s.start, s.end, s.outcome, s.info) for s in by["b"].spans] == [(0.2, 1.5, "failed", "x: sha256 mismatch")]


def test_a_failed_host_loses_its_open_spans_and_its_replacement_and_restarts_are_marked() -> None:
    run = Run().join(0, "local-1").join(0, "local-2")
    run.add(1, "process.started", host="local-1", block=WORK, instance=1, data={"pid": 1})
    run.add(1, "barrier.arrived", host="local-2", block="/a/b", data={"barrier": "b"})
    run.add(2, "host.disconnected", host="local-1", data={"reason": "eof", "window": 5})
    run.add(3, "host.failed", host="local-1", data={"reason": "connection lost", "component": "racers"})
    run.add(3, "host.rematched", host="local-1", data={"replacement": "local-7", "component": "racers"})
    run.add(3.5, "host.joined", host="local-7", data={"component": None})
    run.add(4, "host.failed", host="local-2", data={"reason": "over limits", "component": "racers"})
    run.add(4.5, "host.restarted", host="local-2", data={"reason": "restart_host", "component": "racers"})
    run.add(4.6, "block.restarted", host="local-2", block="/a/w", data={"reason": "operator", "action": "x"})
    run.add(4.7, "app.restarted", host="local-2", block="/a/w", data={"count": 1, "reason": "why"})
    timeline = build_timeline(run.finish(6).events)
    by = rows(timeline)
    assert [(s.kind, s.start, s.end, s.outcome) for s in by["local-1"].spans if s.kind != "install"] == [
        ("process", 1, 3, "lost")
    ]
    assert [m.kind for m in by["local-1"].marks] == ["disconnect", "failed", "rematch"]
    assert [m.label for m in by["local-7"].marks] == ["replaces local-1"]
    assert [g.component for g in timeline.groups] == ["racers"]  # the replacement is of its host's component
    assert [(s.kind, s.outcome) for s in by["local-2"].spans if s.kind == "wait"] == [("wait", "lost")]
    assert [m.kind for m in by["local-2"].marks] == ["failed", "restart", "restart"]
    assert [(m.kind, m.at) for m in timeline.marks] == [("restart", 4.7)]


def test_hosts_that_joined_before_the_run_are_grouped_by_their_component_block() -> None:
    """A run of plush serve on connected hosts: its journal has no host.joined (and no component)."""
    run = Run().process(0.5, 1, "local-2").process(0.5, 1, "local-1")
    run.process(0.5, 1, "local-3", block="/partial/others/p/p")
    run.add(0.7, "host.sample", host="local-4", data={"load1": 1.0})
    timeline = build_timeline(run.finish(2).events)
    assert [(g.component, [r.label for r in g.rows]) for g in timeline.groups] == [
        ("others", ["local-3"]),
        ("racers", ["local-[1-2]"]),
        (None, ["local-4"]),
    ]


def test_events_outside_the_run_are_clamped_into_it() -> None:
    run = Run().join(0, "h")
    run.add(-5, "host.disconnected", host="h", data={"reason": "early"})
    run.finish(3).add(9, "host.left", host="h", data={"reason": "bye"}).process(8, 10, "h")
    timeline = build_timeline(run.events)
    spans, marks = rows(timeline)["h"].spans, rows(timeline)["h"].marks
    assert all(0 <= s.start <= s.end <= 3 for s in spans) and all(0 <= m.at <= 3 for m in marks)


def test_hosts_of_one_shape_fold_into_one_row_per_component() -> None:
    run = Run()
    for n in range(1, 1001):
        host, component = f"node{n}", "servers" if n <= 10 else "clients"
        run.join(0.001 * (n % 7), host, component)
        ends = 5.0 + 0.002 * (n % 11) if n != 500 else 9.0  # node500 is slow: a row of its own
        run.process(1, ends, host)
        for k in range(200):
            mem = {"load1": k / 100, "mem_total_mb": 1000, "mem_available_mb": 500, "cpus": 4}
            run.add(0.05 * k, "host.sample", host=host, data=mem)
    timeline = build_timeline(run.finish(10).events)
    assert [(g.component, g.hosts, [r.label for r in g.rows]) for g in timeline.groups] == [
        ("clients", 990, ["node[11-499,501-1000]", "node500"]),
        ("servers", 10, ["node[1-10]"]),
    ]
    row = timeline.groups[0].rows[0]
    process = next(s for s in row.spans if s.kind == "process")
    assert (process.start, process.end) == (1, 5.02)  # the folded hosts' earliest start, latest end
    assert len(row.samples) <= SAMPLES and row.cpus == 4 and row.samples[-1][1:] == (1.99, 50.0)
    text = json.dumps(timeline.to_dict())
    assert len(text) < 20_000, len(text)


def test_the_json_names_its_fields() -> None:
    data = json.loads(json.dumps(build_timeline(partial().events).to_dict()))
    assert data["version"] == 1 and data["hosts"] == 5 and data["rows"] == 5
    fields = data["fields"]["span"]
    late = next(
        dict(zip(fields, s, strict=True))
        for g in data["groups"]
        for r in g["rows"]
        for s in r["spans"]
        if r["hosts"] == "local-4" and s[0] == "wait"
    )
    assert late == {
        "kind": "wait",
        "start": 4.0,
        "end": 4.0,
        "outcome": "late",
        "name": "quorum",
        "info": "released before it arrived: passed late",
    }


def test_every_event_and_field_the_timeline_reads_is_emitted() -> None:
    table = emitted()
    wanted = []
    for name, fields in READS.items():
        try:
            got = fields_of(name, table)
        except KeyError:
            wanted.append(name)
            continue
        wanted += [f"{name}:{f}" for f in fields if got is not None and f not in got]
    assert wanted == []


# --- any event sequence -----------------------------------------------------------------------------------

_HOSTS = st.sampled_from([None, "", "local-1", "local-2", "a,b", "</script>", "x y"])
_data = st.dictionaries(
    st.sampled_from(sorted({f for fields in READS.values() for f in fields} | {"load1", "mem_total_mb", "cpus"})),
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-3, 10),
        st.floats(allow_nan=True, allow_infinity=True),
        st.text(max_size=8),
        st.lists(_HOSTS, max_size=3),
    ),
    max_size=5,
)
_event = st.tuples(
    st.sampled_from([*sorted(READS), "process.output", "nonsense"]),
    st.one_of(st.floats(-2, 12), st.just(math.nan), st.just(math.inf)),
    _HOSTS,
    st.sampled_from([None, WORK, "/a/b"]),
    st.sampled_from([None, 1, 2]),
    _data,
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_event, max_size=40), st.one_of(st.none(), st.floats(-5, 20)))
def test_any_event_sequence_gives_a_timeline_inside_the_run(raw: list[tuple[Any, ...]], now: float | None) -> None:
    events = [Event(name=n, at=T0 + dt, host=h, block=b, instance=i, data=d) for n, dt, h, b, i, d in raw]
    timeline = build_timeline(events, now=None if now is None else T0 + now)
    end = timeline.duration
    assert end >= 0
    seen: list[str] = []
    for group in timeline.groups:
        for row in group.rows:
            seen += row.hosts
            assert all(0 <= s.start <= s.end <= end for s in row.spans)
            assert all(0 <= m.at <= end for m in row.marks)
            assert all(0 <= at <= end for at, _, _ in row.samples) and len(row.samples) <= SAMPLES
    assert all(0 <= m.at <= end for m in timeline.marks)
    assert len(seen) == len(set(seen))
    run_wide = ("app.restarted", "app.aborted", "app.stopped", "barrier.start_released", "barrier.released")
    on_hosts = {e.host for e in events if e.host and math.isfinite(e.at) and e.name not in run_wide}
    assert set(seen) == on_hosts | {
        h
        for e in events
        if e.name == "barrier.released" and math.isfinite(e.at)
        for h in (e.data.get("hosts") if isinstance(e.data.get("hosts"), list) else [])
        if isinstance(h, str) and h
    } | {
        r
        for e in events
        if e.name == "host.rematched" and e.host and math.isfinite(e.at)
        for r in [e.data.get("replacement")]
        if isinstance(r, str) and r
    }
    json.dumps(timeline.to_dict(), allow_nan=False)
