"""A run's events paired into spans and marks per host: the first half of :mod:`plush.controller.timeline`.

Role: :class:`SpanBuilder` takes a run's events in journal order (times already known to be finite) and keeps,
per host (:class:`HostSpans`), the :class:`Span`\\ s, :class:`Mark`\\ s and samples the timeline draws, plus the
marks of the whole run; :mod:`plush.controller.timeline` folds them into rows. Pure: no clock, no I/O.

Pairing, in journal order (times are seconds from the run's start, clamped to ``[0, duration]``):

- ``process``: ``process.started`` (host, block, instance) -> ``process.exited``: ``ok`` (success), ``killed``
  (a signal, or stopped by Plush), ``failed`` (any other exit);
- ``wait``: ``barrier.arrived`` / ``barrier.waiting`` -> ``barrier.released`` naming the host (``released``),
  ``barrier.admitted`` (``admitted``), ``barrier.late`` (``late``);
- ``install``: ``host.prepared`` (else ``host.joined``) -> ``host.installed`` (``ok``), ``host.install_failed``
  (``failed``).

A span still open when its host fails or leaves ends there as ``lost``; one open at the end of the journal
ends with the run as ``open`` (:meth:`SpanBuilder.finish`). An end without its start is a span of no length.
Marks of a host: ``late`` (a late pass of a released barrier), ``failed``, ``limits``, ``restart``
(``host.restarted``, ``block.restarted``), ``rematch`` (on the lost host and on its replacement), ``dropped``,
``disconnect``, ``reconnect``, ``liveness``; of the whole run: ``start`` (the start barrier), ``release`` (a
barrier released), ``restart`` (``app.restarted``), ``abort``, ``stop``. ``host.sample`` (what
plush.hostmon.sample.HostSample sends: ``load1``, ``mem_total_mb``, ``mem_available_mb``, ``cpus``) gives
``(at, load, memory used %)`` at the controller's time of the event.

Invariants: total over any event (payloads are not trusted: a field of the wrong type is ignored, a label is
cut to :data:`LABEL` characters); every span has ``start <= end``, both in ``[0, duration]``.

About 400 lines: one handler per event kind of the table above, which read best side by side.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
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

__all__ = ["LABEL", "READS", "EventLike", "HostSpans", "Mark", "Span", "SpanBuilder", "text"]

#: labels are cut to this many characters
LABEL = 160

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


def text(value: Any) -> str:
    """``value`` as a label: a string of at most :data:`LABEL` characters (``None``: empty)."""
    told = "" if value is None else str(value)
    return told if len(told) <= LABEL else told[: LABEL - 1] + "…"


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
        return f"signal {text(data.get('signal'))}"
    if data.get("code") is not None:
        return f"exit {text(data.get('code'))}"
    return "exited"


@dataclass(slots=True)
class HostSpans:
    """One host's spans, marks and samples so far, and what is open (processes, waits, an install)."""

    name: str
    component: str | None = None
    #: the component block of its first block event (``/app/CB/...``): its group when no event names a component
    #: (a run of ``plush serve`` on hosts that joined before it)
    block_component: str | None = None
    spans: list[Span] = field(default_factory=list)
    marks: list[Mark] = field(default_factory=list)
    samples: list[tuple[float, float | None, float | None]] = field(default_factory=list)
    cpus: int | None = None
    processes: dict[tuple[str, int | None], tuple[float, str]] = field(default_factory=dict)
    waits: dict[str, float] = field(default_factory=dict)
    install: float | None = None  # host.prepared
    joined: float | None = None

    def close_all(self, at: float, outcome: str) -> None:
        """End every open span at ``at`` with ``outcome`` (``lost``: the host is gone; ``open``: the end)."""
        for (block, _), (start, info) in self.processes.items():
            self.spans.append(Span("process", start, max(start, at), outcome, block, info))
        for barrier, start in self.waits.items():
            self.spans.append(Span("wait", start, max(start, at), outcome, barrier))
        if self.install is not None:
            self.spans.append(Span("install", self.install, max(self.install, at), outcome, "install"))
        self.processes, self.waits, self.install, self.joined = {}, {}, None, None


class SpanBuilder:
    """Feed it a run's events in order (:meth:`event`), then :meth:`finish`; read ``hosts`` and ``marks``."""

    def __init__(self, t0: float, duration: float) -> None:
        self.t0, self.duration = t0, duration
        self.hosts: dict[str, HostSpans] = {}
        self.marks: list[Mark] = []

    def time(self, at: float) -> float:
        return round(min(max(at - self.t0, 0.0), self.duration), 3)

    def host(self, name: Any) -> HostSpans | None:
        if not isinstance(name, str) or not name:
            return None
        host = self.hosts.get(name)
        if host is None:
            host = self.hosts[name] = HostSpans(name)
        return host

    def event(self, ev: EventLike) -> None:
        at = self.time(ev.at)
        data: Mapping[str, Any] = ev.data if isinstance(ev.data, Mapping) else {}
        name = ev.name
        if name == BARRIER_RELEASED:
            hosts = data.get("hosts")
            names = [h for h in hosts if isinstance(h, str)] if isinstance(hosts, list) else []
            barrier, reason = text(data.get("barrier")), text(data.get("reason"))
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
        if host.block_component is None and isinstance(ev.block, str) and ev.block.count("/") >= 2:
            host.block_component = text(ev.block.split("/")[2]) or None
        handler = _HANDLERS.get(name)
        if handler is not None:
            handler(self, host, ev, at, data)

    def finish(self) -> None:
        for host in self.hosts.values():
            host.close_all(self.duration, "open")


def _process_started(b: SpanBuilder, host: HostSpans, ev: EventLike, at: float, data: Mapping[str, Any]) -> None:
    key = (text(ev.block), ev.instance if isinstance(ev.instance, int) else None)
    previous = host.processes.pop(key, None)
    if previous is not None:  # started again without an exit: the first one's end is unknown
        host.spans.append(Span("process", previous[0], max(previous[0], at), "lost", key[0], previous[1]))
    host.processes[key] = (at, f"#{key[1]}" if key[1] is not None else "")


def _process_exited(b: SpanBuilder, host: HostSpans, ev: EventLike, at: float, data: Mapping[str, Any]) -> None:
    key = (text(ev.block), ev.instance if isinstance(ev.instance, int) else None)
    start, number = host.processes.pop(key, (at, f"#{key[1]}" if key[1] is not None else ""))
    info = ", ".join(x for x in (number, _exit_text(data)) if x)
    host.spans.append(Span("process", start, max(start, at), _process_outcome(data), key[0], info))


def _arrived(b: SpanBuilder, host: HostSpans, ev: EventLike, at: float, data: Mapping[str, Any]) -> None:
    host.waits.setdefault(text(data.get("barrier")), at)


def _passed(b: SpanBuilder, host: HostSpans, ev: EventLike, at: float, data: Mapping[str, Any]) -> None:
    barrier = text(data.get("barrier"))
    start = host.waits.pop(barrier, at)
    outcome = "late" if ev.name == BARRIER_LATE else "admitted"
    info = "released before it arrived: passed late" if outcome == "late" else ""
    host.spans.append(Span("wait", start, max(start, at), outcome, barrier, info))
    if outcome == "late":
        host.marks.append(Mark("late", at, f"passed {barrier} late"))


def _joined(b: SpanBuilder, host: HostSpans, ev: EventLike, at: float, data: Mapping[str, Any]) -> None:
    host.joined = at


def _prepared(b: SpanBuilder, host: HostSpans, ev: EventLike, at: float, data: Mapping[str, Any]) -> None:
    host.install = at


def _installed(b: SpanBuilder, host: HostSpans, ev: EventLike, at: float, data: Mapping[str, Any]) -> None:
    begun = host.install if host.install is not None else host.joined if host.joined is not None else at
    if ev.name == HOST_INSTALLED:
        software = data.get("software")
        info = ", ".join(text(s) for s in software) if isinstance(software, list) else ""
        host.spans.append(Span("install", begun, max(begun, at), "ok", "install", text(info)))
    else:
        info = f"{text(data.get('software'))}: {text(data.get('reason'))}"
        host.spans.append(Span("install", begun, max(begun, at), "failed", "install", text(info)))
    host.install = host.joined = None


def _lost(b: SpanBuilder, host: HostSpans, ev: EventLike, at: float, data: Mapping[str, Any]) -> None:
    host.close_all(at, "lost")
    if ev.name == HOST_FAILED:
        host.marks.append(Mark("failed", at, f"host failed: {text(data.get('reason'))}"))


def _mark(b: SpanBuilder, host: HostSpans, ev: EventLike, at: float, data: Mapping[str, Any]) -> None:
    name = ev.name
    if name == HOST_RESTARTED:
        host.marks.append(Mark("restart", at, f"host restarted: {text(data.get('reason'))}"))
    elif name == BLOCK_RESTARTED:
        host.marks.append(Mark("restart", at, f"{text(ev.block)} restarted: {text(data.get('reason'))}"))
    elif name == HOST_OVER_LIMITS:
        reasons = data.get("reasons")
        told = "; ".join(text(r) for r in reasons) if isinstance(reasons, list) else ""
        host.marks.append(Mark("limits", at, text(f"over its limits: {told}")))
    elif name == HOST_DROPPED:
        host.marks.append(Mark("dropped", at, f"dropped: {text(data.get('reason'))}"))
    elif name == HOST_DISCONNECTED:
        host.marks.append(Mark("disconnect", at, f"disconnected: {text(data.get('reason'))}"))
    elif name == HOST_RECONNECTED:
        down = _number(data.get("down_for"))
        host.marks.append(Mark("reconnect", at, "reconnected" + (f" after {down:.1f}s" if down is not None else "")))
    elif name == PROCESS_LIVENESS_FAILED:
        host.marks.append(Mark("liveness", at, f"{text(ev.block)}: liveness failed: {text(data.get('reason'))}"))


def _rematched(b: SpanBuilder, host: HostSpans, ev: EventLike, at: float, data: Mapping[str, Any]) -> None:
    replacement = b.host(data.get("replacement"))
    host.marks.append(Mark("rematch", at, f"replaced by {text(data.get('replacement'))}"))
    if replacement is not None and replacement is not host:
        replacement.marks.append(Mark("rematch", at, f"replaces {host.name}"))
        if replacement.component is None:
            replacement.component = host.component


def _sample(b: SpanBuilder, host: HostSpans, ev: EventLike, at: float, data: Mapping[str, Any]) -> None:
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


_HANDLERS: dict[str, Any] = {
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
    reason = text(data.get("reason"))
    if name == BARRIER_START_RELEASED:
        return f"every host installed: the application starts ({text(data.get('hosts'))} hosts)"
    if name == APP_RESTARTED:
        on = f" ({text(host)})" if host else ""
        return text(f"application restarted (#{text(data.get('count'))}){on}: {reason}")
    if name == APP_ABORTED:
        return text(f"run aborted: {reason}")
    return text(f"run stopped: {reason}")
