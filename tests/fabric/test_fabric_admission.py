"""The admission policy for unauthenticated connections, on a fake clock: caps, oldest first, fairness."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from plush.fabric.admission import Admission


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def tick(self, dt: float = 1.0) -> float:
        self.now += dt
        return self.now


def test_new_connections_are_always_admitted_and_the_oldest_is_dropped() -> None:
    clock = FakeClock()
    adm = Admission(limit=3, per_source=3)
    assert [adm.admit(k, "a", clock.tick()) for k in (1, 2, 3)] == [[], [], []]
    assert adm.admit(4, "a", clock.tick()) == [1]
    assert adm.admit(5, "a", clock.tick()) == [2]
    assert len(adm) == 3 and 5 in adm and 2 not in adm
    assert adm.statistics() == {"held": 3, "sources": 1, "admitted": 5, "dropped": 2}


def test_the_per_source_cap_drops_that_sources_oldest() -> None:
    clock = FakeClock()
    adm = Admission(limit=10, per_source=2)
    adm.admit(1, "a", clock.tick())
    adm.admit(2, "b", clock.tick())
    adm.admit(3, "a", clock.tick())
    assert adm.admit(4, "a", clock.tick()) == [1]
    assert adm.held("a") == 2 and adm.held("b") == 1


def test_a_flood_from_one_address_never_displaces_an_agent_from_another() -> None:
    clock = FakeClock()
    adm = Admission(limit=4, per_source=4)
    adm.admit(100, "agent", clock.tick())  # the oldest of all
    for key in range(1, 50):
        victims = adm.admit(key, "flood", clock.tick())
        assert 100 not in victims
    assert 100 in adm and adm.held("flood") == 3
    # the agent authenticates: it is no longer held, and the flood may now fill the table
    assert adm.release(100) and not adm.release(100)
    assert adm.admit(50, "flood", clock.tick()) == []


def test_ties_drop_the_oldest_among_the_biggest_sources() -> None:
    clock = FakeClock()
    adm = Admission(limit=4, per_source=4)
    adm.admit(1, "b", clock.tick())
    adm.admit(2, "a", clock.tick())
    adm.admit(3, "a", clock.tick())
    adm.admit(4, "b", clock.tick())
    assert adm.admit(5, "c", clock.tick()) == [1]  # a and b hold two each; b's oldest is older


def test_make_room_names_the_same_victim_and_none_when_empty() -> None:
    clock = FakeClock()
    adm = Admission(limit=8, per_source=8)
    assert adm.make_room() is None
    adm.admit(1, "x", clock.tick())
    adm.admit(2, "y", clock.tick())
    adm.admit(3, "y", clock.tick())
    assert adm.make_room() == 2
    assert adm.make_room() in (1, 3)


def test_limits_are_checked() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        Admission(limit=0, per_source=1)
    adm = Admission(limit=2, per_source=5)
    assert adm.per_source == 2
    adm.admit(1, "a", 0.0)
    with pytest.raises(ValueError, match="already held"):
        adm.admit(1, "a", 0.0)


operations = st.lists(
    st.tuples(st.sampled_from(["admit", "release", "room"]), st.sampled_from("abcd"), st.integers(0, 60)),
    max_size=200,
)


@given(st.integers(1, 8), st.integers(1, 8), operations)
def test_invariants_hold_under_any_sequence(limit: int, per_source: int, ops: list[tuple[str, str, int]]) -> None:
    clock = FakeClock()
    adm = Admission(limit, per_source)
    held: dict[int, tuple[str, float]] = {}  # a model of the table
    next_key = 0
    for op, source, pick in ops:
        if op == "admit":
            next_key += 1
            now = clock.tick()
            before = {s: sum(1 for v in held.values() if v[0] == s) for s in "abcd"}
            victims = adm.admit(next_key, source, now)
            for victim in victims:
                vsource, vtime = held.pop(victim)
                # the victim is the oldest of its source
                assert all(t >= vtime for s, t in held.values() if s == vsource)
                if vsource != source:  # another source lost one: it held the most (after rule 1)
                    assert before[vsource] == max(before.values())
                before[vsource] -= 1
            held[next_key] = (source, now)
        elif op == "release":
            key = sorted(held)[pick % len(held)] if held else -1
            assert adm.release(key) == (key in held)
            held.pop(key, None)
        else:
            victim = adm.make_room()
            assert (victim is None) == (not held)
            if victim is not None:
                held.pop(victim)
        assert len(adm) == len(held) <= limit
        for s in "abcd":
            assert adm.held(s) == sum(1 for v in held.values() if v[0] == s) <= min(per_source, limit)
        assert all(k in adm for k in held)
