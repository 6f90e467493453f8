"""Release rules, events and errors of the barrier manager (pure: no I/O, no clock).

A :class:`BarrierRule` is the part of a ``barrier_block`` that decides *when* a barrier opens. It is
built from the spec model with :meth:`BarrierRule.from_block` and is the same wherever the barrier
name is used (``BarrierBlock.release_rule``). The functions here are pure: they take counts and
times and answer questions; :mod:`plush.barriers.manager` keeps the state.

Release conditions of an ordinary barrier (``kind="barrier"``), checked after every arrival, host
failure and timer, *whichever holds first* opens the barrier:

``all``        every live expected host has arrived (always in force: a dead host never blocks);
``max``        at least ``max`` hosts are waiting;
``threshold``  at least ``ceil(threshold * live expected)`` hosts are waiting (at least one);
``timeout``    ``timeout`` seconds have passed since the *first* arrival (even if that host failed);
``adaptive``   the knee of the arrival curve was passed (see :func:`knee_deadline`).

The adaptive knee rule. Arrivals at a barrier typically come as a burst (the healthy hosts) followed
by stragglers. Once *enough* hosts have arrived — at least ``max(knee_min_arrivals,
ceil(knee_min_fraction * live expected))`` — let ``m`` be the median gap between consecutive arrival
times so far (the burst's rhythm). If no further host arrives within ``max(knee_min_wait,
knee_factor * m)`` seconds after the last arrival, the burst is over and the rest are stragglers:
the barrier opens with reason ``adaptive``. Defaults: ``knee_factor=4``, ``knee_min_fraction=0.5``,
``knee_min_arrivals=2``, ``knee_min_wait=1.0`` s. The absolute floor keeps a burst of simultaneous
arrivals (median gap 0) from opening the barrier in the same instant; the median (not the mean) keeps
one early straggler from stretching the window.

Events are frozen values the run engine turns into messages to agents: :class:`Released` (the listed
hosts may proceed), :class:`Admitted` (a semaphore let the host in), :class:`PassedLate` (the host
arrived after the release and proceeds at once), :class:`Waiting` (the host must wait).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Literal

from plush.errors import PlushError
from plush.spec.model import BarrierBlock

__all__ = [
    "Admitted",
    "BarrierError",
    "BarrierEvent",
    "BarrierRule",
    "PassedLate",
    "ReleaseReason",
    "Released",
    "Waiting",
    "knee_deadline",
    "knee_deadline_from_gaps",
    "threshold_count",
]

ReleaseReason = Literal["all", "max", "threshold", "timeout", "adaptive", "forced", "failure"]

#: floating-point slack for ``threshold * hosts`` (0.28 * 25 is 7.000000000000001, which must mean 7)
_EPSILON = 1e-9


class BarrierError(PlushError):
    """An illegal barrier transition (or an invalid rule): names the event, barrier, host and state."""

    def __init__(
        self,
        message: str,
        *,
        event: str | None = None,
        barrier: str | None = None,
        host: str | None = None,
        state: str | None = None,
    ) -> None:
        super().__init__(message)
        self.event = event
        self.barrier = barrier
        self.host = host
        self.state = state


@dataclass(frozen=True, slots=True, kw_only=True)
class BarrierRule:
    """When a barrier opens (``kind="barrier"``) or how many it admits (``kind="semaphore"``)."""

    kind: Literal["barrier", "semaphore"] = "barrier"
    max: int | None = None
    threshold: float | None = None
    timeout: float | None = None
    adaptive: bool = False
    capacity: int | None = None
    knee_factor: float = 4.0
    knee_min_fraction: float = 0.5
    knee_min_arrivals: int = 2
    knee_min_wait: float = 1.0

    def __post_init__(self) -> None:
        problem = self._problem()
        if problem:
            raise BarrierError("invalid barrier rule: " + problem, event="declare", state="rule")

    def _problem(self) -> str | None:
        if self.kind not in ("barrier", "semaphore"):
            return f"kind must be 'barrier' or 'semaphore', not {self.kind!r}"
        if self.kind == "semaphore":
            if self.capacity is None or self.capacity < 1:
                return f"a semaphore needs a capacity of at least 1 (got {self.capacity!r})"
            if self.max is not None or self.threshold is not None or self.timeout is not None or self.adaptive:
                return "a semaphore takes only a capacity (no max, threshold, timeout or adaptive)"
            return None
        if self.capacity is not None:
            return "capacity is for semaphores only (type='semaphore')"
        if self.max is not None and self.max < 1:
            return f"max must be at least 1 (got {self.max})"
        if self.threshold is not None and not 0.0 < self.threshold <= 1.0:
            return f"threshold must be in (0, 1] (got {self.threshold})"
        if self.timeout is not None and not self.timeout > 0:
            return f"timeout must be positive seconds (got {self.timeout})"
        if self.knee_factor <= 0 or self.knee_min_wait < 0 or self.knee_min_arrivals < 2:
            return "knee_factor > 0, knee_min_wait >= 0 and knee_min_arrivals >= 2 are required"
        if not 0.0 <= self.knee_min_fraction <= 1.0:
            return f"knee_min_fraction must be in [0, 1] (got {self.knee_min_fraction})"
        return None

    @classmethod
    def from_block(
        cls,
        block: BarrierBlock,
        *,
        knee_factor: float = 4.0,
        knee_min_fraction: float = 0.5,
        knee_min_arrivals: int = 2,
        knee_min_wait: float = 1.0,
    ) -> BarrierRule:
        """The rule of a spec ``barrier_block``; the knee parameters are tuning, not spec."""
        if block.kind not in ("barrier", "semaphore"):
            raise BarrierError(
                f"barrier {block.name!r}: kind must be 'barrier' or 'semaphore', not {block.kind!r}",
                event="declare",
                barrier=block.name,
                state="rule",
            )
        try:
            return cls(
                kind="semaphore" if block.kind == "semaphore" else "barrier",
                max=block.max,
                threshold=block.threshold,
                timeout=block.timeout,
                adaptive=block.adaptive,
                capacity=block.capacity,
                knee_factor=knee_factor,
                knee_min_fraction=knee_min_fraction,
                knee_min_arrivals=knee_min_arrivals,
                knee_min_wait=knee_min_wait,
            )
        except BarrierError as exc:
            raise BarrierError(
                f"barrier {block.name!r}: {exc}", event="declare", barrier=block.name, state="rule"
            ) from None

    @property
    def is_semaphore(self) -> bool:
        return self.kind == "semaphore"

    def describe(self) -> str:
        """A short human form, e.g. ``barrier(max=2, timeout=30s)`` or ``semaphore(capacity=4)``."""
        if self.is_semaphore:
            return f"semaphore(capacity={self.capacity})"
        parts = []
        if self.max is not None:
            parts.append(f"max={self.max}")
        if self.threshold is not None:
            parts.append(f"threshold={self.threshold:g}")
        if self.timeout is not None:
            parts.append(f"timeout={self.timeout:g}s")
        if self.adaptive:
            parts.append(f"adaptive(k={self.knee_factor:g})")
        return "barrier(" + (", ".join(parts) or "all") + ")"

    def count_reason(self, waiting: int, expected: int) -> ReleaseReason | None:
        """The count rule that opens the barrier now, if any: ``all`` first, then ``max``, ``threshold``.

        ``waiting`` live hosts have arrived out of ``expected`` live expected hosts (arrived included).
        """
        if waiting <= 0:
            return None
        if waiting >= expected:
            return "all"
        if self.max is not None and waiting >= self.max:
            return "max"
        if self.threshold is not None and waiting >= threshold_count(self.threshold, expected):
            return "threshold"
        return None


def threshold_count(threshold: float, expected: int) -> int:
    """Hosts needed for ``threshold`` of ``expected``: ``ceil``, robust to float noise, at least 1."""
    return max(1, math.ceil(threshold * expected - _EPSILON))


def knee_deadline(rule: BarrierRule, arrival_times: Sequence[float], expected: int) -> float | None:
    """When the adaptive rule opens the barrier if nobody else arrives, or ``None`` if not yet eligible.

    ``arrival_times`` are the times of the live waiting hosts (any order); ``expected`` counts the live
    expected hosts. See the module docstring for the rule.
    """
    times = sorted(arrival_times)
    gaps = sorted(b - a for a, b in pairwise(times))
    return knee_deadline_from_gaps(rule, times[-1] if times else 0.0, gaps, expected)


def knee_deadline_from_gaps(
    rule: BarrierRule, last: float, sorted_gaps: Sequence[float], expected: int
) -> float | None:
    """:func:`knee_deadline` from the last arrival time and the *sorted* inter-arrival gaps (O(1))."""
    arrived = len(sorted_gaps) + 1 if sorted_gaps else 0
    needed = max(rule.knee_min_arrivals, math.ceil(rule.knee_min_fraction * expected - _EPSILON))
    if arrived < 2 or arrived < needed:
        return None
    k = len(sorted_gaps)
    half = k // 2
    median = sorted_gaps[half] if k % 2 else (sorted_gaps[half - 1] + sorted_gaps[half]) / 2.0
    return last + max(rule.knee_min_wait, rule.knee_factor * median)


@dataclass(frozen=True, slots=True)
class Released:
    """The barrier opened at ``at``; ``hosts`` (those waiting, in arrival order) may proceed now."""

    name: str
    hosts: tuple[str, ...]
    reason: ReleaseReason
    at: float


@dataclass(frozen=True, slots=True)
class PassedLate:
    """``host`` arrived after the release and proceeds at once; it is recorded as late."""

    name: str
    host: str
    at: float


@dataclass(frozen=True, slots=True)
class Admitted:
    """A semaphore admitted ``host`` into its region; it holds a place until it leaves or fails."""

    name: str
    host: str
    at: float


@dataclass(frozen=True, slots=True)
class Waiting:
    """``host`` arrived and must wait (barrier not open yet, or semaphore full)."""

    name: str
    host: str
    at: float


BarrierEvent = Released | PassedLate | Admitted | Waiting
