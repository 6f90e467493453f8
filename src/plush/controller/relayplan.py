"""Who fetches a copied file from whom: the relay tree of one copy (pure, no I/O).

Role. A copy to many hosts need not leave the controller once per host (docs/commands.md, "plush copy",
relayed copies): hosts that can reach each other -- the same *peer network* (:func:`peer_network`) -- fetch
from each other in a tree. :class:`RelayPlan` decides, for each host that asks for the data (``copy.fetch``,
a content cache miss), where it gets them:

- a host on no peer network, or any host when ``fanout`` is 0, is streamed by the controller (:class:`Direct`);
- on a network, hosts take their places in the order they ask (their listener's port with the ask): the
  first ``roots`` (:data:`ROOTS`) are the controller's children (streamed by it); place ``p >= roots`` is
  the child of place ``(p - roots) // fanout`` -- a ``fanout``-ary tree grown breadth first, so every parent
  asked earlier and its port is known. Few roots: the controller's link (an SSH channel: ~100 MB/s out of
  one Python process) carries the file once or twice, the hosts carry the rest, each served as its parent
  receives (cut-through), so a deeper tree costs little. Such a host gets :class:`Peers`: its ancestors'
  addresses, its parent first, then its grandparent, ... (a host whose parent fails or is unreachable goes
  on with the next, from the offset it holds; after the last it asks the controller, which streams the
  rest: ``Direct`` with ``offset``);
- a host that asks again (it gave up on its peers) is streamed by the controller from ``offset``.

Invariants: a parent always asked before its children (so the tree has no cycle and every source has a
port); each host has at most one place; a host's sources are its ancestors, nearest first, and never itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from plush.resources.host import Host

__all__ = ["DEFAULT_FANOUT", "ROOTS", "Direct", "Peers", "RelayPlan", "peer_network"]

#: children per parent host by default: the ``relay_fanout`` setting
DEFAULT_FANOUT = 4
#: the controller's children in each network's tree (the rest fetch from hosts)
ROOTS = 1


def peer_network(host: Host) -> str | None:
    """The network on which ``host`` reaches the other hosts of it at their addresses, or None: the host
    property ``peer_network`` names one (a user's hosts on one LAN); a ``plush cluster`` host (property
    ``netns``) is on its cluster's bridge (its group). Nothing else is assumed: a host behind NAT, or of
    unknown reach, has none and is streamed by the controller."""
    named = host.get("peer_network")
    if named is not None and str(named):
        return f"net:{named}"
    if host.get("netns") is not None and host.group:
        return f"netns:{host.group}"
    return None


@dataclass(frozen=True)
class Direct:
    """The controller streams the file to ``host`` from ``offset``."""

    host: str
    offset: int = 0


@dataclass(frozen=True)
class Peers:
    """``host`` fetches from ``sources`` (``(address, port)``, nearest ancestor first), then the controller."""

    host: str
    sources: tuple[tuple[str, int], ...]


@dataclass
class _Tree:
    hosts: list[str] = field(default_factory=list)


class RelayPlan:
    """The tree of one copy. ``networks``: each host's peer network (None: none); ``addresses``: how its
    peers reach each host."""

    def __init__(
        self, fanout: int, networks: Mapping[str, str | None], addresses: Mapping[str, str], *, roots: int = ROOTS
    ) -> None:
        if fanout < 0 or roots < 1:
            raise ValueError(f"fanout must be >= 0 and roots >= 1, not {fanout} and {roots}")
        self.fanout = fanout
        self.roots = roots
        self.networks = networks
        self.addresses = addresses
        self._trees: dict[str, _Tree] = {}
        self._place: dict[str, tuple[str, int]] = {}  # host -> (network, place)
        self._ports: dict[str, int] = {}

    def relayed(self, host: str) -> bool:
        """Whether ``host`` may take part in the tree (its agent should listen)."""
        return self.fanout > 0 and self.networks.get(host) is not None and host in self.addresses

    def fetch(self, host: str, port: int | None = None, offset: int = 0) -> Direct | Peers:
        """``host`` asks for the data (``port``: its listener's, if it listens; ``offset``: what it holds)."""
        if host in self._place or not self.relayed(host) or port is None:
            return Direct(host, offset)  # a second ask (its peers failed), or no relay for it
        net = self.networks[host]
        assert net is not None
        tree = self._trees.setdefault(net, _Tree())
        place = len(tree.hosts)
        tree.hosts.append(host)
        self._place[host] = (net, place)
        self._ports[host] = port
        sources = tuple((self.addresses[a], self._ports[a]) for a in self.ancestors(host))
        return Peers(host, sources) if sources else Direct(host, offset)

    def parent_place(self, place: int) -> int | None:
        """The place of ``place``'s parent in its tree (None: the controller)."""
        return None if place < self.roots else (place - self.roots) // self.fanout

    def ancestors(self, host: str) -> list[str]:
        """``host``'s ancestors, its parent first (empty: a child of the controller, or not placed)."""
        if host not in self._place:
            return []
        net, place = self._place[host]
        hosts = self._trees[net].hosts
        out = []
        parent = self.parent_place(place)
        while parent is not None:
            out.append(hosts[parent])
            parent = self.parent_place(parent)
        return out

    def children(self, host: str) -> list[str]:
        """The hosts placed under ``host`` (for reports and tests)."""
        return [h for h in self._place if self.ancestors(h)[:1] == [host]]
