"""Per-name state machines of the barrier manager: :class:`BarrierGate` and :class:`SemaphoreGate`.

Theory of operation. A gate is one barrier name with its rule and, for every host it knows, a state.
It is driven by the :class:`~plush.barriers.manager.BarrierManager` with the current time and answers
with events; it never reads a clock and never does I/O. Hosts move through these states:

==============  ==============  =====================================================================
from            event           to
==============  ==============  =====================================================================
(unknown)       add_expected    expected
expected        arrive          waiting (barrier closed / semaphore full), late (barrier open),
                                admitted (semaphore place free)
waiting         release         released (barrier opened, or semaphore forced open)
waiting         place frees     admitted (semaphore, FIFO)
admitted        leave           left (frees the place)
any but failed  fail            failed (no longer expected; frees a semaphore place)
failed, released, late, left
                add_expected    expected (a restarted or rematched host walks its blocks again)
==============  ==============  =====================================================================

Any other transition raises :class:`~plush.barriers.rules.BarrierError` naming the event, barrier,
host and state: arriving when not expected, arriving twice, leaving a barrier that is not a semaphore,
leaving a semaphore one has not entered. Two transitions are deliberately harmless no-ops because
they race with failure handling: ``add_expected`` for a host that is expected, waiting or admitted,
and ``leave`` for a host that failed (its place was already freed) or that passed a forced-open
semaphore.

Invariants. A barrier is released at most once; after that every arrival is *late*. A released
barrier's ``Released`` lists exactly the live hosts that were waiting, in arrival order; each host is
released at most once per incarnation. Once every live expected host has arrived the barrier is
open (a dead host never blocks it). A semaphore holds at most ``capacity`` admitted hosts unless the
user forced it open, and admits waiters first in, first out.
"""

from __future__ import annotations

from bisect import insort
from itertools import pairwise
from typing import Literal

from plush.barriers.rules import (
    Admitted,
    BarrierError,
    BarrierEvent,
    BarrierRule,
    PassedLate,
    Released,
    ReleaseReason,
    Waiting,
    knee_deadline_from_gaps,
)

__all__ = ["BarrierGate", "Gate", "HostState", "SemaphoreGate"]

HostState = Literal["expected", "waiting", "released", "late", "admitted", "left", "failed"]

#: states from which ``add_expected`` makes a host expected again
_RESTARTABLE = frozenset({"failed", "released", "late", "left"})


class Gate:
    """What barriers and semaphores share: host states, arrivals, the live set, the release record."""

    def __init__(self, name: str, rule: BarrierRule) -> None:
        self.name = name
        self.rule = rule
        self.hosts: dict[str, HostState] = {}
        self.live: set[str] = set()  # hosts not failed: the expected hosts
        self.arrived: dict[str, float] = {}  # host -> arrival time, in arrival order (this incarnation)
        self.waiting: dict[str, float] = {}  # host -> arrival time, FIFO
        self.late: list[str] = []
        self.first_arrival: float | None = None
        self.released_at: float | None = None
        self.reason: ReleaseReason | None = None
        self.released_hosts: tuple[str, ...] = ()

    @property
    def released(self) -> bool:
        return self.released_at is not None

    def state_of(self, host: str) -> str:
        return self.hosts.get(host, "unknown")

    def add_expected(self, host: str) -> None:
        state = self.hosts.get(host)
        if state is None or state in _RESTARTABLE:
            self.hosts[host] = "expected"
            self.live.add(host)
            self.arrived.pop(host, None)

    def _error(self, event: str, host: str, state: str, why: str) -> BarrierError:
        return BarrierError(
            f"{event}: host {host!r} at {self.rule.kind} {self.name!r} is {state}: {why}",
            event=event,
            barrier=self.name,
            host=host,
            state=state,
        )

    def _accept_arrival(self, host: str, now: float) -> None:
        state = self.state_of(host)
        if state != "expected":
            why = {
                "unknown": "it is not one of the hosts expected here (declare it or add_expected first)",
                "failed": "it was declared failed (add_expected it again if it was restarted)",
            }.get(state, "it already arrived (a restarted host must be add_expected again first)")
            raise self._error("arrive", host, state, why)
        self.arrived[host] = now
        if self.first_arrival is None:
            self.first_arrival = now

    def _pass_late(self, host: str, now: float) -> list[BarrierEvent]:
        self.hosts[host] = "late"
        self.late.append(host)
        return [PassedLate(self.name, host, now)]

    def _mark_failed(self, host: str) -> str | None:
        """Mark ``host`` failed; return its previous state, or ``None`` if nothing changed."""
        state = self.hosts.get(host)
        if state is None or state == "failed":
            return None
        self.hosts[host] = "failed"
        self.live.discard(host)
        self.arrived.pop(host, None)
        self.waiting.pop(host, None)
        return state

    def _release_waiting(self, reason: ReleaseReason, now: float) -> Released:
        hosts = tuple(self.waiting)
        for host in hosts:
            self.hosts[host] = "released"
        self.waiting.clear()
        self.released_at = now
        self.reason = reason
        self.released_hosts = hosts
        return Released(self.name, hosts, reason, now)

    def force(self, now: float) -> list[BarrierEvent]:
        if self.released:
            raise BarrierError(
                f"release: {self.rule.kind} {self.name!r} was already released at {self.released_at:g} ({self.reason})",
                event="release",
                barrier=self.name,
                state="released",
            )
        return [self._release_waiting("forced", now)]

    def admitted_hosts(self) -> tuple[str, ...]:
        return ()

    # overridden
    def arrive(self, host: str, now: float) -> list[BarrierEvent]:
        raise NotImplementedError

    def leave(self, host: str, now: float) -> list[BarrierEvent]:
        raise self._error("leave", host, self.state_of(host), "only a semaphore is left (at its 'until' block)")

    def fail(self, host: str, now: float) -> list[BarrierEvent]:
        raise NotImplementedError

    def deadline(self) -> float | None:
        return None

    def on_timer(self, now: float) -> list[BarrierEvent]:
        return []


class BarrierGate(Gate):
    """An ordinary barrier: full, ``max``, ``threshold``, ``timeout`` and ``adaptive`` release."""

    def __init__(self, name: str, rule: BarrierRule) -> None:
        super().__init__(name, rule)
        # the adaptive rule's view of the waiting hosts: last arrival time and sorted gaps
        self._last: float | None = None
        self._gaps: list[float] = []

    def arrive(self, host: str, now: float) -> list[BarrierEvent]:
        self._accept_arrival(host, now)
        if self.released:
            return self._pass_late(host, now)
        self.hosts[host] = "waiting"
        self.waiting[host] = now
        if self.rule.adaptive:
            self._knee_add(now)
        reason = self.rule.count_reason(len(self.waiting), len(self.live))
        if reason is not None:
            return [self._release_waiting(reason, now)]
        return [Waiting(self.name, host, now)]

    def fail(self, host: str, now: float) -> list[BarrierEvent]:
        before = self._mark_failed(host)
        if before is None or self.released:
            return []
        if before == "waiting" and self.rule.adaptive:
            self._knee_rebuild()
        if self.rule.count_reason(len(self.waiting), len(self.live)) is not None:
            return [self._release_waiting("failure", now)]
        return []

    def deadline(self) -> float | None:
        return min(
            (d for d, _ in self._deadlines()),
            default=None,
        )

    def _deadlines(self) -> list[tuple[float, ReleaseReason]]:
        if self.released:
            return []
        found: list[tuple[float, ReleaseReason]] = []
        if self.rule.timeout is not None and self.first_arrival is not None:
            found.append((self.first_arrival + self.rule.timeout, "timeout"))
        if self.rule.adaptive and self._last is not None:
            knee = knee_deadline_from_gaps(self.rule, self._last, self._gaps, len(self.live))
            if knee is not None:
                found.append((knee, "adaptive"))
        return found

    def on_timer(self, now: float) -> list[BarrierEvent]:
        due = sorted(d for d in self._deadlines() if d[0] <= now)
        if not due:
            return []
        return [self._release_waiting(due[0][1], now)]

    def _knee_add(self, now: float) -> None:
        if self._last is None or now >= self._last:
            if self._last is not None:
                insort(self._gaps, now - self._last)
            self._last = now
        else:  # an arrival stamped earlier than the last one: recompute from scratch
            self._knee_rebuild()

    def _knee_rebuild(self) -> None:
        times = sorted(self.waiting.values())
        self._last = times[-1] if times else None
        self._gaps = sorted(b - a for a, b in pairwise(times))


class SemaphoreGate(Gate):
    """A semaphore: at most ``capacity`` hosts between the barrier and its ``until`` block, FIFO."""

    def __init__(self, name: str, rule: BarrierRule) -> None:
        super().__init__(name, rule)
        assert rule.capacity is not None
        self.capacity: int = rule.capacity
        self.admitted: dict[str, float] = {}  # host -> admission time
        self.peak = 0

    def admitted_hosts(self) -> tuple[str, ...]:
        return tuple(self.admitted)

    def arrive(self, host: str, now: float) -> list[BarrierEvent]:
        self._accept_arrival(host, now)
        if self.released:  # forced open
            return self._pass_late(host, now)
        if not self.waiting and len(self.admitted) < self.capacity:
            return [self._admit(host, now)]
        self.hosts[host] = "waiting"
        self.waiting[host] = now
        return [Waiting(self.name, host, now)]

    def leave(self, host: str, now: float) -> list[BarrierEvent]:
        state = self.state_of(host)
        if state == "admitted":
            del self.admitted[host]
            self.hosts[host] = "left"
            return self._admit_waiters(now)
        if state in ("failed", "released", "late"):
            return []  # its place was freed already, or it never held one (forced open)
        why = "it is waiting for a place" if state == "waiting" else "it never entered"
        raise self._error("leave", host, state, why)

    def fail(self, host: str, now: float) -> list[BarrierEvent]:
        if self._mark_failed(host) == "admitted":
            del self.admitted[host]
            return self._admit_waiters(now)
        return []

    def _admit(self, host: str, now: float) -> Admitted:
        self.hosts[host] = "admitted"
        self.admitted[host] = now
        self.peak = max(self.peak, len(self.admitted))
        return Admitted(self.name, host, now)

    def _admit_waiters(self, now: float) -> list[BarrierEvent]:
        events: list[BarrierEvent] = []
        while self.waiting and len(self.admitted) < self.capacity:
            host = next(iter(self.waiting))
            del self.waiting[host]
            events.append(self._admit(host, now))
        return events
