"""Unit tests of the ordinary barriers: every release rule, late arrivals, failures, force, timers."""

from __future__ import annotations

import pytest
from barrier_clock import FakeClock

from plush.barriers import (
    BarrierError,
    BarrierManager,
    BarrierRule,
    PassedLate,
    Released,
    Waiting,
)
from plush.spec.model import BarrierBlock

HOSTS = ["h1", "h2", "h3", "h4"]


def manager(rule: BarrierRule, hosts: list[str] = HOSTS, name: str = "join") -> BarrierManager:
    m = BarrierManager()
    m.declare(name, rule, hosts)
    return m


def test_full_barrier_waits_for_every_host(clock: FakeClock) -> None:
    m = manager(BarrierRule())
    for host in ["h2", "h1", "h4"]:
        assert m.arrive("join", host, clock.advance(1)) == [Waiting("join", host, clock.now)]
    assert not m.snapshot("join").released
    events = m.arrive("join", "h3", clock.advance(1))
    assert events == [Released("join", ("h2", "h1", "h4", "h3"), "all", clock.now)]
    snap = m.snapshot("join")
    assert snap.released and snap.released_at == clock.now and snap.reason == "all"
    assert snap.waiting == ()
    assert m.host_state("join", "h1") == "released"


def test_max_releases_then_late_hosts_pass_through(clock: FakeClock) -> None:
    m = manager(BarrierRule(max=2))
    assert m.arrive("join", "h1", clock.now) == [Waiting("join", "h1", clock.now)]
    assert m.arrive("join", "h3", clock.advance(1)) == [Released("join", ("h1", "h3"), "max", clock.now)]
    assert m.arrive("join", "h2", clock.advance(5)) == [PassedLate("join", "h2", clock.now)]
    assert m.arrive("join", "h4", clock.advance(5)) == [PassedLate("join", "h4", clock.now)]
    snap = m.snapshot("join")
    assert snap.late == ("h2", "h4")
    assert snap.released_hosts == ("h1", "h3")
    assert snap.arrived == ("h1", "h3", "h2", "h4")
    assert m.statistics().hosts_late == 2


def test_threshold_is_a_fraction_of_expected_hosts(clock: FakeClock) -> None:
    hosts = [f"n{i}" for i in range(10)]
    m = manager(BarrierRule(threshold=0.9), hosts)
    for host in hosts[:8]:
        assert isinstance(m.arrive("join", host, clock.advance(1))[0], Waiting)
    (released,) = m.arrive("join", hosts[8], clock.advance(1))
    assert released == Released("join", tuple(hosts[:9]), "threshold", clock.now)


def test_threshold_rounds_up(clock: FakeClock) -> None:
    m = manager(BarrierRule(threshold=0.5), ["a", "b", "c"])  # ceil(1.5) == 2
    assert isinstance(m.arrive("join", "a", clock.now)[0], Waiting)
    assert m.arrive("join", "b", clock.now)[0] == Released("join", ("a", "b"), "threshold", clock.now)


def test_timeout_counts_from_the_first_arrival(clock: FakeClock) -> None:
    m = manager(BarrierRule(timeout=30.0))
    assert m.get_timer() is None  # nobody arrived: no clock running
    first = clock.now
    m.arrive("join", "h1", first)
    assert m.get_timer() == first + 30.0
    m.arrive("join", "h2", clock.advance(20))
    assert m.get_timer() == first + 30.0  # not re-armed by later arrivals
    assert m.handle_timer(clock.advance(9.5)) == []  # early: nothing
    assert not m.snapshot("join").released
    events = m.handle_timer(clock.advance(0.5))
    assert events == [Released("join", ("h1", "h2"), "timeout", first + 30.0)]
    assert m.get_timer() is None
    assert m.arrive("join", "h3", clock.advance(1)) == [PassedLate("join", "h3", clock.now)]


def test_timeout_never_fires_after_a_normal_release(clock: FakeClock) -> None:
    m = manager(BarrierRule(timeout=30.0), ["a", "b"])
    m.arrive("join", "a", clock.now)
    m.arrive("join", "b", clock.advance(1))
    assert m.get_timer() is None
    assert m.handle_timer(clock.advance(100)) == []


def test_adaptive_releases_at_the_knee(clock: FakeClock) -> None:
    hosts = [f"n{i}" for i in range(10)]
    m = manager(BarrierRule(adaptive=True, knee_factor=4.0, knee_min_wait=1.0), hosts)
    start = clock.now
    # a burst: 7 hosts, one every 0.5 s
    for i, host in enumerate(hosts[:7]):
        m.arrive("join", host, start + 0.5 * i)
    last = start + 3.0
    assert m.get_timer() == pytest.approx(last + 4 * 0.5)
    assert m.handle_timer(last + 1.9) == []  # still inside the burst's rhythm
    # one more host within the window pushes the knee further out
    m.arrive("join", hosts[7], last + 0.5)
    assert m.get_timer() == pytest.approx(last + 0.5 + 2.0)
    events = m.handle_timer(last + 2.5)
    assert events == [Released("join", tuple(hosts[:8]), "adaptive", last + 2.5)]
    # the stragglers pass late
    assert m.arrive("join", hosts[8], last + 60) == [PassedLate("join", hosts[8], last + 60)]


def test_adaptive_waits_for_half_of_the_expected_hosts(clock: FakeClock) -> None:
    hosts = [f"n{i}" for i in range(10)]
    m = manager(BarrierRule(adaptive=True), hosts)
    for host in hosts[:4]:
        m.arrive("join", host, clock.advance(0.1))
    assert m.get_timer() is None  # 4 of 10: not yet a burst worth a knee
    assert m.handle_timer(clock.advance(3600)) == []
    m.arrive("join", hosts[4], clock.now)
    assert m.get_timer() is not None


def test_force_release(clock: FakeClock) -> None:
    m = manager(BarrierRule())
    m.arrive("join", "h1", clock.now)
    assert m.force_release("join", clock.advance(2)) == [Released("join", ("h1",), "forced", clock.now)]
    with pytest.raises(BarrierError, match="already released") as info:
        m.force_release("join", clock.advance(1))
    assert info.value.state == "released"
    assert m.arrive("join", "h2", clock.now) == [PassedLate("join", "h2", clock.now)]


def test_force_release_with_nobody_waiting_opens_it(clock: FakeClock) -> None:
    m = manager(BarrierRule())
    assert m.force_release("join", clock.now) == [Released("join", (), "forced", clock.now)]
    assert m.arrive("join", "h1", clock.now) == [PassedLate("join", "h1", clock.now)]


def test_failure_of_the_last_missing_host_releases(clock: FakeClock) -> None:
    m = manager(BarrierRule())
    for host in ["h1", "h2", "h3"]:
        m.arrive("join", host, clock.advance(1))
    events = m.host_failed("h4", clock.advance(1))
    assert events == [Released("join", ("h1", "h2", "h3"), "failure", clock.now)]
    snap = m.snapshot("join")
    assert snap.failed == ("h4",)
    assert "h4" not in snap.expected


def test_failed_host_no_longer_expected_and_no_longer_counted(clock: FakeClock) -> None:
    m = manager(BarrierRule(threshold=0.75))  # ceil(0.75 * 4) = 3 of 4
    m.arrive("join", "h1", clock.now)
    assert m.host_failed("h1", clock.now) == []  # a waiting host fails: it no longer waits nor counts
    snap = m.snapshot("join")
    assert snap.waiting == ()
    assert snap.arrived == ()
    assert snap.expected == ("h2", "h3", "h4")
    assert m.host_state("join", "h1") == "failed"
    m.arrive("join", "h2", clock.now)
    # ceil(0.75 * 3) = 3: h1's arrival does not count any more, two waiting are not enough
    assert m.arrive("join", "h3", clock.now) == [Waiting("join", "h3", clock.now)]
    assert m.arrive("join", "h4", clock.now) == [Released("join", ("h2", "h3", "h4"), "all", clock.now)]


def test_failure_lowers_the_threshold_count(clock: FakeClock) -> None:
    m = manager(BarrierRule(threshold=0.75), ["a", "b", "c", "d", "e"])  # ceil(3.75) = 4 of 5
    for host in "abc":
        m.arrive("join", host, clock.now)
    assert m.host_failed("e", clock.now) == [Released("join", ("a", "b", "c"), "failure", clock.now)]  # 3 of 4


def test_max_larger_than_the_live_hosts_releases_when_all_arrived(clock: FakeClock) -> None:
    m = manager(BarrierRule(max=4))
    m.host_failed("h4", clock.now)
    for host in ["h1", "h2"]:
        m.arrive("join", host, clock.now)
    assert m.arrive("join", "h3", clock.now) == [Released("join", ("h1", "h2", "h3"), "all", clock.now)]


def test_shared_name_across_two_component_blocks(clock: FakeClock) -> None:
    senders = BarrierBlock(name="start", max=None)
    receivers = BarrierBlock(name="start")
    m = BarrierManager()
    m.declare_block(senders, ["s1", "s2"])
    m.declare_block(receivers, ["r1"])
    assert m.names() == ("start",)
    assert m.snapshot("start").expected == ("r1", "s1", "s2")
    m.arrive("start", "s1", clock.now)
    m.arrive("start", "s2", clock.now)
    assert not m.snapshot("start").released  # the receiver's host is still missing
    assert m.arrive("start", "r1", clock.now) == [Released("start", ("s1", "s2", "r1"), "all", clock.now)]


def test_shared_name_with_different_rules_is_refused() -> None:
    m = BarrierManager()
    m.declare("start", BarrierRule(max=2), ["a"])
    with pytest.raises(BarrierError, match="same rule in every component block") as info:
        m.declare("start", BarrierRule(max=3), ["b"])
    assert info.value.barrier == "start"


def test_illegal_transitions_name_event_barrier_host_and_state(clock: FakeClock) -> None:
    m = manager(BarrierRule())
    with pytest.raises(BarrierError, match="no barrier named 'nope'") as info:
        m.arrive("nope", "h1", clock.now)
    assert (info.value.event, info.value.barrier, info.value.host, info.value.state) == (
        "arrive",
        "nope",
        "h1",
        "undeclared",
    )
    with pytest.raises(BarrierError, match="not one of the hosts expected") as info:
        m.arrive("join", "stranger", clock.now)
    assert info.value.state == "unknown"
    m.arrive("join", "h1", clock.now)
    with pytest.raises(BarrierError, match="already arrived") as info:
        m.arrive("join", "h1", clock.now)
    assert (info.value.event, info.value.host, info.value.state) == ("arrive", "h1", "waiting")
    m.host_failed("h2", clock.now)
    with pytest.raises(BarrierError, match="declared failed") as info:
        m.arrive("join", "h2", clock.now)
    assert info.value.state == "failed"
    with pytest.raises(BarrierError, match="only a semaphore") as info:
        m.leave("join", "h1", clock.now)
    assert info.value.event == "leave"
    with pytest.raises(BarrierError, match="no barrier named"):
        m.force_release("nope", clock.now)


def test_a_restarted_host_arrives_again(clock: FakeClock) -> None:
    m = manager(BarrierRule(), ["a", "b"])
    m.arrive("join", "a", clock.now)
    m.host_failed("a", clock.now)
    m.add_expected("join", "a")  # restarted in place
    assert m.snapshot("join").expected == ("a", "b")
    assert m.arrive("join", "b", clock.now) == [Waiting("join", "b", clock.now)]
    assert m.arrive("join", "a", clock.now) == [Released("join", ("b", "a"), "all", clock.now)]
    # after the release, a restart walks the blocks again and passes late
    m.add_expected("join", "a")
    assert m.arrive("join", "a", clock.now) == [PassedLate("join", "a", clock.now)]


def test_a_rematched_host_joins_and_is_waited_for(clock: FakeClock) -> None:
    m = manager(BarrierRule(), ["a", "b"])
    m.arrive("join", "a", clock.now)
    assert m.host_failed("b", clock.now) == [Released("join", ("a",), "failure", clock.now)]
    m2 = manager(BarrierRule(), ["a", "b"])
    m2.arrive("join", "a", clock.now)
    m2.add_expected("join", "c")  # the spare is announced before b is failed
    assert m2.host_failed("b", clock.now) == []
    assert m2.arrive("join", "c", clock.now) == [Released("join", ("a", "c"), "all", clock.now)]


def test_add_expected_is_a_no_op_for_a_waiting_host(clock: FakeClock) -> None:
    m = manager(BarrierRule(), ["a", "b"])
    m.arrive("join", "a", clock.now)
    m.add_expected("join", "a")
    assert m.host_state("join", "a") == "waiting"


def test_host_failed_for_an_unknown_host_is_ignored(clock: FakeClock) -> None:
    m = manager(BarrierRule())
    assert m.host_failed("elsewhere", clock.now) == []
    assert m.host_failed("h1", clock.now) == []
    assert m.host_failed("h1", clock.now) == []  # twice: nothing more


def test_one_timer_for_many_barriers(clock: FakeClock) -> None:
    m = BarrierManager()
    m.declare("slow", BarrierRule(timeout=60.0), ["a", "b"])
    m.declare("fast", BarrierRule(timeout=10.0), ["a", "b"])
    t0 = clock.now
    m.arrive("slow", "a", t0)
    m.arrive("fast", "a", t0 + 5)
    assert m.get_timer() == t0 + 15
    assert m.handle_timer(t0 + 15) == [Released("fast", ("a",), "timeout", t0 + 15)]
    assert m.get_timer() == t0 + 60
    assert m.handle_timer(t0 + 61) == [Released("slow", ("a",), "timeout", t0 + 61)]
    stats = m.statistics()
    assert (stats.barriers, stats.semaphores, stats.released, stats.next_deadline) == (2, 0, 2, None)


def test_timeout_after_every_arrival_failed_still_opens(clock: FakeClock) -> None:
    m = manager(BarrierRule(timeout=5.0), ["a", "b"])
    m.arrive("join", "a", clock.now)
    m.host_failed("a", clock.now)
    assert m.handle_timer(clock.advance(5)) == [Released("join", (), "timeout", clock.now)]
    assert m.arrive("join", "b", clock.now) == [PassedLate("join", "b", clock.now)]
