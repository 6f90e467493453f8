"""The barrier manager: every barrier and semaphore of a run, by name (pure, sans-I/O).

Role. The controller's run engine owns one :class:`BarrierManager` per run. It declares each barrier
name once per component block that uses it (the same name in several component blocks is ONE barrier
over all their hosts), feeds it what agents report — a host reached a barrier (:meth:`arrive`), a host
completed a semaphore's ``until`` block (:meth:`leave`), a host failed (:meth:`host_failed`), the user
typed ``release <barrier>`` (:meth:`force_release`) — and turns the returned events into messages:
``Released`` → "proceed" to each listed host, ``Admitted`` and ``PassedLate`` → "proceed" to that host,
``Waiting`` → nothing to send (status only).

Time. Nothing here reads a clock: every call takes ``now`` (seconds, any monotonic origin). Timed rules
(``timeout``, ``adaptive``) follow aioquic's pattern: after each call the engine re-arms one timer at
:meth:`get_timer` and, when it fires, calls :meth:`handle_timer` with the current time.

Restarts. A host that fails is no longer expected anywhere (:meth:`host_failed`); if the failure
manager restarts it or a rematched host replaces it, the engine calls :meth:`add_expected` for every
barrier of its component block, and the host walks its blocks again (arriving after a release, it passes
late). Arriving twice without that raises :class:`~plush.barriers.rules.BarrierError`. After a
``restart_app`` the engine builds a new manager.

The state machines themselves, their transition table and invariants, live in
:mod:`plush.barriers.gates`; the release rules in :mod:`plush.barriers.rules`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from plush.barriers.gates import BarrierGate, Gate, SemaphoreGate
from plush.barriers.rules import BarrierError, BarrierEvent, BarrierRule, ReleaseReason
from plush.spec.model import BarrierBlock

__all__ = ["BarrierManager", "BarrierSnapshot", "BarrierStatistics"]


@dataclass(frozen=True, slots=True, kw_only=True)
class BarrierSnapshot:
    """One barrier or semaphore as it stands; host tuples are in arrival order unless noted."""

    name: str
    rule: BarrierRule
    expected: tuple[str, ...]  # live expected hosts, sorted
    arrived: tuple[str, ...]  # live hosts that arrived (this incarnation)
    waiting: tuple[str, ...]  # held at the barrier (semaphore: queued, FIFO)
    admitted: tuple[str, ...]  # semaphore: inside the region now
    released: bool  # barrier opened (semaphore: forced open)
    released_at: float | None
    reason: ReleaseReason | None
    released_hosts: tuple[str, ...]  # the hosts the release let through
    late: tuple[str, ...]  # hosts that arrived after the release
    failed: tuple[str, ...]  # sorted
    first_arrival: float | None
    deadline: float | None  # when a timed rule opens it if nothing else happens


@dataclass(frozen=True, slots=True, kw_only=True)
class BarrierStatistics:
    """Counts over every barrier of the manager (trio's ``statistics()``)."""

    barriers: int
    semaphores: int
    released: int
    hosts_waiting: int
    hosts_admitted: int
    hosts_late: int
    next_deadline: float | None


class BarrierManager:
    """Every barrier of a run, by name. Synchronous; each call takes the current time."""

    def __init__(self) -> None:
        self._gates: dict[str, Gate] = {}

    # --- declaring -------------------------------------------------------------------------------

    def declare(self, name: str, rule: BarrierRule, expected_hosts: Iterable[str] = ()) -> None:
        """Declare barrier ``name`` (again, for another component block) and the hosts that will reach it.

        Declaring a known name adds its hosts; the rules must agree (the spec validator checks this too).
        """
        gate = self._gates.get(name)
        if gate is None:
            gate = SemaphoreGate(name, rule) if rule.is_semaphore else BarrierGate(name, rule)
            self._gates[name] = gate
        elif gate.rule != rule:
            raise BarrierError(
                f"declare: barrier {name!r} is declared with {rule.describe()} but was {gate.rule.describe()}; "
                "a barrier name must have the same rule in every component block",
                event="declare",
                barrier=name,
                state="declared",
            )
        for host in expected_hosts:
            gate.add_expected(host)

    def declare_block(self, block: BarrierBlock, expected_hosts: Iterable[str] = ()) -> None:
        """:meth:`declare` from a spec ``barrier_block``."""
        self.declare(block.name, BarrierRule.from_block(block), expected_hosts)

    def add_expected(self, name: str, host: str) -> None:
        """``host`` (rematched, or restarted after a failure) will reach barrier ``name``.

        A no-op for a host that is expected already, waiting or admitted. A host that had failed, or had
        passed, becomes expected again and may arrive once more.
        """
        self._gate(name, "add_expected", host).add_expected(host)

    # --- driving ---------------------------------------------------------------------------------

    def arrive(self, name: str, host: str, now: float) -> list[BarrierEvent]:
        """``host`` reached barrier ``name``: ``[Waiting]``, ``[Released]``, ``[Admitted]`` or ``[PassedLate]``."""
        return self._gate(name, "arrive", host).arrive(host, now)

    def leave(self, name: str, host: str, now: float) -> list[BarrierEvent]:
        """``host`` completed semaphore ``name``'s ``until`` block: frees its place, admits the next waiters."""
        return self._gate(name, "leave", host).leave(host, now)

    def host_failed(self, host: str, now: float) -> list[BarrierEvent]:
        """``host`` failed: no longer expected anywhere. May release barriers (reason ``failure``) and admit
        semaphore waiters into the places it held. Unknown hosts are ignored."""
        events: list[BarrierEvent] = []
        for gate in self._gates.values():
            events.extend(gate.fail(host, now))
        return events

    def force_release(self, name: str, now: float) -> list[BarrierEvent]:
        """The user releases barrier ``name`` now (a semaphore opens for good). Raises if already released."""
        return self._gate(name, "release", None).force(now)

    def get_timer(self) -> float | None:
        """The earliest time a timed rule (``timeout``, ``adaptive``) opens a barrier, or ``None``."""
        return min((d for d in (g.deadline() for g in self._gates.values()) if d is not None), default=None)

    def handle_timer(self, now: float) -> list[BarrierEvent]:
        """Release every barrier whose deadline is at or before ``now``; early calls release nothing."""
        events: list[BarrierEvent] = []
        for gate in self._gates.values():
            events.extend(gate.on_timer(now))
        return events

    # --- looking -----------------------------------------------------------------------------------

    def __contains__(self, name: object) -> bool:
        return name in self._gates

    def names(self) -> tuple[str, ...]:
        """Barrier names in declaration order."""
        return tuple(self._gates)

    def host_state(self, name: str, host: str) -> str:
        """``expected``, ``waiting``, ``released``, ``late``, ``admitted``, ``left``, ``failed`` or ``unknown``."""
        return self._gate(name, "host_state", host).state_of(host)

    def snapshot(self, name: str) -> BarrierSnapshot:
        g = self._gate(name, "snapshot", None)
        return BarrierSnapshot(
            name=g.name,
            rule=g.rule,
            expected=tuple(sorted(g.live)),
            arrived=tuple(g.arrived),
            waiting=tuple(g.waiting),
            admitted=g.admitted_hosts(),
            released=g.released,
            released_at=g.released_at,
            reason=g.reason,
            released_hosts=g.released_hosts,
            late=tuple(g.late),
            failed=tuple(sorted(h for h, s in g.hosts.items() if s == "failed")),
            first_arrival=g.first_arrival,
            deadline=g.deadline(),
        )

    def statistics(self) -> BarrierStatistics:
        gates = list(self._gates.values())
        return BarrierStatistics(
            barriers=sum(1 for g in gates if not g.rule.is_semaphore),
            semaphores=sum(1 for g in gates if g.rule.is_semaphore),
            released=sum(1 for g in gates if g.released),
            hosts_waiting=sum(len(g.waiting) for g in gates),
            hosts_admitted=sum(len(g.admitted_hosts()) for g in gates),
            hosts_late=sum(len(g.late) for g in gates),
            next_deadline=self.get_timer(),
        )

    def _gate(self, name: str, event: str, host: str | None) -> Gate:
        gate = self._gates.get(name)
        if gate is None:
            who = f" (host {host!r})" if host is not None else ""
            known = ", ".join(repr(n) for n in self._gates) or "none"
            raise BarrierError(
                f"{event}: no barrier named {name!r}{who}; declared barriers: {known}",
                event=event,
                barrier=name,
                host=host,
                state="undeclared",
            )
        return gate
