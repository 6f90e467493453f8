"""The failure report of a run: what failed, where, why, what Plush did, and what to do next.

:func:`build_report` reads a run's events (the journal, or the bus history) and returns a
:class:`FailureReport`; ``plush run`` writes it as ``report.txt`` and ``report.json`` in the run directory
(:func:`write_report`) and prints its text when a run fails. Theory of operation, in passes over the events:

1. **Occurrences.** Each failure event becomes one occurrence: a process exit that is not a success (kind
   ``exit`` or ``signal``; ``liveness`` when a ``process.liveness_failed`` for the same process came first),
   ``block.failed`` (kind ``block``; dropped when it only repeats a process exit of that block on that host),
   ``host.failed`` (``host``), ``host.over_limits`` (``limits``), ``host.install_failed`` (``install``) and
   ``work.failed`` (``work``). A later ``host.restarted`` / ``host.rematched`` gives a host failure its action.
2. **Root cause.** The first occurrence that decides an abort (an exit whose action is ``abort``, a failed
   block, a failed install, or -- in a run that failed -- a lost host that was not replaced) is the root cause.
   Without one, an ``app.aborted`` or a failed ``run.finished`` supplies a synthetic root (kind ``run``).
3. **Cascade.** After the abort decision (or the ``stopping`` mark of ``run.finished`` timings) the stop
   kills processes and hosts go away: signal exits, exits with no action, host losses, block and work failures
   that come later are the cascade and are left out. The same holds inside a ``restart_application`` window
   (from the decision to ``app.restarted``).
4. **Recovery.** A restarted process whose block later succeeds on the same host is *recovered*.
5. **Folding.** Identical occurrences (same kind, block path, status, action, rule and recovery) fold into
   one :class:`FailureEntry` with a :class:`~plush.resources.hostset.HostSet`, like ClusterShell's MsgTree.

Invariants: :func:`build_report` is pure (no clock, no I/O) and total over any event sequence; a run whose
``run.finished`` says ok is ``ok`` whatever the entries (ignored and recovered failures stay listed);
``FailureReport.from_dict(r.to_dict()) == r`` and ``to_dict()`` is JSON-ready.
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

from plush.controller.events import Event
from plush.controller.journal import read_events
from plush.controller.rundir import RunDir
from plush.resources.hostset import HostSet

__all__ = ["FailureEntry", "FailureReport", "build_report", "load_report", "write_report"]

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
}
_PROCESS_KINDS = ("exit", "signal", "liveness")
_RESTARTS = ("restart_process", "restart_application")


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
    started_at: float | None = None
    finished_at: float | None = None
    app_restarts: int = 0
    root_cause: FailureEntry | None = None
    entries: tuple[FailureEntry, ...] = ()

    @property
    def outcome(self) -> str:
        if not self.finished:
            return "unfinished"
        return "ok" if self.ok else "failed"

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
            "outcome": self.outcome,
            "reason": self.reason,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "duration": self.duration,
            "app_restarts": self.app_restarts,
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
            reason=data.get("reason"),
            started_at=data.get("started_at"),
            finished_at=data.get("finished_at"),
            app_restarts=data.get("app_restarts", 0),
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
    lines = value.splitlines() if isinstance(value, str) else [str(line) for line in value]
    return tuple(line.rstrip("\n") for line in lines[-STDERR_LINES:])


def _under(path: str | None, block: str | None) -> bool:
    """True when ``path`` is ``block`` or inside it."""
    if path is None or block is None:
        return False
    return path == block or path.startswith(block.rstrip("/") + "/")


def _collect(events: Sequence[Event]) -> tuple[list[_Occ], dict[tuple[str | None, str | None], list[int]]]:
    """Pass 1: occurrences, and the indexes where each (host, block) succeeded."""
    occs: list[_Occ] = []
    successes: dict[tuple[str | None, str | None], list[int]] = {}
    liveness: dict[tuple[str | None, str | None], _Occ] = {}
    for i, ev in enumerate(events):
        d = ev.data
        if ev.name == "process.exited":
            code, sig, action = d.get("code"), d.get("signal"), d.get("action")
            if action == "success" or (code == 0 and sig is None and action is None):
                successes.setdefault((ev.host, ev.block), []).append(i)
                continue
            occ = _Occ(i, "signal" if sig is not None else "exit", ev.at, ev.host, ev.block, ev.instance)
            occ.code, occ.signal, occ.action, occ.rule = code, sig, action, d.get("rule")
            occ.stderr_tail = _tail(d.get("stderr_tail"))
            probe = liveness.pop((ev.host, ev.block), None)
            if probe is not None and probe.instance in (None, ev.instance):
                occ.kind, occ.reason = "liveness", probe.reason
            occs.append(occ)
        elif ev.name == "process.liveness_failed":
            liveness[(ev.host, ev.block)] = _Occ(i, "liveness", ev.at, ev.host, ev.block, ev.instance)
            liveness[(ev.host, ev.block)].reason = d.get("reason")
        elif ev.name == "block.completed":
            successes.setdefault((ev.host, ev.block), []).append(i)
        elif ev.name == "block.failed":
            occs.append(_Occ(i, "block", ev.at, ev.host, ev.block, reason=d.get("reason"), action=d.get("action")))
        elif ev.name == "host.failed":
            occs.append(_Occ(i, "host", ev.at, ev.host, None, reason=d.get("reason")))
        elif ev.name == "host.over_limits":
            reasons = d.get("reasons")
            text = ", ".join(map(str, reasons)) if isinstance(reasons, list) else reasons
            occs.append(_Occ(i, "limits", ev.at, ev.host, None, reason=text))
        elif ev.name == "host.install_failed":
            occs.append(
                _Occ(i, "install", ev.at, ev.host, None, reason=d.get("reason"), software=d.get("software"))
            )
        elif ev.name == "work.failed":
            occs.append(_Occ(i, "work", ev.at, ev.host, ev.block, item=str(d.get("item"))))
    # liveness failures never followed by an exit still count
    occs.extend(liveness.values())
    occs.sort(key=lambda o: o.index)
    return occs, successes


def _merge_block_failures(occs: list[_Occ]) -> list[_Occ]:
    """Pass 1b: a ``block.failed`` that repeats a process failure of that block on that host is dropped."""
    kept: list[_Occ] = []
    claimed: set[int] = set()
    for occ in occs:
        if occ.kind == "block":
            source = next(
                (
                    p
                    for p in reversed(kept)
                    if p.kind in _PROCESS_KINDS
                    and p.host == occ.host
                    and p.index not in claimed
                    and _under(p.block, occ.block)
                    and p.action not in ("ignore", "restart_process")
                ),
                None,
            )
            if source is not None:
                claimed.add(source.index)
                continue
        kept.append(occ)
    return kept


def _host_actions(occs: list[_Occ], events: Sequence[Event]) -> None:
    """Pass 1c: a lost host is restarted or rematched by a later ``host.restarted`` / ``host.rematched``."""
    for occ in occs:
        if occ.kind not in ("host", "limits") or occ.action is not None:
            continue
        for ev in events[occ.index + 1 :]:
            if ev.host != occ.host:
                continue
            if ev.name == "host.rematched":
                occ.action, occ.replacement = "rematch", str(ev.data.get("replacement", "?"))
                break
            if ev.name == "host.restarted":
                occ.action = "restart_host"
                break
            if ev.name in ("host.failed", "host.over_limits"):
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
