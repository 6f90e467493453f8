"""Hypothesis stateful tests of the barrier manager, the semaphore and the workflow queue.

Each machine keeps an independent model and checks the manager's events against it after every step.
The engine's timer loop is simulated as the run engine will do it: after every call, if ``get_timer()``
is due, call ``handle_timer``; moving the clock fires each deadline at its own time.
"""

from __future__ import annotations

import math
import statistics
from collections import deque
from fractions import Fraction
from itertools import pairwise

import pytest
from barrier_clock import FakeClock
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from plush.barriers import (
    Admitted,
    BarrierError,
    BarrierEvent,
    BarrierManager,
    BarrierRule,
    PassedLate,
    Released,
    Waiting,
    WorkQueue,
)

FAST = settings(max_examples=200, stateful_step_count=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
NAME = "b"


class BarrierMachine(RuleBasedStateMachine):
    """One barrier with a random rule over hosts split across two component blocks."""

    @initialize(
        n=st.integers(1, 10),
        split=st.integers(0, 10),
        max_=st.none() | st.integers(1, 11),
        threshold=st.none() | st.sampled_from(["0.1", "0.25", "0.5", "0.75", "0.9", "1"]),
        timeout=st.none() | st.integers(1, 15),
        adaptive=st.booleans(),
    )
    def setup(
        self, n: int, split: int, max_: int | None, threshold: str | None, timeout: int | None, adaptive: bool
    ) -> None:
        self.clock = FakeClock()
        self.hosts = [f"h{i}" for i in range(n)]
        self.threshold = Fraction(threshold) if threshold else None
        self.rule = BarrierRule(
            max=max_,
            threshold=float(threshold) if threshold else None,
            timeout=float(timeout) if timeout else None,
            adaptive=adaptive,
        )
        self.m = BarrierManager()
        self.m.declare(NAME, self.rule, self.hosts[:split])  # one component block
        self.m.declare(NAME, self.rule, self.hosts[split:])  # another block, same name: one barrier
        self.live = set(self.hosts)
        self.arrived: dict[str, float] = {}  # live hosts that arrived, this incarnation
        self.waiting: dict[str, float] = {}
        self.released_now: set[str] = set()  # hosts the Released let through (this incarnation)
        self.late: set[str] = set()
        self.first_arrival: float | None = None
        self.released = False

    # --- the oracle ------------------------------------------------------------------------------

    def count_ok(self) -> bool:
        w, e = len(self.waiting), len(self.live)
        if w == 0:
            return False
        if w >= e or (self.rule.max is not None and w >= self.rule.max):
            return True
        return self.threshold is not None and w >= max(1, math.ceil(self.threshold * e))

    def knee(self) -> float | None:
        times = sorted(self.waiting.values())
        needed = max(2, math.ceil(Fraction(1, 2) * len(self.live)))
        if not self.rule.adaptive or len(times) < needed:
            return None
        gaps = [b - a for a, b in pairwise(times)]
        return times[-1] + max(1.0, 4.0 * statistics.median(gaps))

    def check(self, events: list[BarrierEvent], cause: str) -> None:
        now = self.clock.now
        for ev in events:
            assert isinstance(ev, Released), ev
            assert not self.released, "released twice"
            assert ev.at == now
            assert set(ev.hosts) == set(self.waiting), (ev.hosts, self.waiting)
            assert list(ev.hosts) == sorted(self.waiting, key=list(self.waiting).index)
            if ev.reason in ("all", "max", "threshold"):
                assert cause == "arrive" and self.count_ok()
            elif ev.reason == "failure":
                assert cause == "fail" and self.count_ok()
            elif ev.reason == "forced":
                assert cause == "force"
            elif ev.reason == "timeout":
                assert cause == "timer" and self.rule.timeout is not None
                assert self.first_arrival is not None and now >= self.first_arrival + self.rule.timeout
            else:
                assert ev.reason == "adaptive" and cause == "timer"
                knee = self.knee()
                assert knee is not None and now >= knee - 1e-9
            assert len(set(ev.hosts)) == len(ev.hosts)
            for host in ev.hosts:
                assert host not in self.released_now, "a host released twice"
            self.released_now.update(ev.hosts)
            self.waiting.clear()
            self.released = True

    def settle(self) -> None:
        timer = self.m.get_timer()
        if timer is not None and timer <= self.clock.now:
            self.check(self.m.handle_timer(self.clock.now), "timer")

    # --- rules -----------------------------------------------------------------------------------

    @rule(dt=st.sampled_from([0.0, 0.1, 0.5, 1.0, 3.0, 10.0]))
    def advance(self, dt: float) -> None:
        target = self.clock.now + dt
        while (timer := self.m.get_timer()) is not None and timer <= target:
            self.clock.now = max(self.clock.now, timer)
            self.check(self.m.handle_timer(self.clock.now), "timer")
        assert self.m.handle_timer(self.clock.now) == []
        self.clock.now = target

    @rule(data=st.data())
    def arrive(self, data: st.DataObject) -> None:
        ready = [h for h in self.hosts if h in self.live and h not in self.arrived]
        if not ready:
            return
        host = data.draw(st.sampled_from(ready))
        now = self.clock.now
        events = self.m.arrive(NAME, host, now)
        self.arrived[host] = now
        if self.first_arrival is None:
            self.first_arrival = now
        if self.released:
            assert events == [PassedLate(NAME, host, now)]
            self.late.add(host)
            return
        self.waiting[host] = now
        if events == [Waiting(NAME, host, now)]:
            assert not self.count_ok(), "held although a count rule was met"
        else:
            self.check(events, "arrive")
        self.settle()

    @rule(data=st.data())
    def arrive_twice(self, data: st.DataObject) -> None:
        if not self.arrived:
            return
        host = data.draw(st.sampled_from(sorted(self.arrived)))
        with pytest.raises(BarrierError) as info:
            self.m.arrive(NAME, host, self.clock.now)
        assert info.value.host == host and info.value.event == "arrive"

    @rule(data=st.data())
    def fail(self, data: st.DataObject) -> None:
        host = data.draw(st.sampled_from(self.hosts))
        self.live.discard(host)
        self.arrived.pop(host, None)
        self.waiting.pop(host, None)
        events = self.m.host_failed(host, self.clock.now)
        if events:
            self.check(events, "fail")
        else:
            assert self.released or not self.count_ok(), "a dead host blocked the release"
        self.settle()

    @rule(data=st.data())
    def restart(self, data: st.DataObject) -> None:
        back = [h for h in self.hosts if h not in self.live or (h in self.arrived and h not in self.waiting)]
        if not back:
            return
        host = data.draw(st.sampled_from(back))
        self.m.add_expected(NAME, host)
        self.live.add(host)
        self.arrived.pop(host, None)
        self.late.discard(host)
        self.released_now.discard(host)
        self.settle()

    @precondition(lambda self: not self.released)
    @rule(dice=st.integers(0, 7))
    def force(self, dice: int) -> None:
        if dice == 0:  # rarely: a forced release ends the interesting part of a run
            self.check(self.m.force_release(NAME, self.clock.now), "force")

    # --- invariants ------------------------------------------------------------------------------

    @invariant()
    def matches_the_model(self) -> None:
        snap = self.m.snapshot(NAME)
        assert snap.released == self.released
        assert set(snap.expected) == self.live
        assert list(snap.waiting) == list(self.waiting)
        assert list(snap.arrived) == list(self.arrived)
        assert set(snap.late) >= self.late

    @invariant()
    def nothing_due_is_held(self) -> None:
        if not self.released:
            # "a dead host never blocks a release": once every live expected host arrived, it is open
            assert not self.count_ok()
            timer = self.m.get_timer()
            assert timer is None or timer > self.clock.now
            if self.rule.timeout is not None and self.first_arrival is not None:
                assert self.clock.now < self.first_arrival + self.rule.timeout
            knee = self.knee()
            assert knee is None or knee > self.clock.now

    @invariant()
    def every_arrived_host_is_released_exactly_once_or_late(self) -> None:
        if self.released:
            for host in self.arrived:
                assert (host in self.late) != (host in self.released_now), host
        else:
            assert set(self.arrived) == set(self.waiting)


class SemaphoreMachine(RuleBasedStateMachine):
    @initialize(n=st.integers(1, 8), capacity=st.integers(1, 4))
    def setup(self, n: int, capacity: int) -> None:
        self.clock = FakeClock()
        self.hosts = [f"h{i}" for i in range(n)]
        self.capacity = capacity
        self.m = BarrierManager()
        self.m.declare("s", BarrierRule(kind="semaphore", capacity=capacity), self.hosts)
        self.live = set(self.hosts)
        self.entered: set[str] = set()
        self.admitted: list[str] = []
        self.queue: deque[str] = deque()

    def admit_from_queue(self, events: list[BarrierEvent]) -> None:
        for ev in events:
            assert isinstance(ev, Admitted)
            assert self.queue and ev.host == self.queue[0], "not first in, first out"
            self.admitted.append(self.queue.popleft())

    @rule(data=st.data())
    def arrive(self, data: st.DataObject) -> None:
        ready = [h for h in self.hosts if h in self.live and h not in self.entered]
        if not ready:
            return
        host = data.draw(st.sampled_from(ready))
        self.entered.add(host)
        events = self.m.arrive("s", host, self.clock.now)
        if events == [Admitted("s", host, self.clock.now)]:
            assert not self.queue and len(self.admitted) < self.capacity
            self.admitted.append(host)
        else:
            assert events == [Waiting("s", host, self.clock.now)]
            self.queue.append(host)

    @precondition(lambda self: bool(self.admitted))
    @rule(data=st.data())
    def leave(self, data: st.DataObject) -> None:
        host = data.draw(st.sampled_from(self.admitted))
        self.admitted.remove(host)
        self.admit_from_queue(self.m.leave("s", host, self.clock.advance(1)))

    @rule(data=st.data())
    def fail(self, data: st.DataObject) -> None:
        host = data.draw(st.sampled_from(self.hosts))
        self.live.discard(host)
        if host in self.admitted:
            self.admitted.remove(host)
        if host in self.queue:
            self.queue.remove(host)
        self.admit_from_queue(self.m.host_failed(host, self.clock.now))

    @rule(data=st.data())
    def restart(self, data: st.DataObject) -> None:
        back = [h for h in self.hosts if h not in self.live]
        if back:
            host = data.draw(st.sampled_from(back))
            self.m.add_expected("s", host)
            self.live.add(host)
            self.entered.discard(host)

    @rule()
    def drain(self) -> None:
        """Everybody inside leaves, one by one: every waiter is eventually admitted."""
        waiters = list(self.queue)
        admitted_now: list[str] = []
        while self.admitted:
            host = self.admitted.pop(0)
            events = self.m.leave("s", host, self.clock.advance(1))
            admitted_now.extend(e.host for e in events if isinstance(e, Admitted))
            self.admit_from_queue(events)
        assert admitted_now == waiters
        assert not self.queue

    @invariant()
    def never_over_capacity_and_no_idle_place_while_hosts_wait(self) -> None:
        snap = self.m.snapshot("s")
        assert len(snap.admitted) <= self.capacity
        assert list(snap.admitted) == self.admitted
        assert list(snap.waiting) == list(self.queue)
        if self.queue:
            assert len(self.admitted) == self.capacity


class WorkQueueMachine(RuleBasedStateMachine):
    @initialize(k=st.integers(0, 8))
    def setup(self, k: int) -> None:
        self.items = [f"item{i}" for i in range(k)]
        self.q = WorkQueue(self.items)
        self.hosts = ["a", "b", "c"]
        self.holding: dict[str, str] = {}  # item -> host (the model)
        self.completed: dict[str, str] = {}
        self.stale: list[tuple[str, str]] = []  # (host, item) reports that must be ignored

    @rule(host=st.sampled_from(["a", "b", "c"]))
    def take(self, host: str) -> None:
        item = self.q.take(host)
        if item is None:
            assert len(self.holding) + len(self.completed) == len(self.items)
        else:
            assert item not in self.holding and item not in self.completed
            self.holding[item] = host

    @precondition(lambda self: bool(self.holding))
    @rule(data=st.data(), ok=st.booleans())
    def report(self, data: st.DataObject, ok: bool) -> None:
        item = data.draw(st.sampled_from(sorted(self.holding)))
        host = self.holding.pop(item)
        if ok:
            assert self.q.done(host, item)
            self.completed[item] = host
        else:
            assert self.q.failed(host, item)

    @rule(host=st.sampled_from(["a", "b", "c"]))
    def host_failed(self, host: str) -> None:
        lost = sorted(i for i, h in self.holding.items() if h == host)
        assert sorted(self.q.host_failed(host)) == lost
        for item in lost:
            del self.holding[item]
            self.stale.append((host, item))

    @precondition(lambda self: bool(self.stale))
    @rule(data=st.data())
    def stale_report(self, data: st.DataObject) -> None:
        host, item = data.draw(st.sampled_from(self.stale))
        if self.holding.get(item) != host:  # the same host may hold it again legitimately
            assert not self.q.done(host, item)

    @rule()
    def finish(self) -> None:
        """Surviving hosts drain the queue: every item ends done exactly once."""
        for item, host in sorted(self.holding.items()):
            assert self.q.done(host, item)
            self.completed[item] = host
        self.holding.clear()
        while (nxt := self.q.take("c")) is not None:
            assert nxt not in self.completed
            assert self.q.done("c", nxt)
            self.completed[nxt] = "c"
        assert self.q.finished

    @invariant()
    def each_item_in_exactly_one_place(self) -> None:
        stats = self.q.statistics()
        assert stats.in_flight == len(self.holding)
        assert stats.done == len(self.completed)
        assert stats.pending + stats.in_flight + stats.done == len(self.items)
        assert self.q.done_items() == self.completed
        assert self.q.finished == (len(self.completed) == len(self.items))


TestBarrierMachine = BarrierMachine.TestCase
TestBarrierMachine.settings = FAST
TestSemaphoreMachine = SemaphoreMachine.TestCase
TestSemaphoreMachine.settings = FAST
TestWorkQueueMachine = WorkQueueMachine.TestCase
TestWorkQueueMachine.settings = FAST
