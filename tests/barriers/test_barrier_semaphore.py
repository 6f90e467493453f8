"""Unit tests of semaphore barriers: capacity, FIFO admission, leaving, failures, forcing open."""

from __future__ import annotations

import pytest
from barrier_clock import FakeClock

from plush.barriers import Admitted, BarrierError, BarrierManager, BarrierRule, PassedLate, Released, Waiting
from plush.spec.model import BarrierBlock

HOSTS = [f"h{i}" for i in range(6)]


def semaphore(capacity: int = 2, hosts: list[str] = HOSTS) -> BarrierManager:
    m = BarrierManager()
    m.declare_block(BarrierBlock(name="dl", kind="semaphore", capacity=capacity, until="download"), hosts)
    return m


def test_admits_up_to_capacity_then_queues(clock: FakeClock) -> None:
    m = semaphore(2)
    assert m.arrive("dl", "h0", clock.now) == [Admitted("dl", "h0", clock.now)]
    assert m.arrive("dl", "h1", clock.now) == [Admitted("dl", "h1", clock.now)]
    assert m.arrive("dl", "h2", clock.now) == [Waiting("dl", "h2", clock.now)]
    snap = m.snapshot("dl")
    assert snap.admitted == ("h0", "h1")
    assert snap.waiting == ("h2",)
    assert not snap.released
    assert m.get_timer() is None  # semaphores have no timed rule


def test_fifo_admission_as_hosts_leave(clock: FakeClock) -> None:
    m = semaphore(1)
    m.arrive("dl", "h0", clock.now)
    for host in ["h3", "h1", "h2"]:
        assert m.arrive("dl", host, clock.advance(1)) == [Waiting("dl", host, clock.now)]
    assert m.leave("dl", "h0", clock.advance(1)) == [Admitted("dl", "h3", clock.now)]
    assert m.leave("dl", "h3", clock.advance(1)) == [Admitted("dl", "h1", clock.now)]
    assert m.leave("dl", "h1", clock.advance(1)) == [Admitted("dl", "h2", clock.now)]
    assert m.leave("dl", "h2", clock.advance(1)) == []
    assert m.host_state("dl", "h2") == "left"


def test_a_newcomer_does_not_overtake_the_queue(clock: FakeClock) -> None:
    m = semaphore(1)
    m.arrive("dl", "h0", clock.now)
    m.arrive("dl", "h1", clock.now)
    events = m.leave("dl", "h0", clock.now)
    assert events == [Admitted("dl", "h1", clock.now)]
    assert m.arrive("dl", "h2", clock.now) == [Waiting("dl", "h2", clock.now)]


def test_failure_of_an_admitted_host_frees_its_place(clock: FakeClock) -> None:
    m = semaphore(2)
    for host in HOSTS[:4]:
        m.arrive("dl", host, clock.now)
    assert m.host_failed("h0", clock.advance(1)) == [Admitted("dl", "h2", clock.now)]
    assert m.snapshot("dl").admitted == ("h1", "h2")
    assert m.leave("dl", "h0", clock.now) == []  # a late 'until done' from the failed host changes nothing
    assert m.snapshot("dl").admitted == ("h1", "h2")


def test_failure_of_a_waiting_host_removes_it_from_the_queue(clock: FakeClock) -> None:
    m = semaphore(1)
    for host in HOSTS[:3]:
        m.arrive("dl", host, clock.now)
    assert m.host_failed("h1", clock.now) == []
    assert m.leave("dl", "h0", clock.now) == [Admitted("dl", "h2", clock.now)]


def test_force_opens_the_semaphore(clock: FakeClock) -> None:
    m = semaphore(1)
    for host in HOSTS[:3]:
        m.arrive("dl", host, clock.now)
    assert m.force_release("dl", clock.now) == [Released("dl", ("h1", "h2"), "forced", clock.now)]
    assert m.arrive("dl", "h3", clock.now) == [PassedLate("dl", "h3", clock.now)]
    assert m.leave("dl", "h0", clock.now) == []  # the admitted host still leaves normally
    assert m.leave("dl", "h1", clock.now) == []  # released waiters held no place
    assert m.statistics().semaphores == 1
    with pytest.raises(BarrierError, match="already released"):
        m.force_release("dl", clock.now)


def test_leave_errors(clock: FakeClock) -> None:
    m = semaphore(1)
    with pytest.raises(BarrierError, match="never entered") as info:
        m.leave("dl", "h0", clock.now)
    assert (info.value.event, info.value.barrier, info.value.host, info.value.state) == (
        "leave",
        "dl",
        "h0",
        "expected",
    )
    m.arrive("dl", "h0", clock.now)
    m.arrive("dl", "h1", clock.now)
    with pytest.raises(BarrierError, match="waiting for a place"):
        m.leave("dl", "h1", clock.now)
    with pytest.raises(BarrierError, match="already arrived") as info:
        m.arrive("dl", "h0", clock.now)
    assert info.value.state == "admitted"


def test_statistics_count_admitted_and_waiting(clock: FakeClock) -> None:
    m = semaphore(2)
    for host in HOSTS[:5]:
        m.arrive("dl", host, clock.now)
    stats = m.statistics()
    assert (stats.hosts_admitted, stats.hosts_waiting) == (2, 3)


def test_rule_objects_can_be_built_directly(clock: FakeClock) -> None:
    m = BarrierManager()
    m.declare("gate", BarrierRule(kind="semaphore", capacity=3), ["a", "b", "c", "d"])
    events = [m.arrive("gate", h, clock.now)[0] for h in "abcd"]
    assert [type(e) for e in events] == [Admitted, Admitted, Admitted, Waiting]
