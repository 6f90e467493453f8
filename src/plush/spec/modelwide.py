"""Validation rules that look at the whole model at once rather than at one object (used by ``validate``).

- :func:`number_findings`: every number anywhere in the model is finite and every whole number at most
  :data:`~plush.spec.model.MAX_INTEGER` in size (a walk over every dataclass field, so a field added later
  is covered without a new rule). It also returns the ids of the objects at fault, so that the per-object
  rules skip numbers that are out of range (a huge integer may not even print).
- :func:`barrier_cycle_finding`: no cycle of waits across component blocks. Blocks of one component block
  wait for their predecessors; a barrier that opens only when every host arrived joins its uses in every
  component block into one node (:func:`~plush.spec.dag.find_wait_cycle`). A cycle in that graph never
  ends: ``a: [b1, b2 after b1]`` with ``b: [b2, b1 after b2]``.

Pure, stdlib, Python 3.8; messages name the block path and the line of the object at fault.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, List, NamedTuple, Optional, Set, Tuple

from plush.spec import dag
from plush.spec.model import (
    MAX_INTEGER,
    Application,
    AttrRequirement,
    BarrierBlock,
    ComponentBlock,
    HostCount,
    ProcessBlock,
    Project,
    Where,
    WorkflowBlock,
)
from plush.spec.paths import BlockPath, check_name

__all__ = ["Finding", "barrier_cycle_finding", "number_findings"]

_BLOCKS = (ComponentBlock, ProcessBlock, BarrierBlock, WorkflowBlock)


class Finding(NamedTuple):
    """One problem: where the object at fault was written, what is wrong, its block path, a hint."""

    where: Optional[Where]
    message: str
    block: Optional[BlockPath] = None
    hint: Optional[str] = None


def number_findings(project: Project) -> Tuple[List[Finding], Set[int]]:
    """Numbers out of range, and the ids of the model objects that hold them."""
    found: List[Finding] = []
    bad: Set[int] = set()
    _numbers(project, project.where, None, "", found, bad)
    return found, bad


def _numbers(
    obj: Any, where: Optional[Where], block: Optional[BlockPath], label: str, found: List[Finding], bad: Set[int]
) -> None:
    if isinstance(obj, Application):
        block = obj.path if check_name(obj.name) else None
    elif isinstance(obj, _BLOCKS) and block is not None and check_name(obj.name):
        block = block / obj.name
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        name = "" if isinstance(value, _BLOCKS) else _label(obj, f.name, label)
        for item in value if isinstance(value, tuple) else (value,):
            if dataclasses.is_dataclass(item) and not isinstance(item, (type, Where)):
                inner = name if item is value else ""
                _numbers(item, getattr(item, "where", None) or where, block, inner, found, bad)
        if isinstance(value, bool):
            continue
        if isinstance(value, int) and abs(value) > MAX_INTEGER:
            bad.add(id(obj))
            digits = int(value.bit_length() * 0.30103) + 1
            message = "{} is too large: a whole number of about {} digits (at most {})"
            found.append(Finding(where, message.format(name, digits, MAX_INTEGER), block))
        elif isinstance(value, float) and not math.isfinite(value):
            bad.add(id(obj))
            found.append(Finding(where, "{} must be a finite number, not {}".format(name, value), block))


def _label(obj: Any, field: str, outer: str) -> str:
    """How a numeric field reads in a message: ``timeout``, ``num_hosts max``, ``require cpu_mhz min``."""
    if isinstance(obj, HostCount):
        return "num_hosts " + field
    if isinstance(obj, AttrRequirement):
        return "require {} {}".format(obj.attr, field)
    return outer + " " + field if outer else field


def waits_for_all(b: BarrierBlock) -> bool:
    """True for a barrier that opens only when every live expected host arrived (or by hand)."""
    partial = b.max is not None or b.timeout is not None or b.adaptive
    return b.kind == "barrier" and not partial and (b.threshold is None or b.threshold >= 1)


def barrier_cycle_finding(project: Project) -> Optional[Finding]:
    """The first cycle of waits across component blocks through barriers that wait for every host, or None.

    A cycle through a barrier that may open without every host (``max``, ``threshold`` < 1, ``timeout``,
    ``adaptive``) or through a semaphore is not reported: whether it ends depends on host counts and time.
    """
    app = project.application
    if not check_name(app.name):
        return None
    cbs = [cb for cb in app.component_blocks if check_name(cb.name)]
    joined = {
        (cb.name, b.name)
        for cb in cbs
        for b in cb.blocks
        if isinstance(b, BarrierBlock) and waits_for_all(b) and check_name(b.name)
    }
    found = dag.find_wait_cycle([(cb.name, cb.blocks) for cb in cbs], joined)
    if found is None:
        return None
    waits: List[dag.Wait] = found
    # start the story in the first component block (in spec order) that the cycle enters
    rank = {cb.name: i for i, cb in enumerate(cbs)}
    entries = [i for i in range(len(waits)) if waits[i - 1][0] != waits[i][0]] or [0]
    k = min(entries, key=lambda i: rank[waits[i][0]])
    segments: List[Tuple[str, List[str]]] = []
    for group, waiter, waited in waits[k:] + waits[:k]:
        if segments and segments[-1][0] == group and segments[-1][1][-1] == waiter:
            segments[-1][1].append(waited)
        else:
            segments.append((group, [waiter, waited]))
    by_name = {cb.name: cb for cb in cbs}
    cb, name = min(
        ((by_name[g], n) for g, names in segments for n in names), key=lambda s: _line(s[0].block(s[1]).where)
    )
    return Finding(
        cb.block(name).where,
        "barriers wait for each other across component blocks: {} (each waits for the next; none opens)".format(
            "; ".join("{}: {}".format(app.path / g, " after ".join(names)) for g, names in segments)
        ),
        app.path / cb.name / name if check_name(name) else app.path / cb.name,
        "pass shared barriers in the same order in every component block, or give one a timeout",
    )


def _line(where: Optional[Where]) -> Tuple[int, int]:
    if where is None or where.line is None:
        return (1 << 62, 0)
    return (where.line, where.column or 0)
