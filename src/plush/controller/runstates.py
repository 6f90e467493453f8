"""What each host of the run has done so far: its phase and the state of each of its blocks, with the id of the
latest event it includes (``Controller.states()``, ``GET /v1/application/states``).

Role: the snapshot a client opened in the middle of a run starts from (the web UI's store), then follows the
event stream from its ``event`` on: :func:`run_states` reads the run engine's table of hosts
(:class:`~plush.controller.runstate.RunHosts`: each slot's ``blocks``, the path -> state its agent reported,
and ``ok`` once it finished) and the host lifecycle. Pure reader: changes nothing.

Invariants: the engine records a block's state and a host's end *before* it publishes their events, on the
event loop this runs on, so the snapshot holds exactly the events up to ``event`` (the latest journaled one)
and a stream resumed after it neither misses nor repeats one. A host's ``phase`` is one of ``idle`` (nothing
started yet, or the run ended -- ``run.finished`` -- before it finished: stopped, aborted), ``running``,
``done`` (it finished well), ``failed`` (its lifecycle failed or was replaced, it finished badly, or a block
of it failed); the rule :func:`phase_of` is the one the web UI's store applies to events (js/store.js). What
the run did to its hosts and work queues (failures' reasons, replacements, queues' progress) comes from the
Controller's :class:`~plush.controller.runledger.RunLedger`, a sink of the same bus: it holds the same events.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from plush.controller.catalogue import RUN_FINISHED, RUN_STARTED
from plush.controller.lifecycle import FAILED, REPLACED

if TYPE_CHECKING:
    from plush.controller.engine import RunEngine
    from plush.controller.events import Event
    from plush.controller.runledger import RunLedger

__all__ = ["PHASES", "phase_of", "run_states"]

PHASES = ("idle", "running", "done", "failed")


def phase_of(state: str, ok: bool | None, blocks: Mapping[str, str], over: bool = False) -> str:
    """A host's phase from its lifecycle ``state``, whether it finished ``ok``, its blocks' states, and whether
    its run is ``over`` (``run.finished`` was published)."""
    if state in (FAILED, REPLACED) or ok is False or "failed" in blocks.values():
        return "failed"
    if ok:
        return "done"
    return "running" if blocks and not over else "idle"


def run_states(engine: RunEngine | None, history: Iterable[Event], ledger: RunLedger | None = None) -> dict[str, Any]:
    """``{"event": SEQ, "finished": bool, "hosts": {host: {"phase", "blocks": {path: state}, "ok"}}, ...}`` of
    the run in progress or the last one (no host before the first run; ``finished``: its ``run.finished`` is
    out; ``ok``: how the host finished, null until it did), with ``ledger``'s fields (``replaced``,
    ``failures``, ``dropped``, ``restarts``, ``work``: :meth:`RunLedger.to_dict`, empty without it);
    ``history``: the bus's journaled events (SEQ: the latest)."""
    latest, marker, over = 0, None, False
    for event in history:
        latest = event.seq
        if event.name in (RUN_STARTED, RUN_FINISHED):
            marker = event.name
    hosts: dict[str, Any] = {}
    if engine is not None:
        # the run is over once run.finished is out (engine.finished comes earlier: the agents still stop then)
        over = marker == RUN_FINISHED if marker is not None else engine.finished
        for slot in engine.hosts.values():
            blocks = dict(slot.blocks)
            phase = phase_of(slot.state, slot.ok, blocks, over)
            hosts[slot.name] = {"phase": phase, "blocks": blocks, "ok": slot.ok}
    if ledger is None:
        from plush.controller.runledger import RunLedger

        ledger = RunLedger()
    return {"event": latest, "finished": engine is not None and over, "hosts": hosts, **ledger.to_dict()}
