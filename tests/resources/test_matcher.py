"""The matcher (pure): which pool hosts each component gets, its spares, its errors, and rematch.

Property tests compare :func:`match` with a brute-force oracle on small pools (every assignment of hosts to
components tried): a matching is found exactly when one exists, and it uses as many hosts as any could.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from plush.errors import MatchError
from plush.resources.host import Host, Pool
from plush.resources.matcher import LiveSample, Matching, candidates, match, rematch
from plush.spec.model import AttrRequirement, Component, HostCount, ResourceRef


def comp(
    name: str,
    low: int = 1,
    high: int | None = None,
    *,
    require: Sequence[AttrRequirement] = (),
    group: str | None = None,
    max_load: float | None = None,
    min_free_mem: int | None = None,
) -> Component:
    return Component(
        name,
        num_hosts=HostCount(low, low if high is None else high),
        requirements=tuple(require),
        resources=(ResourceRef("ssh", group),) if group is not None else (),
        max_load=max_load,
        min_free_mem=min_free_mem,
    )


def pool(n: int, prefix: str = "n", **props: float | str) -> Pool:
    return Pool(Host(f"{prefix}{i}", f"10.0.0.{i}", properties=props) for i in range(1, n + 1))


# --- the rules ----------------------------------------------------------------------------------------------


def test_sword_min_10_max_800_from_a_pool_of_12_uses_all_12() -> None:
    m = match([comp("sword", 10, 800)], pool(12))
    assert m.hosts["sword"] == tuple(f"n{i}" for i in range(1, 13))
    assert m.spares["sword"] == ()


def test_fewer_usable_hosts_than_min_is_refused_naming_the_component() -> None:
    with pytest.raises(MatchError) as err:
        match([comp("workers", 10, 800)], pool(9))
    assert str(err.value) == "workers: need 10, 9 candidates"
    assert (err.value.component, err.value.wanted, err.value.available) == ("workers", 10, 9)


def test_the_message_counts_what_excluded_each_host() -> None:
    hosts = Pool(
        [
            *(Host(f"slow{i}", "x", properties={"cpu_mhz": 800}) for i in range(1, 4)),
            Host("dead", "x", properties={"cpu_mhz": 2000}),
            Host("fast", "x", properties={"cpu_mhz": 3000}),
        ]
    )
    senders = comp("senders", 2, require=[AttrRequirement("cpu_mhz", min=1000)])
    with pytest.raises(MatchError) as err:
        match([senders], hosts, excluded={"dead"})
    assert str(err.value) == (
        "senders: need 2, 1 candidate: 3 hosts lack cpu_mhz>=1000 (slow1 has cpu_mhz=800), 1 is failed"
    )
    assert err.value.available == 1


def test_each_host_counts_once_under_the_first_rule_that_excludes_it() -> None:
    hosts = Pool(
        [
            Host("other", "x", group="edge", properties={"site": "ucsd"}),
            Host("far", "x", group="lab", properties={"site": "mit"}),
            Host("bare", "x", group="lab"),
            Host("busy", "x", group="lab", properties={"site": "ucsd", "mem_mb": 64}),
            Host("full", "x", group="lab", properties={"site": "ucsd", "mem_mb": 64}),
            Host("ok", "x", group="lab", properties={"site": "ucsd", "mem_mb": 64}),
        ]
    )
    c = comp(
        "c",
        2,
        group="lab",
        require=[AttrRequirement("site", equals="ucsd"), AttrRequirement("mem_mb", max=100)],
        max_load=2,
        min_free_mem=100,
    )
    live = {"busy": LiveSample(load=7.5, free_mem_mb=50), "full": LiveSample(load=0.1, free_mem_mb=12)}
    with pytest.raises(MatchError) as err:
        match([c], hosts, samples=live)
    assert str(err.value) == (
        "c: need 2, 1 candidate: 1 host is not in group lab, 2 hosts lack site==ucsd (far has site=mit),"
        " 1 host is over max_load 2 (busy has load 7.5), 1 host is under min_free_mem 100 MB (full has 12 MB free)"
    )


def test_a_host_lacking_the_property_is_named() -> None:
    with pytest.raises(MatchError, match=r"^c: need 1, 0 candidates: 1 host lacks 1<=cores<=4 \(n1 has no cores\)$"):
        match([comp("c", require=[AttrRequirement("cores", min=1, max=4)])], pool(1))


def test_an_empty_pool_says_so() -> None:
    with pytest.raises(MatchError, match=r"^c: need 1, 0 candidates: the pool is empty$"):
        match([comp("c")], Pool())


def test_hosts_held_by_other_components_are_named() -> None:
    with pytest.raises(MatchError) as err:
        match([comp("a", 2), comp("b", 2)], pool(3))
    assert str(err.value) == "b: need 2, 1 candidate: 2 are used by a"


def test_sharing_lets_components_use_the_same_hosts() -> None:
    m = match([comp("a", 2), comp("b", 2)], pool(3), share=True)
    assert m.hosts == {"a": ("n1", "n2"), "b": ("n1", "n2")}
    assert m.spares == {"a": ("n3",), "b": ("n3",)}
    assert m.components_of("n1") == ["a", "b"]


def test_overlapping_candidates_are_rearranged_so_that_a_matching_is_found() -> None:
    # "any" comes first and would take the two fast hosts that "fast" needs; the matcher moves it
    hosts = Pool([*pool(2, "f", cpu_mhz=3000), *pool(2, "s", cpu_mhz=500)])
    fast = comp("fast", 2, require=[AttrRequirement("cpu_mhz", min=1000)])
    m = match([comp("any", 2), fast], hosts)
    assert m.hosts == {"any": ("s1", "s2"), "fast": ("f1", "f2")}


def test_extra_hosts_go_round_robin_and_fill_every_max() -> None:
    m = match([comp("a", 1, 3), comp("b", 1, 10)], pool(6))
    assert m.hosts == {"a": ("n1", "n3", "n5"), "b": ("n2", "n4", "n6")}
    m = match([comp("a", 1, 3), comp("b", 1, 10)], pool(9))
    assert len(m.hosts["a"]) == 3 and len(m.hosts["b"]) == 6


def test_wanted_counts_are_exact_and_the_rest_are_spares() -> None:
    m = match([comp("a", 1, 5), comp("b", 1, 5)], pool(6), wanted={"a": 2, "b": 1})
    assert m.hosts == {"a": ("n1", "n2"), "b": ("n3",)}
    assert m.spares == {"a": ("n4", "n5", "n6"), "b": ("n4", "n5", "n6")}
    with pytest.raises(ValueError, match="outside its num_hosts"):
        match([comp("a", 1, 5)], pool(6), wanted={"a": 6})
    with pytest.raises(ValueError, match="unknown components: z"):
        match([comp("a")], pool(6), wanted={"z": 1})


def test_groups_select_hosts_unless_the_pool_is_the_sandbox() -> None:
    hosts = Pool([Host("a1", "x", group="a"), Host("b1", "x", group="b"), Host("b2", "x", group="b")])
    m = match([comp("c", 1, 9, group="b")], hosts)
    assert m.hosts["c"] == ("b1", "b2")
    m = match([comp("c", 1, 9, group="b")], hosts, by_group=False)
    assert m.hosts["c"] == ("a1", "b1", "b2")


def test_less_loaded_hosts_are_preferred_and_unreported_hosts_come_last() -> None:
    live = {"n3": LiveSample(load=0.5, free_mem_mb=100), "n2": LiveSample(load=3.0), "n4": LiveSample(load=0.5)}
    m = match([comp("c", 2)], pool(4), samples=live)
    assert m.hosts["c"] == ("n3", "n4")
    assert m.spares["c"] == ("n2", "n1")
    assert candidates(comp("c", max_load=2), pool(4), samples=live) == ["n3", "n4", "n1"]


def test_a_seed_permutes_the_pool_reproducibly() -> None:
    comps = [comp("a", 3), comp("b", 3)]
    first = match(comps, pool(20), seed=7)
    assert first == match(comps, pool(20), seed=7)
    assert first.hosts != match(comps, pool(20)).hosts  # (pool order: n1..n6)
    assert {match(comps, pool(20), seed=s).hosts["a"] for s in range(5)} != {first.hosts["a"]}


def test_to_dict_has_hosts_and_spares_per_component() -> None:
    m = match([comp("a", 1)], pool(2))
    assert m.to_dict()["components"] == {"a": {"hosts": ["n1"], "spares": ["n2"]}}


# --- rematch ------------------------------------------------------------------------------------------------


def test_rematch_takes_the_first_spare_still_usable() -> None:
    comps = [comp("a", 2, max_load=1), comp("b", 1)]
    hosts = pool(6)
    m = match(comps, hosts, wanted={"a": 2, "b": 1})
    assert m.hosts == {"a": ("n1", "n2"), "b": ("n3",)} and m.spares["a"] == ("n4", "n5", "n6")
    r = rematch(m, comps, hosts, "a", "n1", samples={"n4": LiveSample(load=5)}, excluded={"n5"})
    assert r.replacement == "n6"
    assert r.matching.hosts == {"a": ("n2", "n6"), "b": ("n3",)}
    assert r.matching.spares == {"a": ("n4", "n5"), "b": ("n4", "n5")}  # n1 is gone from every list


def test_rematch_takes_a_pool_host_beyond_the_spares_and_none_when_nothing_is_left() -> None:
    comps = [comp("a", 1)]
    m = Matching({"a": ("n1",)}, {"a": ()})
    r = rematch(m, comps, pool(2), "a", "n1")
    assert r.replacement == "n2" and r.matching.hosts["a"] == ("n2",)
    r2 = rematch(r.matching, comps, pool(2), "a", "n2", excluded={"n1"})
    assert r2.replacement is None and r2.matching.hosts["a"] == ()
    with pytest.raises(ValueError, match="not a host of 'a'"):
        rematch(r.matching, comps, pool(2), "a", "n1")


def test_rematch_prefers_the_spare_less_loaded_now() -> None:
    comps = [comp("a", 1)]
    hosts = pool(3)
    m = match(comps, hosts)
    assert m.hosts == {"a": ("n1",)} and m.spares["a"] == ("n2", "n3")  # no sample yet: pool order
    now = {"n1": LiveSample(load=0.2), "n2": LiveSample(load=3), "n3": LiveSample(load=0.5)}
    r = rematch(m, comps, hosts, "a", "n1", samples=now)
    assert r.replacement == "n3" and r.matching.spares["a"] == ("n2",)


def test_rematch_without_a_failed_host_adds_one() -> None:
    comps = [comp("a", 1, 3), comp("b", 1)]
    m = Matching({"a": ("n1",), "b": ("n2",)}, {"a": ("n3", "n4"), "b": ("n3", "n4")})
    r = rematch(m, comps, pool(4), "a", None, excluded={"n3"})
    assert r.replacement == "n4"
    assert r.matching.hosts == {"a": ("n1", "n4"), "b": ("n2",)} and r.matching.spares == {"a": ("n3",), "b": ("n3",)}


def test_rematch_with_sharing_may_take_another_components_host() -> None:
    comps = [comp("a", 1), comp("b", 1)]
    m = match(comps, pool(2), share=True, wanted={"a": 1, "b": 1})
    assert m.hosts == {"a": ("n1",), "b": ("n1",)}
    r = rematch(m, comps, pool(2), "a", "n1")
    assert r.replacement == "n2" and r.matching.hosts == {"a": ("n2",), "b": ()}


# --- properties against a brute-force oracle --------------------------------------------------------------

GROUPS = (None, "g1", "g2")


@st.composite
def worlds(draw: st.DrawFn) -> tuple[list[Component], Pool, dict[str, LiveSample], set[str], dict[str, int]]:
    n = draw(st.integers(0, 6))
    hosts = []
    for i in range(n):
        props: dict[str, float | str] = {}
        if draw(st.integers(0, 3)):
            props["cpu"] = draw(st.sampled_from([500.0, 1000.0, 2000.0]))
        if draw(st.integers(0, 3)):
            props["site"] = draw(st.sampled_from(["a", "b"]))
        hosts.append(Host(f"h{i}", "x", group=draw(st.sampled_from(GROUPS)), properties=props))
    comps = []
    wanted: dict[str, int] = {}
    for k in range(draw(st.integers(1, 3))):
        low = draw(st.integers(0, 2))
        high = low + draw(st.integers(0, 3))
        reqs = draw(
            st.lists(
                st.sampled_from(
                    [
                        AttrRequirement("cpu", min=1000),
                        AttrRequirement("cpu", max=1000),
                        AttrRequirement("site", equals="a"),
                        AttrRequirement("cpu", equals="2000"),
                    ]
                ),
                max_size=draw(st.integers(0, 2)) if k else draw(st.sampled_from([0, 0, 1])),
            )
        )
        c = comp(
            f"c{k}",
            low,
            high,
            require=reqs,
            group=draw(st.sampled_from((None, None, *GROUPS[1:]))),
            max_load=draw(st.sampled_from([None, 1.0])),
            min_free_mem=draw(st.sampled_from([None, 100])),
        )
        comps.append(c)
        if draw(st.booleans()):
            wanted[c.name] = draw(st.integers(low, high))
    live = {
        h.name: LiveSample(load=draw(st.sampled_from([0.5, 2.0])), free_mem_mb=draw(st.sampled_from([50, 500])))
        for h in hosts
        if draw(st.booleans())
    }
    excluded = {h.name for h in hosts if draw(st.integers(0, 7)) == 0}
    return comps, Pool(hosts), live, excluded, wanted


@st.composite
def overlaps(draw: st.DrawFn) -> tuple[list[Component], Pool, dict[str, LiveSample], set[str], dict[str, int]]:
    """Worlds where candidate sets nest (fast hosts serve every component, slow ones only some): the order of
    taking hosts matters, and only rearranging them finds every matching."""
    hosts = Pool(Host(f"h{i}", "x", properties={"cpu": draw(st.sampled_from([500.0, 2000.0]))}) for i in range(6))
    comps = []
    for k in range(draw(st.integers(2, 3))):
        low = draw(st.integers(0, 3))
        fast = draw(st.booleans())
        comps.append(comp(f"c{k}", low, low + draw(st.integers(0, 3)), require=[FAST] if fast else []))
    return comps, hosts, {}, set(), {}


FAST = AttrRequirement("cpu", min=1000)


def fits(c: Component, h: Host, live: Mapping[str, LiveSample], excluded: set[str]) -> bool:
    """The rules, written again plainly."""
    if h.name in excluded:
        return False
    if c.resources and c.resources[0].group is not None and h.group != c.resources[0].group:
        return False
    for r in c.requirements:
        v = h.properties.get(r.attr)
        if v is None:
            return False
        if r.min is not None and not (isinstance(v, float) and v >= r.min):
            return False
        if r.max is not None and not (isinstance(v, float) and v <= r.max):
            return False
        if r.equals is not None and not (v == r.equals or (isinstance(v, float) and v == float(r.equals))):
            return False
    s = live.get(h.name)
    if s is not None and c.max_load is not None and s.load is not None and s.load > c.max_load:
        return False
    return not (
        s is not None and c.min_free_mem is not None and s.free_mem_mb is not None and s.free_mem_mb < c.min_free_mem
    )


def oracle(
    comps: list[Component], hosts: Pool, live: Mapping[str, LiveSample], excluded: set[str], wanted: Mapping[str, int]
) -> int | None:
    """The most hosts any valid exclusive assignment uses, or None when none meets every low."""
    bounds = {c.name: (wanted.get(c.name, c.num_hosts.min), wanted.get(c.name, c.num_hosts.max)) for c in comps}
    options = [[None, *(c.name for c in comps if fits(c, h, live, excluded))] for h in hosts]
    best = None
    for choice in itertools.product(*options):
        counts = {c.name: choice.count(c.name) for c in comps}
        if all(bounds[n][0] <= k <= bounds[n][1] for n, k in counts.items()):
            total = sum(counts.values())
            best = total if best is None else max(best, total)
    return best


@settings(max_examples=300, deadline=None)
@given(worlds() | overlaps(), st.integers(0, 3) | st.none(), st.booleans())
def test_matching_properties(world: tuple, seed: int | None, share: bool) -> None:
    comps, hosts, live, excluded, wanted = world
    try:
        m = match(comps, hosts, samples=live, excluded=excluded, wanted=wanted, seed=seed, share=share)
    except MatchError as exc:
        failing = next(c for c in comps if c.name == exc.component)
        assert str(exc).startswith(f"{exc.component}: need {exc.wanted},")
        assert exc.wanted == wanted.get(failing.name, failing.num_hosts.min)
        if share:  # alone, the component has too few candidates
            assert sum(fits(failing, h, live, excluded) for h in hosts) < exc.wanted
        else:
            assert oracle(comps, hosts, live, excluded, wanted) is None
        return
    # the same arguments give the same matching
    assert m == match(comps, Pool(list(hosts)), samples=live, excluded=excluded, wanted=wanted, seed=seed, share=share)
    used: list[str] = []
    for c in comps:
        chosen = m.hosts[c.name]
        assert len(set(chosen)) == len(chosen)
        low, high = c.num_hosts.min, c.num_hosts.max
        if c.name in wanted:
            assert len(chosen) == wanted[c.name]
        else:
            assert low <= len(chosen) <= high
        for name in (*chosen, *m.spares[c.name]):
            assert fits(c, hosts.get(name), live, excluded), (c, name)  # type: ignore[arg-type]
        assert not set(m.spares[c.name]) & set(chosen)
        if not share:
            assert len(chosen) == wanted.get(c.name, high) or not m.spares[c.name]  # as many as max allows
        used += chosen
    if not share:
        assert len(used) == len(set(used)), "a host serves two components"
        assert not {s for c in comps for s in m.spares[c.name]} & set(used)
        assert len(used) == oracle(comps, hosts, live, excluded, wanted)  # as many hosts as any matching uses
    else:
        for c in comps:
            expected = sum(fits(c, h, live, excluded) for h in hosts)
            assert len(m.hosts[c.name]) == min(expected, wanted.get(c.name, c.num_hosts.max))


@settings(max_examples=100, deadline=None)
@given(worlds() | overlaps(), st.integers(0, 3), st.booleans(), st.data())
def test_rematch_properties(world: tuple, seed: int, share: bool, data: st.DataObject) -> None:
    comps, hosts, live, excluded, wanted = world
    try:
        m = match(comps, hosts, samples=live, excluded=excluded, wanted=wanted, seed=seed, share=share)
    except MatchError:
        return
    busy = [c for c in comps if m.hosts[c.name]]
    if not busy:
        return
    c = data.draw(st.sampled_from(busy))
    failed = data.draw(st.sampled_from(m.hosts[c.name]))
    r = rematch(m, comps, hosts, c.name, failed, samples=live, excluded=excluded)
    assert failed not in r.matching.used() and all(failed not in s for s in r.matching.spares.values())
    if r.replacement is None:
        assert len(r.matching.hosts[c.name]) == len(m.hosts[c.name]) - 1
        assert not any(
            fits(c, h, live, excluded | {failed})
            for h in hosts
            if h.name not in (r.matching.hosts[c.name] if share else r.matching.used())
        )
    else:
        assert fits(c, hosts.get(r.replacement), live, excluded | {failed})  # type: ignore[arg-type]
        assert len(r.matching.hosts[c.name]) == len(m.hosts[c.name])
        if not share:
            assert r.matching.used().count(r.replacement) == 1
            assert all(r.replacement not in s for s in r.matching.spares.values())
