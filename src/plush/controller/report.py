"""The failure report of a run: what failed, where, why, what Plush did, and what to do next.

:func:`build_report` reads a run's events (the journal, or the bus history) and returns a
:class:`FailureReport`; ``plush run`` writes it as ``report.txt`` and ``report.json`` in the run directory
(:func:`write_report`) and prints its text when a run fails. Theory of operation, in passes over the events:

1. **Occurrences.** Each failure event becomes one occurrence: a process exit that is not a success (kind
   ``exit`` or ``signal``; ``liveness`` when a ``process.liveness_failed`` for the same process came first),
   ``block.failed`` (kind ``block``; dropped when it only repeats a process exit of that block on that host),
   ``host.failed`` (``host``), ``host.over_limits`` (``limits``; the ``host.failed`` that follows it is the
   same failure), ``host.install_failed`` (``install``) and ``work.failed`` (``work``). A later
   ``host.restarted`` / ``host.rematched`` gives a host failure its action (and its replacement).
2. **Root cause.** The first occurrence that decides an abort (an exit whose action is ``abort``, a failed
   block, a failed install, or -- in a run that failed -- a lost host that was not replaced) is the root cause.
   Without one, an ``app.aborted`` or a failed ``run.finished`` supplies a synthetic root (kind ``run``).
3. **Cascade.** Exits whose action is ``stopped`` (Plush stopped the process) are never failures; exits whose
   action is ``unhandled`` (the process exited by itself while Plush stopped its block) always are. After the
   abort decision (or the ``stopping`` mark of ``run.finished`` timings) the stop kills processes and hosts go
   away: signal exits, exits with no action, host losses, block and work failures that come later are the
   cascade and are left out. The same holds inside a ``restart_application`` window (from the decision to
   ``app.restarted``).
4. **Recovery.** A restarted process whose block later succeeds on the same host is *recovered*.
5. **Folding.** Identical occurrences (same kind, block path, status, action, rule and recovery) fold into
   one :class:`FailureEntry` with a :class:`~plush.resources.hostset.HostSet`, like ClusterShell's MsgTree.

Invariants: :func:`build_report` is pure (no clock, no I/O) and total over any event sequence; a run whose
``run.finished`` says ok is ``ok`` whatever the entries (ignored and recovered failures stay listed); a run
stopped on request (``app.stopped``, ``run.finished`` with ``stopped``) is ``stopped``, has no root cause, and
what its stop killed is cascade;
``FailureReport.from_dict(r.to_dict()) == r`` and ``to_dict()`` is JSON-ready.

The module is longer than most (~650 lines) because the passes, the hints and the text rendering share
the same small model and read best side by side; each part is a separate section.
"""

from __future__ import annotations

import json
import signal as _signal
import textwrap
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from plush.controller.catalogue import (
    APP_ABORTED,
    APP_RESTARTED,
    APP_STOPPED,
    BLOCK_COMPLETED,
    BLOCK_FAILED,
    HOST_FAILED,
    HOST_INSTALL_FAILED,
    HOST_OVER_LIMITS,
    HOST_REMATCHED,
    HOST_RESTARTED,
    PROCESS_EXITED,
    PROCESS_LIVENESS_FAILED,
    RUN_FINISHED,
    RUN_STARTED,
    WORK_FAILED,
)
from plush.controller.events import Event
from plush.controller.journal import read_events
from plush.controller.rundir import RunDir
from plush.controller.runstatus import RunState, read_status
from plush.processes.policy import STOPPED, SUCCESS, UNHANDLED
from plush.resources.hostset import HostSet

__all__ = [
    "EXIT_STATUS",
    "READS",
    "FailureEntry",
    "FailureReport",
    "build_report",
    "load_report",
    "read_run",
    "write_report",
]

#: how many lines of a process's stderr an entry keeps
STDERR_LINES = 10

#: what Plush did, in words, per action
DID = {
    "restart_process": "restarted the process",
    "restart_application": "restarted the application",
    "abort": "aborted the run",
    "ignore": "ignored the failure",
    "rematch": "replaced the host",
    "restart_host": "restarted the host's agent",
    UNHANDLED: "nothing: it exited by itself while Plush was stopping its block",
}
_PROCESS_KINDS = ("exit", "signal", "liveness")
#: per host, the (block path, event index) of every success: a process exit 0 or a completed block
_Successes = dict[str | None, list[tuple[str | None, int]]]
_RESTARTS = ("restart_process", "restart_application")

#: every event the report reads, with the ``data`` fields it reads of it (tests/controller/test_event_names.py
#: checks that some emitter produces each, so a renamed event or field breaks a test, not the report)
READS: dict[str, tuple[str, ...]] = {
    RUN_STARTED: ("run",),
    RUN_FINISHED: ("ok", "stopped", "reason", "timings"),
    APP_ABORTED: ("reason", "host", "block"),
    APP_RESTARTED: (),
    APP_STOPPED: (),
    PROCESS_EXITED: ("code", "signal", "action", "rule", "stderr_tail"),
    PROCESS_LIVENESS_FAILED: ("reason",),
    BLOCK_COMPLETED: (),
    BLOCK_FAILED: ("reason", "action"),
    HOST_FAILED: ("reason",),
    HOST_OVER_LIMITS: ("reasons",),
    HOST_INSTALL_FAILED: ("software", "reason"),
    HOST_REMATCHED: ("replacement",),
    HOST_RESTARTED: (),
    WORK_FAILED: ("item",),
}


@dataclass(frozen=True, slots=True, kw_only=True)
class FailureEntry:
    """One failure, or identical failures on many hosts folded under one host set."""

    kind: str  # exit | signal | liveness | block | host | limits | install | work | run
    first_at: float
    last_at: float
    first_host: str | None
    hosts: HostSet
    block: str | None
    status: str
    instances: tuple[int, ...] = ()
    count: int = 1
    code: int | None = None
    signal: int | None = None
    reason: str | None = None
    rule: str | None = None
    action: str | None = None
    recovered: bool = False
    stderr_tail: tuple[str, ...] = ()
    stderr_host: str | None = None
    replacements: tuple[tuple[str, str], ...] = ()
    items: tuple[str, ...] = ()
    hint: str = ""

    @property
    def did(self) -> str:
        """What Plush did about it, in words."""
        text = DID.get(self.action or "", "nothing (the run went on)")
        if self.replacements:
            text += " (" + ", ".join(f"{old} -> {new}" for old, new in self.replacements) + ")"
        return text + (", and it recovered" if self.recovered else "")

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "first_at": self.first_at,
            "last_at": self.last_at,
            "first_host": self.first_host,
            "hosts": str(self.hosts),
            "host_count": len(self.hosts),
            "block": self.block,
            "status": self.status,
            "instances": list(self.instances),
            "count": self.count,
            "code": self.code,
            "signal": self.signal,
            "reason": self.reason,
            "rule": self.rule,
            "action": self.action,
            "did": self.did,
            "recovered": self.recovered,
            "stderr_tail": list(self.stderr_tail),
            "stderr_host": self.stderr_host,
            "replacements": [list(pair) for pair in self.replacements],
            "items": list(self.items),
            "hint": self.hint,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FailureEntry:
        return cls(
            kind=data["kind"],
            first_at=data["first_at"],
            last_at=data["last_at"],
            first_host=data.get("first_host"),
            hosts=HostSet.parse(data.get("hosts", "")),
            block=data.get("block"),
            status=data["status"],
            instances=tuple(data.get("instances", ())),
            count=data.get("count", 1),
            code=data.get("code"),
            signal=data.get("signal"),
            reason=data.get("reason"),
            rule=data.get("rule"),
            action=data.get("action"),
            recovered=data.get("recovered", False),
            stderr_tail=tuple(data.get("stderr_tail", ())),
            stderr_host=data.get("stderr_host"),
            replacements=tuple((old, new) for old, new in data.get("replacements", ())),
            items=tuple(data.get("items", ())),
            hint=data.get("hint", ""),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class FailureReport:
    """Every failure of a run, the root cause first. ``render_text()`` for people, ``to_dict()`` for tools."""

    run_id: str | None
    ok: bool
    finished: bool
    reason: str | None = None
    #: the run was stopped on request (Ctrl-C, ``quit``): its normal end, not a failure
    stopped: bool = False
    started_at: float | None = None
    finished_at: float | None = None
    app_restarts: int = 0
    root_cause: FailureEntry | None = None
    entries: tuple[FailureEntry, ...] = ()
    #: for a run that has not finished: True while its controller holds it, False once it is gone (dead),
    #: None when unknown (a report built from events alone)
    live: bool | None = None
    #: the controller's process id, when known
    pid: int | None = None

    @property
    def outcome(self) -> str:
        """``ok`` | ``failed`` | ``running`` | ``dead`` (controller gone before the end) | ``unfinished``."""
        if not self.finished:
            return "unfinished" if self.live is None else "running" if self.live else "dead"
        if self.stopped and not self.ok:
            return "stopped"
        return "ok" if self.ok else "failed"

    @property
    def exit_status(self) -> int:
        """The exit status of ``plush report`` for this run (docs/commands.md)."""
        return EXIT_STATUS[self.outcome]

    @property
    def duration(self) -> float | None:
        if self.started_at is None or self.finished_at is None:
            return None
        return max(0.0, self.finished_at - self.started_at)

    def to_dict(self) -> dict[str, Any]:
        return {
            "run": self.run_id,
            "ok": self.ok,
            "finished": self.finished,
            "stopped": self.stopped,
            "outcome": self.outcome,
            "reason": self.reason,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "duration": self.duration,
            "app_restarts": self.app_restarts,
            "live": self.live,
            "pid": self.pid,
            "root_cause": self.root_cause.to_dict() if self.root_cause is not None else None,
            "entries": [entry.to_dict() for entry in self.entries],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FailureReport:
        root = data.get("root_cause")
        return cls(
            run_id=data.get("run"),
            ok=data["ok"],
            finished=data.get("finished", True),
            stopped=data.get("stopped", False),
            reason=data.get("reason"),
            started_at=data.get("started_at"),
            finished_at=data.get("finished_at"),
            app_restarts=data.get("app_restarts", 0),
            live=data.get("live"),
            pid=data.get("pid"),
            root_cause=FailureEntry.from_dict(root) if root is not None else None,
            entries=tuple(FailureEntry.from_dict(e) for e in data.get("entries", ())),
        )

    def render_text(self, width: int = 100) -> str:
        return _render(self, width)


# --- building -----------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Occ:
    """One failure as it happened (before folding)."""

    index: int
    kind: str
    at: float
    host: str | None
    block: str | None
    instance: int | None = None
    code: int | None = None
    signal: int | None = None
    reason: str | None = None
    rule: str | None = None
    action: str | None = None
    stderr_tail: tuple[str, ...] = ()
    software: str | None = None
    item: str | None = None
    replacement: str | None = None
    recovered: bool = False
    cascade: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def status(self) -> str:
        if self.kind == "exit":
            return f"exit {self.code}" if self.code is not None else "exited"
        if self.kind == "signal":
            return f"killed by {signal_name(self.signal)}"
        if self.kind == "liveness":
            killed = f", killed by {signal_name(self.signal)}" if self.signal is not None else ""
            return f"liveness check failed: {self.reason or 'no reason given'}{killed}"
        if self.kind == "block":
            return f"block failed: {self.reason or 'no reason given'}"
        if self.kind == "host":
            return f"host lost: {self.reason or 'no reason given'}"
        if self.kind == "limits":
            return f"over limits: {self.reason or 'no reason given'}"
        if self.kind == "install":
            return f"install of {self.software!r} failed"
        if self.kind == "work":
            return "task failed"
        return self.reason or "failed"


def signal_name(number: int | None) -> str:
    """``9`` -> ``"SIGKILL (9)"``."""
    if number is None:
        return "a signal"
    try:
        return f"{_signal.Signals(number).name} ({number})"
    except ValueError:
        return f"signal {number}"


def _tail(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    lines = [str(line) for line in value] if isinstance(value, list | tuple) else str(value).splitlines()
    return tuple(line.rstrip("\n") for line in lines[-STDERR_LINES:])


def _under(path: str | None, block: str | None) -> bool:
    """True when ``path`` is ``block`` or inside it."""
    if path is None or block is None:
        return False
    return path == block or path.startswith(block.rstrip("/") + "/")


def _collect(events: Sequence[Event]) -> tuple[list[_Occ], _Successes]:
    """Pass 1: occurrences, and the indexes where each (host, block) succeeded."""
    occs: list[_Occ] = []
    successes: _Successes = {}
    liveness: dict[tuple[str | None, str | None], _Occ] = {}
    over_limits: dict[str | None, _Occ] = {}  # per host: an over-limits failure whose host.failed is to come
    for i, ev in enumerate(events):
        d = ev.data
        if ev.name == PROCESS_EXITED:
            code, sig, action = d.get("code"), d.get("signal"), d.get("action")
            if action == SUCCESS or (code == 0 and sig is None and action is None):
                successes.setdefault(ev.host, []).append((ev.block, i))
                continue
            if action == STOPPED:  # Plush stopped it (the run ended, a sibling failed): not a failure
                continue
            occ = _Occ(i, "signal" if sig is not None else "exit", ev.at, ev.host, ev.block, ev.instance)
            occ.code, occ.signal, occ.action, occ.rule = code, sig, action, d.get("rule")
            occ.stderr_tail = _tail(d.get("stderr_tail"))
            probe = liveness.pop((ev.host, ev.block), None)
            if probe is not None and probe.instance in (None, ev.instance):
                occ.kind, occ.reason = "liveness", probe.reason
            occs.append(occ)
        elif ev.name == PROCESS_LIVENESS_FAILED:
            liveness[(ev.host, ev.block)] = _Occ(i, "liveness", ev.at, ev.host, ev.block, ev.instance)
            liveness[(ev.host, ev.block)].reason = d.get("reason")
        elif ev.name == BLOCK_COMPLETED:
            successes.setdefault(ev.host, []).append((ev.block, i))
        elif ev.name == BLOCK_FAILED:
            occs.append(_Occ(i, "block", ev.at, ev.host, ev.block, reason=d.get("reason"), action=d.get("action")))
        elif ev.name == HOST_FAILED:
            over = over_limits.pop(ev.host, None)
            if over is not None:  # the failure that host.over_limits announced: one failure, not two
                over.extra["failed_at"] = i
                continue
            occs.append(_Occ(i, "host", ev.at, ev.host, None, reason=d.get("reason")))
        elif ev.name == HOST_OVER_LIMITS:
            reasons = d.get("reasons")
            text = ", ".join(map(str, reasons)) if isinstance(reasons, list) else reasons
            over_limits[ev.host] = _Occ(i, "limits", ev.at, ev.host, None, reason=text)
            occs.append(over_limits[ev.host])
        elif ev.name == HOST_INSTALL_FAILED:
            occs.append(_Occ(i, "install", ev.at, ev.host, None, reason=d.get("reason"), software=d.get("software")))
        elif ev.name == WORK_FAILED:
            occs.append(_Occ(i, "work", ev.at, ev.host, ev.block, item=str(d.get("item"))))
    # liveness failures never followed by an exit still count
    occs.extend(liveness.values())
    occs.sort(key=lambda o: o.index)
    return occs, successes


def _merge_block_failures(occs: list[_Occ]) -> list[_Occ]:
    """Pass 1b: a ``block.failed`` that repeats a process failure of that block on that host is dropped."""
    kept: list[_Occ] = []
    open_failures: dict[str | None, list[_Occ]] = {}  # per host: process failures no block.failed claimed yet
    for occ in occs:
        if occ.kind in _PROCESS_KINDS and occ.action not in ("ignore", "restart_process", UNHANDLED):
            open_failures.setdefault(occ.host, []).append(occ)
        elif occ.kind == "block":
            pending = open_failures.get(occ.host, [])
            source = next((p for p in reversed(pending) if _under(p.block, occ.block)), None)
            if source is not None:
                pending.remove(source)
                continue
        kept.append(occ)
    return kept


def _host_actions(occs: list[_Occ], events: Sequence[Event]) -> None:
    """Pass 1c: a lost host is restarted or rematched by a later ``host.restarted`` / ``host.rematched``."""
    per_host: dict[str | None, list[tuple[int, Event]]] = {}
    for i, ev in enumerate(events):
        if ev.name in (HOST_REMATCHED, HOST_RESTARTED, HOST_FAILED, HOST_OVER_LIMITS):
            per_host.setdefault(ev.host, []).append((i, ev))
    for occ in occs:
        if occ.kind not in ("host", "limits") or occ.action is not None:
            continue
        for i, ev in per_host.get(occ.host, ()):
            if i <= occ.index or i == occ.extra.get("failed_at"):
                continue
            if ev.name == HOST_REMATCHED:
                occ.action, occ.replacement = "rematch", str(ev.data.get("replacement", "?"))
                break
            if ev.name == HOST_RESTARTED:
                occ.action = "restart_host"
                break
            if ev.name in (HOST_FAILED, HOST_OVER_LIMITS):
                break


def _decides_abort(occ: _Occ, run_failed: bool) -> bool:
    if occ.kind in _PROCESS_KINDS:
        return occ.action == "abort"
    if occ.kind == "block":
        return occ.action in (None, "abort")
    if occ.kind == "install":
        return True
    if occ.kind in ("host", "limits"):
        return run_failed and occ.action is None
    return False


def _is_cascade(occ: _Occ, *, in_restart_window: bool) -> bool:
    """Would this occurrence, coming after a stop decision, be a consequence of the stop?"""
    if occ.action == UNHANDLED:  # it exited by itself, not because of the stop
        return False
    if occ.kind in ("exit", "signal"):
        return occ.signal is not None or occ.action is None
    if occ.kind == "block":
        return True
    return not in_restart_window and occ.kind in ("host", "limits", "install", "work")


def _stop_index(events: Sequence[Event], started: Event | None, finished: Event | None) -> int | None:
    """Index of the first event at or after the ``stopping`` mark of the run's timings, when known."""
    if started is None or finished is None:
        return None
    timings = finished.data.get("timings")
    stopping = timings.get("stopping") if isinstance(timings, dict) else None
    if not isinstance(stopping, int | float):
        return None
    stop_at = started.at + stopping
    return next((i for i, ev in enumerate(events) if ev.at >= stop_at and ev.name != RUN_FINISHED), None)


def _recovered(occ: _Occ, successes: _Successes) -> bool:
    return any(i > occ.index and _under(occ.block, block) for block, i in successes.get(occ.host, ()))


# --- hints --------------------------------------------------------------------------------------------


def _hosts_dir(root: Path | None, host: str | None) -> Path:
    base = (root or Path()) / "hosts"
    return base / host if host else base


def _log_path(root: Path | None, occ: _Occ) -> str:
    if occ.host is None or occ.block is None:
        return str(_hosts_dir(root, occ.host) / "logs")
    try:
        return str(RunDir(root or Path(), "").log(occ.host, occ.block, occ.instance or 1, "stderr"))
    except ValueError:
        return str(_hosts_dir(root, occ.host) / "logs")


def _hint(occ: _Occ, root: Path | None) -> str:
    """What the user can do next about this kind of failure."""
    log = _log_path(root, occ)
    agent_log = _hosts_dir(root, occ.host) / "agent.log"
    if occ.kind in ("exit", "signal") and occ.recovered:
        return f"recovered after a restart; if it keeps happening see {log}"
    if occ.kind in ("exit", "signal") and occ.action == "ignore":
        return f"ignored by the rule {occ.rule!r}; nothing to do unless it is unexpected (output in {log})"
    if occ.kind in ("exit", "signal") and "spent" in (occ.rule or ""):
        return f"it kept failing after its restarts: see {log}; fix the cause, or raise max_restarts of {occ.block}"
    if occ.kind == "exit":
        return f'see {log}; if exit {occ.code} is expected, add an exit_policy (match "{occ.code}") to {occ.block}'
    if occ.kind == "signal":
        return (
            f"see {log}; check who killed it (memory limits, the kernel log: dmesg), "
            'or add an exit_policy (match "signal")'
        )
    if occ.kind == "liveness":
        return f"check the liveness command of {occ.block} or raise its interval/timeout (output in {log})"
    if occ.kind == "block":
        return f"see the logs under {_hosts_dir(root, occ.host) / 'logs'} and {agent_log}"
    if occ.kind == "host" and occ.action == "rematch":
        return f"the run went on on {occ.replacement}; check {occ.host} and {agent_log} before using it again"
    if occ.kind == "host":
        return f"check the host and its agent log ({agent_log}); add spare hosts to the pool to allow a rematch"
    if occ.kind == "limits":
        return "the host went over its load/memory limits: relax the component's requirements or use other hosts"
    if occ.kind == "install":
        return f"check the software {occ.software!r} (source, checksum, install command) and {agent_log}"
    if occ.kind == "work":
        return f"see the task's output under {_hosts_dir(root, occ.host) / 'logs'}"
    reason = (occ.reason or "").lower()
    if "did not join" in reason:
        return f"check the agent.log of those hosts under {_hosts_dir(root, None)}"
    if "interrupted" in reason:
        return "the run was stopped by the user; run it again when ready"
    return f"see the journal and the logs under {_hosts_dir(root, None)}"


# --- folding ------------------------------------------------------------------------------------------


def _entry(group: list[_Occ], root: Path | None) -> FailureEntry:
    first = group[0]
    with_tail = next((o for o in group if o.stderr_tail), None)
    return FailureEntry(
        kind=first.kind,
        first_at=min(o.at for o in group),
        last_at=max(o.at for o in group),
        first_host=first.host,
        hosts=HostSet(o.host for o in group if o.host is not None),
        block=first.block,
        status=first.status,
        instances=tuple(sorted({o.instance for o in group if o.instance is not None})),
        count=len(group),
        code=first.code,
        signal=first.signal,
        reason=first.reason,
        rule=first.rule,
        action=first.action,
        recovered=first.recovered,
        stderr_tail=with_tail.stderr_tail if with_tail else (),
        stderr_host=with_tail.host if with_tail else None,
        replacements=tuple(
            sorted({(o.host, o.replacement) for o in group if o.host is not None and o.replacement is not None})
        ),
        items=tuple(dict.fromkeys(o.item for o in group if o.item is not None)),
        hint=_hint(first, root),
    )


def build_report(events: Sequence[Event], *, rundir_root: Path | None = None) -> FailureReport:
    """Group every failure of a run; name the root cause of an aborted run first. Pure.

    ``rundir_root`` makes the log paths of the hints absolute; without it they are relative to the run
    directory (``hosts/<host>/logs/...``).
    """
    started = next((e for e in events if e.name == RUN_STARTED), None)
    finished = next((e for e in reversed(events) if e.name == RUN_FINISHED), None)
    aborted = next((i for i, e in enumerate(events) if e.name == APP_ABORTED), None)
    app_restarts = [i for i, e in enumerate(events) if e.name == APP_RESTARTED]
    run_ok = finished is not None and bool(finished.data.get("ok")) and aborted is None
    run_stopped = finished is not None and bool(finished.data.get("stopped")) and aborted is None
    requested = next((i for i, e in enumerate(events) if e.name == APP_STOPPED), None)

    occs, successes = _collect(events)
    occs = _merge_block_failures(occs)
    _host_actions(occs, events)
    for occ in occs:
        if occ.kind in _PROCESS_KINDS and occ.action in _RESTARTS:
            occ.recovered = _recovered(occ, successes)

    def honoured(occ: _Occ) -> bool:  # a restart_application that the controller carried out
        return any(i > occ.index for i in app_restarts)

    root: _Occ | None = None
    if not run_ok and not run_stopped:
        root = next(
            (
                o
                for o in occs
                if _decides_abort(o, run_failed=True)
                or (o.action == "restart_application" and not o.recovered and not honoured(o))
            ),
            None,
        )
        if root is not None:
            root.action = "abort"  # what Plush did, whatever was asked (a lost host, an unhonoured restart)

    decisions = [i for i in (root.index if root else None, aborted, requested) if i is not None]
    decided = min(decisions) if decisions else None  # events after it are late
    stopped = _stop_index(events, started, finished)  # events from it on are late
    windows = [
        (o.index, next(i for i in app_restarts if i > o.index))
        for o in occs
        if o.action == "restart_application" and honoured(o)
    ]
    for occ in occs:
        if occ is root:
            continue
        in_window = any(lo < occ.index <= hi for lo, hi in windows)
        late = (decided is not None and occ.index > decided) or (stopped is not None and occ.index >= stopped)
        if (late or in_window) and _is_cascade(occ, in_restart_window=in_window and not late):
            occ.cascade = True

    groups: dict[tuple[Any, ...], list[_Occ]] = {}
    for occ in occs:
        if not occ.cascade:
            key = (occ.kind, occ.block, occ.status, occ.action, occ.rule, occ.recovered)
            groups.setdefault(key, []).append(occ)
    entries = [_entry(group, rundir_root) for group in groups.values()]
    root_entry = next((e for e, g in zip(entries, groups.values(), strict=True) if root in g), None)

    if root_entry is None and not run_ok and not run_stopped and (finished is not None or aborted is not None):
        index = aborted if aborted is not None else max(i for i, e in enumerate(events) if e is finished)
        source = events[index]
        host, block = source.data.get("host"), source.data.get("block")
        reason = str(source.data.get("reason") or "the run failed")
        synthetic = _Occ(index, "run", source.at, host, block, reason=reason, action="abort")
        root_entry = replace(_entry([synthetic], rundir_root), status=reason)
        entries.append(root_entry)
    entries.sort(key=lambda e: e.first_at)

    return FailureReport(
        run_id=str(started.data["run"]) if started is not None and "run" in started.data else None,
        ok=run_ok,
        finished=finished is not None,
        stopped=run_stopped,
        reason=str(finished.data.get("reason") or "") or None if finished is not None else None,
        started_at=started.at if started is not None else None,
        finished_at=finished.at if finished is not None else None,
        app_restarts=len(app_restarts),
        root_cause=root_entry,
        entries=tuple(entries),
    )


# --- text ---------------------------------------------------------------------------------------------

#: ``plush report``'s exit status per outcome (docs/commands.md); 2 is for errors (no such run, bad journal)
EXIT_STATUS = {"ok": 0, "stopped": 0, "failed": 1, "running": 3, "dead": 4, "unfinished": 4}

_UNFINISHED = {
    "running": "The run has not finished: its controller (pid {pid}) is still running it.",
    "dead": "The run did not finish: its controller (pid {pid}) is gone; the journal ends where it stopped.",
    "unfinished": "The run has not finished (the journal has no end).",
}


def _int_ranges(numbers: Sequence[int]) -> str:
    """``[1, 2, 3, 7]`` -> ``"1-3,7"``."""
    runs: list[list[int]] = []
    for n in numbers:
        if runs and n == runs[-1][1] + 1:
            runs[-1][1] = n
        else:
            runs.append([n, n])
    return ",".join(str(lo) if lo == hi else f"{lo}-{hi}" for lo, hi in runs)


def _when(at: float, start: float | None) -> str:
    if start is None:
        return time.strftime("%H:%M:%S", time.gmtime(at)) + f".{int(at % 1 * 1000):03d}Z"
    return f"+{at - start:.3f}s"


def _entry_lines(entry: FailureEntry, start: float | None, width: int, indent: str) -> list[str]:
    when = _when(entry.first_at, start)
    if entry.last_at > entry.first_at:
        when += ".." + _when(entry.last_at, start)
    where = str(entry.hosts) or "(no host)"
    times = f" ({entry.count} times)" if entry.count > 1 else ""
    head = f"[{when}] {entry.status} on {where}{times}"
    if entry.block:
        head += f" in {entry.block}"
        if entry.instances:
            head += " #" + _int_ranges(entry.instances)
    deeper = indent + "    "
    out = textwrap.wrap(head, width, initial_indent=indent, subsequent_indent=deeper) or [indent]
    facts = []
    if entry.rule:
        facts.append(f"rule: {entry.rule}")
    facts.append(f"Plush {entry.did}")
    out += textwrap.wrap("; ".join(facts), width, initial_indent=deeper, subsequent_indent=deeper)
    if entry.items:
        out += textwrap.wrap(
            "items: " + ", ".join(entry.items), width, initial_indent=deeper, subsequent_indent=deeper + "  "
        )
    if entry.reason and entry.reason not in entry.status:
        out += textwrap.wrap("reason: " + entry.reason, width, initial_indent=deeper, subsequent_indent=deeper)
    if entry.stderr_tail:
        count = len(entry.stderr_tail)
        out.append(f"{deeper}stderr of {entry.stderr_host} (last {count} line{'' if count == 1 else 's'}):")
        room = max(20, width - len(deeper) - 4)
        for line in entry.stderr_tail:
            out.append(f"{deeper}  | " + (line if len(line) <= room else line[: room - 3] + "..."))
    if entry.hint:
        out += textwrap.wrap("next: " + entry.hint, width, initial_indent=deeper, subsequent_indent=deeper + "  ")
    return out


def _render(report: FailureReport, width: int) -> str:
    duration = f" after {report.duration:.1f}s" if report.duration is not None else ""
    lines = [f"Plush run {report.run_id or '(unknown)'}: {report.outcome.upper()}{duration}"]
    if report.started_at is not None:
        lines.append("  started " + time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(report.started_at)))
    if report.reason:
        lines += textwrap.wrap("reason: " + report.reason, width, initial_indent="  ", subsequent_indent="    ")
    if report.app_restarts:
        lines.append(f"  the application was restarted {report.app_restarts} time(s)")
    if report.root_cause is not None:
        lines += ["", "Root cause:"]
        lines += _entry_lines(report.root_cause, report.started_at, width, "  ")
    if not report.finished:
        lines += ["", _UNFINISHED[report.outcome].format(pid=report.pid or "?")]
    if not report.entries:
        lines += ["", "No failures." if report.finished else "Nothing has failed so far."]
    else:
        recovered = sum(1 for e in report.entries if e.recovered)
        note = f", {recovered} recovered" if recovered else ""
        so_far = "" if report.finished else " so far"
        lines += ["", f"Failures{so_far} ({len(report.entries)}{note}), by time:"]
        for number, entry in enumerate(report.entries, 1):
            body = _entry_lines(entry, report.started_at, width, " " * 5)
            lines.append(f"{number:>3}. " + body[0][5:])
            if entry == report.root_cause:  # told in full above
                lines.append(" " * 9 + "the root cause (above)")
            else:
                lines += body[1:]
    return "\n".join(lines)


# --- files --------------------------------------------------------------------------------------------


def write_report(rundir_root: Path, report: FailureReport, *, mode: str = "private") -> tuple[Path, Path]:
    """Write ``report.txt`` and ``report.json`` into the run directory (``mode``: its results mode); returns
    their paths."""
    rundir = RunDir(rundir_root, "", mode)
    text_path = rundir.write_file("report.txt", (report.render_text() + "\n").encode())
    json_path = rundir.write_file("report.json", (json.dumps(report.to_dict(), indent=2) + "\n").encode())
    return text_path, json_path


def read_run(journal_path: Path) -> tuple[list[Event], RunState]:
    """The events of the run whose journal is ``journal_path``, completed by its status file: a run whose
    journal ends early (its last writes failed) but whose status says how it ended gets that end as a
    ``run.finished`` event; and that status. Raises :class:`~plush.controller.journal.JournalError`."""
    events = read_events(journal_path)
    status = read_status(journal_path.parent)
    if status.state in _ENDED and not any(e.name == RUN_FINISHED for e in events):
        at = status.at if status.at is not None else (events[-1].at if events else 0.0)
        ok, stopped = status.state == "completed", status.state == "stopped"
        events.append(Event(name=RUN_FINISHED, at=at, data={"ok": ok, "stopped": stopped, "reason": status.reason}))
    return events, status


def load_report(journal_path: Path, run: tuple[list[Event], RunState] | None = None) -> FailureReport:
    """The report of the run whose journal is ``journal_path`` (log paths under the journal's directory), from
    :func:`read_run` (or what it gave: ``run``).

    A run that did not finish is ``running`` while its controller holds the status file's lock and ``dead``
    once nobody does."""
    events, status = run if run is not None else read_run(journal_path)
    report = build_report(events, rundir_root=journal_path.parent)
    if report.finished:
        return report
    return replace(report, live=status.held is True, pid=status.pid)


#: states of the status file that end a run
_ENDED = ("completed", "failed", "stopped")
