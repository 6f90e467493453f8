"""The block DAG helpers: levels, cycles, dependents — and their agreement on random graphs."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from plush.spec.dag import dependents, find_cycle, find_wait_cycle, order, requires
from plush.spec.model import BarrierBlock, ProcessBlock


def blocks(**preds: str) -> list[ProcessBlock]:
    return [ProcessBlock(name=n, predecessors=tuple(p.split()) if p else ()) for n, p in preds.items()]


def test_levels_keep_spec_order() -> None:
    bs = blocks(fetch="", build="fetch", lint="fetch", test="build", docs="", ship="test lint docs")
    assert order(bs) == [["fetch", "docs"], ["build", "lint"], ["test"], ["ship"]]
    assert find_cycle(bs) is None


def test_independent_blocks_run_in_one_level() -> None:
    assert order(blocks(a="", b="", c="")) == [["a", "b", "c"]]
    assert order([]) == []


def test_unknown_predecessors_are_ignored() -> None:
    assert order(blocks(a="ghost", b="a")) == [["a"], ["b"]]


def test_cycle_is_reported_from_its_first_block() -> None:
    bs = blocks(start="", a="c", b="a", c="b", tail="a")
    assert find_cycle(bs) == ["a", "c", "b", "a"]
    assert order(bs) == [["start"]]  # a cycle never becomes ready, nor what depends on it


def test_self_loop_is_a_cycle() -> None:
    assert find_cycle(blocks(a="a")) == ["a", "a"]


def test_dependents_and_requires_are_transitive() -> None:
    bs = [*blocks(a="", b="a", c="b", d=""), BarrierBlock(name="e", predecessors=("c", "d"))]
    assert dependents(bs, "a") == ["b", "c", "e"]
    assert dependents(bs, "e") == []
    assert requires(bs, "e") == ["a", "b", "c", "d"]
    assert requires(bs, "a") == []


@st.composite
def graphs(draw: st.DrawFn) -> list[ProcessBlock]:
    n = draw(st.integers(min_value=0, max_value=8))
    names = [f"b{i}" for i in range(n)]
    return [
        ProcessBlock(name=name, predecessors=tuple(draw(st.lists(st.sampled_from(names), max_size=3, unique=True))))
        for name in names
    ]


@settings(deadline=None)
@given(graphs())
def test_order_and_find_cycle_agree(bs: list[ProcessBlock]) -> None:
    levels = order(bs)
    placed = [n for level in levels for n in level]
    assert len(placed) == len(set(placed))
    level_of = {n: i for i, level in enumerate(levels) for n in level}
    for b in bs:
        if b.name in level_of:
            assert all(level_of[p] < level_of[b.name] for p in b.predecessors)
    cycle = find_cycle(bs)
    if cycle is None:
        assert len(placed) == len(bs)
    else:
        assert len(placed) < len(bs)
        assert cycle[0] == cycle[-1]
        by_name = {b.name: b for b in bs}
        for a, b in itertools.pairwise(cycle):
            assert b in by_name[a].predecessors
        for name in cycle:
            assert name not in level_of


def test_wait_cycle_across_groups_through_joined_barriers() -> None:
    a = blocks(b1="", b2="b1")
    b = blocks(b2="", work="b2", b1="work")
    joined = {("a", "b1"), ("a", "b2"), ("b", "b1"), ("b", "b2")}
    cycle = find_wait_cycle([("a", a), ("b", b)], joined)
    assert cycle is not None
    # every wait starts where the previous one ended: the same block, or the joined barrier of that name
    for (_, _, waited), (_, waiter, _) in zip(cycle, cycle[1:] + cycle[:1], strict=True):
        assert waiter == waited
    assert {w[0] for w in cycle} == {"a", "b"}
    assert find_wait_cycle([("a", a), ("b", b)], joined - {("b", "b1")}) is None  # b1 in b is not one barrier
    assert find_wait_cycle([("a", a), ("b", blocks(b1="", b2="b1"))], joined) is None  # one order everywhere


def test_wait_cycle_through_three_groups() -> None:
    groups = [("a", blocks(x="", y="x")), ("b", blocks(y="", z="y")), ("c", blocks(z="", x="z"))]
    joined = {(g, n) for g, bs in groups for n in (b.name for b in bs)}
    cycle = find_wait_cycle(groups, joined)
    assert cycle is not None and len(cycle) == 3
