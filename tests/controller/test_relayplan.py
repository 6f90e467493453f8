"""The relay tree of a copy (plush.controller.relayplan): who fetches from whom, and the fallbacks. Pure."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from plush.controller.relayplan import Direct, Peers, RelayPlan, peer_network
from plush.resources.host import Host


def plan(n: int, fanout: int = 2, roots: int = 1, nets: dict[str, str | None] | None = None) -> RelayPlan:
    names = [f"h{k}" for k in range(1, n + 1)]
    networks = nets if nets is not None else dict.fromkeys(names, "netns:c1")
    return RelayPlan(fanout, networks, {h: f"10.0.0.{k}" for k, h in enumerate(names, 1)}, roots=roots)


def test_the_first_asker_is_streamed_the_next_fetch_from_it_then_from_their_parents_and_grandparents() -> None:
    p = plan(7, fanout=2)
    assert p.fetch("h1", port=101) == Direct("h1")
    assert p.fetch("h2", port=102) == Peers("h2", (("10.0.0.1", 101),))
    assert p.fetch("h3", port=103) == Peers("h3", (("10.0.0.1", 101),))
    assert p.fetch("h4", port=104) == Peers("h4", (("10.0.0.2", 102), ("10.0.0.1", 101)))
    assert p.fetch("h5", port=105) == Peers("h5", (("10.0.0.2", 102), ("10.0.0.1", 101)))
    assert p.fetch("h6", port=106) == Peers("h6", (("10.0.0.3", 103), ("10.0.0.1", 101)))
    assert p.children("h1") == ["h2", "h3"]
    assert p.ancestors("h6") == ["h3", "h1"]


def test_a_host_whose_peers_all_failed_is_streamed_by_the_controller_from_what_it_holds() -> None:
    p = plan(3)
    p.fetch("h1", port=1)
    assert isinstance(p.fetch("h2", port=2), Peers)
    assert p.fetch("h2", offset=4096) == Direct("h2", 4096)  # it asks again: the rest from the controller
    assert p.fetch("h1", offset=7) == Direct("h1", 7)


def test_hosts_on_no_peer_network_without_a_listener_or_with_fanout_0_are_streamed_by_the_controller() -> None:
    nets: dict[str, str | None] = {"h1": "net:a", "h2": None, "h3": "net:a", "h4": "net:b"}
    p = plan(4, nets=nets)
    assert p.fetch("h1", port=1) == Direct("h1")
    assert p.fetch("h2", port=2) == Direct("h2")  # behind NAT: no peer reaches it, it reaches none
    assert p.fetch("h4", port=4) == Direct("h4")  # another network: its own tree, whose root it is
    assert p.fetch("h3", port=3) == Peers("h3", (("10.0.0.1", 1),))
    assert plan(2, fanout=0).fetch("h2", port=2) == Direct("h2")
    q = plan(2)
    q.fetch("h1", port=1)
    assert q.fetch("h2") == Direct("h2")  # it did not listen: not placed


def test_peer_networks_come_from_the_peer_network_property_or_a_cluster_s_netns() -> None:
    assert peer_network(Host("a", "a", provider="ssh", properties={"peer_network": "lab"})) == "net:lab"
    assert peer_network(Host("b", "b", provider="ssh", group="c1", properties={"netns": "plush-c1-h1"})) == "netns:c1"
    assert peer_network(Host("c", "c", provider="ssh", group="c1")) is None  # reach unknown: none


@given(st.integers(1, 60), st.integers(1, 6), st.integers(1, 3), st.randoms())
def test_every_source_asked_earlier_none_is_the_host_itself_and_the_tree_has_the_fanout(
    n: int, fanout: int, roots: int, rnd: object
) -> None:
    p = plan(n, fanout=fanout, roots=roots)
    order = [f"h{k}" for k in range(1, n + 1)]
    rnd.shuffle(order)  # type: ignore[attr-defined]
    asked: list[str] = []
    for k, host in enumerate(order):
        step = p.fetch(host, port=1000 + k)
        ancestors = p.ancestors(host)
        assert host not in ancestors and set(ancestors) <= set(asked)
        if k < roots:
            assert step == Direct(host)
        else:
            assert isinstance(step, Peers) and len(step.sources) == len(ancestors) >= 1
        asked.append(host)
    assert all(len(p.children(h)) <= fanout for h in order)
    assert sum(1 for h in order if not p.ancestors(h)) == min(roots, n)
