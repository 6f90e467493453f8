"""The event catalogue: every event the controller emits, by name, with what it is about and carries.

Role: the one list of events (issue 8). Each name is a constant here (``PROCESS_EXITED = "process.exited"``)
and an :class:`EventKind` in :data:`CATALOGUE` that says which columns it fills (``about``: ``host``,
``block``, ``instance``), the fields of its ``data`` (its payload: name -> kind, as the journal stores them),
and how it travels: *journaled* (every event but process output) and *lossy* (process output: a slow
subscriber loses it first, the synchronous sinks such as a log writer never do). Emitters name events by
these constants; the journal (what it stores), the failure report (what it reads) and the console (what it
prints) read them from here; docs/operations.md's table is this catalogue (a test keeps them equal).

Invariants: names are unique and ``<area>.<what>``; a payload field is declared once per event; an emitter
sends no field its event does not declare (tests/controller/test_event_names.py). Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

__all__ = [
    "AGENT_LOG",
    "APP_ABORTED",
    "APP_LOADED",
    "APP_RESTARTED",
    "APP_STOPPED",
    "BARRIER_ADMITTED",
    "BARRIER_ARRIVED",
    "BARRIER_LATE",
    "BARRIER_RELEASED",
    "BARRIER_START_RELEASED",
    "BARRIER_WAITING",
    "BLOCK_COMPLETED",
    "BLOCK_FAILED",
    "BLOCK_RESTARTED",
    "BLOCK_SKIPPED",
    "BLOCK_STARTED",
    "CATALOGUE",
    "FILE_SENT",
    "HOST_DISCONNECTED",
    "HOST_DROPPED",
    "HOST_FAILED",
    "HOST_FINISHED",
    "HOST_INSTALLED",
    "HOST_INSTALL_FAILED",
    "HOST_JOINED",
    "HOST_LEFT",
    "HOST_OVER_LIMITS",
    "HOST_PREPARED",
    "HOST_RECONNECTED",
    "HOST_REMATCHED",
    "HOST_RESTARTED",
    "HOST_SAMPLE",
    "OUTPUT_COLLECTED",
    "OUTPUT_WRITE_FAILED",
    "POOL_REFRESHED",
    "PROCESS_EXITED",
    "PROCESS_LIVENESS_FAILED",
    "PROCESS_OUTPUT",
    "PROCESS_STARTED",
    "RUN_FINISHED",
    "RUN_STARTED",
    "RUN_STORAGE_FAILED",
    "WORK_DONE",
    "WORK_FAILED",
    "WORK_TAKEN",
    "EventKind",
    "block_event",
    "journaled",
    "lossy",
]

#: a payload field's kind: JSON kinds, ``bytes`` (process output only, never journaled), ``any``
FieldKind = Literal["str", "int", "number", "bool", "object", "array", "any", "bytes", "str|null", "int|null"]


@dataclass(frozen=True, slots=True)
class EventKind:
    """One event of the catalogue."""

    name: str
    #: which of the event's columns it fills: a subset of ("host", "block", "instance")
    about: tuple[str, ...] = ()
    #: its payload: data field -> kind; ``None``: free-form (a host monitor sample)
    fields: MappingProxyType[str, FieldKind] | None = field(default_factory=lambda: MappingProxyType({}))
    #: stored in the run's journal (every event but process output)
    journaled: bool = True
    #: a slow subscriber may lose it (process output); sinks never do
    lossy: bool = False


def _kind(
    name: str,
    about: str = "",
    fields: dict[str, FieldKind] | None = None,
    *,
    free: bool = False,
    journaled: bool = True,
    lossy: bool = False,
) -> EventKind:
    return EventKind(
        name,
        tuple(a for a in about.split(",") if a),
        None if free else MappingProxyType(dict(fields or {})),
        journaled,
        lossy,
    )


RUN_STARTED = "run.started"
RUN_FINISHED = "run.finished"
RUN_STORAGE_FAILED = "run.storage_failed"
HOST_JOINED = "host.joined"
HOST_LEFT = "host.left"
HOST_PREPARED = "host.prepared"
HOST_INSTALLED = "host.installed"
HOST_INSTALL_FAILED = "host.install_failed"
HOST_FINISHED = "host.finished"
HOST_SAMPLE = "host.sample"
HOST_OVER_LIMITS = "host.over_limits"
HOST_FAILED = "host.failed"
HOST_RESTARTED = "host.restarted"
HOST_REMATCHED = "host.rematched"
HOST_DROPPED = "host.dropped"
HOST_DISCONNECTED = "host.disconnected"
HOST_RECONNECTED = "host.reconnected"
AGENT_LOG = "agent.log"
FILE_SENT = "file.sent"
BARRIER_START_RELEASED = "barrier.start_released"
BARRIER_ARRIVED = "barrier.arrived"
BARRIER_RELEASED = "barrier.released"
BARRIER_LATE = "barrier.late"
BARRIER_ADMITTED = "barrier.admitted"
BARRIER_WAITING = "barrier.waiting"
BLOCK_STARTED = "block.started"
BLOCK_COMPLETED = "block.completed"
BLOCK_FAILED = "block.failed"
BLOCK_SKIPPED = "block.skipped"
BLOCK_RESTARTED = "block.restarted"
PROCESS_STARTED = "process.started"
PROCESS_LIVENESS_FAILED = "process.liveness_failed"
PROCESS_EXITED = "process.exited"
PROCESS_OUTPUT = "process.output"
OUTPUT_COLLECTED = "output.collected"
OUTPUT_WRITE_FAILED = "output.write_failed"
WORK_TAKEN = "work.taken"
WORK_DONE = "work.done"
WORK_FAILED = "work.failed"
APP_LOADED = "app.loaded"
APP_RESTARTED = "app.restarted"
APP_ABORTED = "app.aborted"
APP_STOPPED = "app.stopped"
POOL_REFRESHED = "pool.refreshed"

_BLOCK: dict[str, FieldKind] = {"reason": "str", "action": "str"}
_WORK: dict[str, FieldKind] = {"item": "any", "accepted": "bool"}

#: every event, by name
CATALOGUE: MappingProxyType[str, EventKind] = MappingProxyType(
    {
        k.name: k
        for k in (
            _kind(RUN_STARTED, "", {"run": "str", "hosts": "int"}),
            _kind(RUN_FINISHED, "", {"ok": "bool", "stopped": "bool", "reason": "str", "timings": "object"}),
            _kind(RUN_STORAGE_FAILED, "", {"path": "str", "error": "str"}),
            _kind(HOST_JOINED, "host", {"component": "str|null"}),
            _kind(HOST_LEFT, "host", {"reason": "str"}),
            _kind(HOST_PREPARED, "host"),
            _kind(HOST_INSTALLED, "host", {"software": "array"}),
            _kind(HOST_INSTALL_FAILED, "host", {"software": "str", "reason": "str"}),
            _kind(HOST_FINISHED, "host", {"ok": "bool"}),
            _kind(HOST_SAMPLE, "host", free=True),
            _kind(HOST_OVER_LIMITS, "host", {"reasons": "array"}),
            _kind(HOST_FAILED, "host", {"reason": "str", "component": "str"}),
            _kind(HOST_RESTARTED, "host", {"component": "str", "reason": "str"}),
            _kind(HOST_REMATCHED, "host", {"replacement": "str", "component": "str", "reason": "str"}),
            _kind(HOST_DROPPED, "host", {"component": "str", "reason": "str"}),
            _kind(HOST_DISCONNECTED, "host", {"reason": "str", "window": "number"}),
            _kind(HOST_RECONNECTED, "host", {"replayed": "int", "received": "int", "down_for": "number"}),
            _kind(AGENT_LOG, "host", {"level": "str", "text": "str"}),
            _kind(FILE_SENT, "host", {"key": "str", "size": "int"}),
            _kind(BARRIER_START_RELEASED, "", {"hosts": "int"}),
            _kind(BARRIER_ARRIVED, "host,block", {"barrier": "str"}),
            _kind(BARRIER_RELEASED, "", {"barrier": "str", "reason": "str", "hosts": "array"}),
            _kind(BARRIER_LATE, "host", {"barrier": "str"}),
            _kind(BARRIER_ADMITTED, "host", {"barrier": "str"}),
            _kind(BARRIER_WAITING, "host", {"barrier": "str"}),
            _kind(BLOCK_STARTED, "host,block", _BLOCK),
            _kind(BLOCK_COMPLETED, "host,block", _BLOCK),
            _kind(BLOCK_FAILED, "host,block", _BLOCK),
            _kind(BLOCK_SKIPPED, "host,block", _BLOCK),
            _kind(BLOCK_RESTARTED, "host,block", _BLOCK),
            _kind(PROCESS_STARTED, "host,block,instance", {"pid": "int"}),
            _kind(PROCESS_LIVENESS_FAILED, "host,block,instance", {"reason": "str"}),
            _kind(
                PROCESS_EXITED,
                "host,block,instance",
                {
                    "code": "int|null",
                    "signal": "int|null",
                    "action": "str",
                    "rule": "str",
                    "stderr_tail": "str",
                },
            ),
            _kind(
                PROCESS_OUTPUT,
                "host,block,instance",
                {"stream": "str", "data": "bytes"},
                journaled=False,
                lossy=True,
            ),
            _kind(OUTPUT_COLLECTED, "host,block", {"name": "str", "size": "int", "ok": "bool"}),
            _kind(OUTPUT_WRITE_FAILED, "host,block,instance", {"path": "str", "error": "str"}),
            _kind(WORK_TAKEN, "host,block", {"item": "any"}),
            _kind(WORK_DONE, "host,block", _WORK),
            _kind(WORK_FAILED, "host,block", _WORK),
            _kind(APP_LOADED, "", {"application": "str", "spec": "str"}),
            _kind(APP_RESTARTED, "host,block", {"count": "int", "reason": "str"}),
            _kind(APP_ABORTED, "host,block", {"reason": "str", "host": "str|null", "block": "str|null"}),
            _kind(APP_STOPPED, "", {"reason": "str"}),
            _kind(POOL_REFRESHED, "", {"revived": "array", "added": "array", "live": "int"}),
        )
    }
)

_BLOCK_EVENTS = {
    "started": BLOCK_STARTED,
    "completed": BLOCK_COMPLETED,
    "failed": BLOCK_FAILED,
    "skipped": BLOCK_SKIPPED,
}
_NOT_JOURNALED = frozenset(k.name for k in CATALOGUE.values() if not k.journaled)
_LOSSY = frozenset(k.name for k in CATALOGUE.values() if k.lossy)


def block_event(state: str) -> str:
    """The event of a block that reached ``state`` (``started``, ``completed``, ``failed``, ``skipped``)."""
    return _BLOCK_EVENTS[state]


def journaled(name: str) -> bool:
    """Whether events named ``name`` are stored in the journal (unknown names are: nothing is lost)."""
    return name not in _NOT_JOURNALED


def lossy(name: str) -> bool:
    """Whether a slow subscriber may lose events named ``name``."""
    return name in _LOSSY
