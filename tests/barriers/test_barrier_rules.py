"""BarrierRule validation, the threshold count and the adaptive knee function."""

from __future__ import annotations

import pytest

from plush.barriers.rules import BarrierError, BarrierRule, knee_deadline, threshold_count
from plush.errors import PlushError
from plush.spec.model import BarrierBlock


def test_from_block_copies_the_release_attributes() -> None:
    block = BarrierBlock(name="join", max=2, threshold=0.9, timeout=30.0, adaptive=True)
    rule = BarrierRule.from_block(block, knee_factor=6.0)
    assert (rule.kind, rule.max, rule.threshold, rule.timeout, rule.adaptive) == ("barrier", 2, 0.9, 30.0, True)
    assert rule.knee_factor == 6.0
    assert rule.describe() == "barrier(max=2, threshold=0.9, timeout=30s, adaptive(k=6))"


def test_from_block_semaphore() -> None:
    rule = BarrierRule.from_block(BarrierBlock(name="dl", kind="semaphore", capacity=4, until="download"))
    assert rule.is_semaphore
    assert rule.capacity == 4
    assert rule.describe() == "semaphore(capacity=4)"


@pytest.mark.parametrize(
    ("block", "fragment"),
    [
        (BarrierBlock(name="b", kind="fence"), "kind must be"),
        (BarrierBlock(name="b", kind="semaphore"), "capacity of at least 1"),
        (BarrierBlock(name="b", kind="semaphore", capacity=0), "capacity of at least 1"),
        (BarrierBlock(name="b", kind="semaphore", capacity=2, max=1), "only a capacity"),
        (BarrierBlock(name="b", capacity=2), "semaphores only"),
        (BarrierBlock(name="b", max=0), "max must be at least 1"),
        (BarrierBlock(name="b", threshold=0.0), "threshold must be in (0, 1]"),
        (BarrierBlock(name="b", threshold=1.5), "threshold must be in (0, 1]"),
        (BarrierBlock(name="b", timeout=-1.0), "timeout must be positive"),
    ],
)
def test_invalid_rules_name_the_barrier(block: BarrierBlock, fragment: str) -> None:
    with pytest.raises(BarrierError) as info:
        BarrierRule.from_block(block)
    assert fragment in str(info.value)
    assert "'b'" in str(info.value)
    assert info.value.barrier == "b"
    assert isinstance(info.value, PlushError)


def test_threshold_count_is_a_robust_ceiling() -> None:
    assert 0.28 * 25 > 7  # floating point: 7.000000000000001
    assert threshold_count(0.28, 25) == 7
    assert threshold_count(0.55, 100) == 55
    assert threshold_count(0.9, 10) == 9
    assert threshold_count(0.5, 5) == 3
    assert threshold_count(1.0, 7) == 7
    assert threshold_count(0.1, 3) == 1
    assert threshold_count(0.5, 0) == 1  # never zero: somebody must arrive


def test_count_reason_order() -> None:
    rule = BarrierRule(max=3, threshold=0.5)
    assert rule.count_reason(0, 0) is None
    assert rule.count_reason(4, 4) == "all"
    assert rule.count_reason(3, 10) == "max"
    assert rule.count_reason(2, 4) == "threshold"
    assert rule.count_reason(1, 4) is None


def test_knee_needs_enough_arrivals() -> None:
    rule = BarrierRule(adaptive=True)  # k=4, at least max(2, 50%) arrivals, 1 s floor
    assert knee_deadline(rule, [], 10) is None
    assert knee_deadline(rule, [0.0], 10) is None
    assert knee_deadline(rule, [0.0, 0.1, 0.2, 0.3], 10) is None  # 4 < 5
    assert knee_deadline(rule, [0.0, 0.5, 1.0, 1.5, 2.0], 10) == pytest.approx(2.0 + 4 * 0.5)


def test_knee_uses_the_median_gap_and_a_floor() -> None:
    rule = BarrierRule(adaptive=True, knee_factor=4.0, knee_min_wait=1.0)
    # gaps 0.1, 0.1, 0.1, 5.0: one early straggler does not stretch the window (median 0.1)
    assert knee_deadline(rule, [0.0, 0.1, 0.2, 0.3, 5.3], 8) == pytest.approx(5.3 + 1.0)
    # a simultaneous burst (median gap 0) still waits the floor
    assert knee_deadline(rule, [7.0, 7.0, 7.0], 4) == pytest.approx(8.0)
    # slow rhythm: k x median dominates
    assert knee_deadline(rule, [0.0, 2.0, 4.0], 4) == pytest.approx(4.0 + 8.0)
