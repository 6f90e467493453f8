"""The plan of an emulated cluster: names, addresses, sizes and the network's command lines. Pure.

A cluster ``NAME`` of N hosts is, on this machine:

- a bridge ``pb-NAME`` holding the subnet's first address (``10.213.0.1/16`` by default): the controller's
  side, so that the root namespace reaches every host;
- host K (1..N) named ``NAME-hK``: the network namespace ``plush-NAME-hK`` with one interface ``eth0`` at the
  subnet's address K+1 (``10.213.0.2`` for h1), the other end of its veth ``pv-NAME-K`` a port of the bridge;
  optionally ``tc tbf`` on both ends (the host's upload and download) at ``--bandwidth``;
- its sshd on port 22 of its address, started by :mod:`plush.cluster.hostinit` in a mount namespace of its
  own where the account's home, ``/tmp`` and ``/var/tmp`` are the host's private directories: on a file
  system of the host's own (``fs="tmpfs"``, the default: a tmpfs of ``fs_size`` mounted in that namespace
  only, gone with it) or directories of the cluster's state directory on this machine's disk
  (``fs="machine"``: for data larger than memory; also what a state without ``fs``, older, meant).

A host's directories, the command line that starts it and the files written for it are
:mod:`.hostfiles`'s.

Invariants: a cluster name matches ``[a-z][a-z0-9]{0,5}`` so that every interface name stays within Linux's
15 characters; everything that comes from the user reaches a command as one argv element, never through a
shell; the subnet is a private IPv4 network with room for the bridge and every host.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from plush.errors import PlushError

__all__ = [
    "DEFAULT_FS",
    "DEFAULT_FS_SIZE",
    "DEFAULT_NAME",
    "DEFAULT_SUBNET",
    "FS_KINDS",
    "MAX_HOSTS",
    "ClusterError",
    "ClusterPlan",
    "HostPlan",
    "check_name",
    "format_size",
    "lease_subnet",
    "memory_warning",
    "overlaps",
    "parse_rate",
    "parse_size",
    "parse_subnet",
]

DEFAULT_NAME = "c1"
DEFAULT_SUBNET = "10.213.0.0/16"
#: hosts of one cluster at most (the veth names have room for 5 digits; the machine runs out long before)
MAX_HOSTS = 4000
#: the port every host's sshd listens on
SSH_PORT = 22
_NAME = re.compile(r"[a-z][a-z0-9]{0,5}\Z")
_HOST = re.compile(r"(?:([a-z][a-z0-9]{0,5})-)?h([1-9][0-9]{0,4})\Z")
#: tc's rate units -> bits per second
_UNITS = {"bit": 1, "kbit": 10**3, "mbit": 10**6, "gbit": 10**9, "bps": 8, "kbps": 8 * 10**3}
_UNITS |= {"mbps": 8 * 10**6, "gbps": 8 * 10**9}
_RATE = re.compile(r"([0-9]{1,12}(?:\.[0-9]{1,6})?)(" + "|".join(_UNITS) + r")\Z")
#: where a host's home, /tmp and /var/tmp live: a tmpfs of its own, or directories on this machine's disk
FS_KINDS = ("tmpfs", "machine")
DEFAULT_FS = "tmpfs"
DEFAULT_FS_SIZE = "1g"
#: a tmpfs's size units (binary, as the tmpfs ``size=`` option reads them) -> bytes
_SIZE_UNITS = {"": 1, "k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40}
_SIZE = re.compile(r"([0-9]{1,15})([kmgt]?)\Z")
#: the smallest tmpfs a host gets
MIN_FS_SIZE = 2**20


class ClusterError(PlushError):
    """``plush cluster`` cannot do what was asked; the message says why and what to do. ``exit_code`` is 2 for
    what the user can change before trying again (a name, a range, not root), 1 for a failure on the way."""

    def __init__(self, message: str, *, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def check_name(name: str) -> str:
    """``name`` if it can name a cluster, else ClusterError (exit 2)."""
    if not _NAME.match(name):
        raise ClusterError(
            f"bad cluster name {name[:40]!r}: 1 to 6 characters, a lowercase letter then letters or digits "
            "(it is part of interface names, which Linux keeps within 15 characters)",
            exit_code=2,
        )
    return name


def parse_rate(text: str) -> int:
    """A ``tc`` rate (``100mbit``, ``12.5mbps``, ``800kbit``) in bits per second; ClusterError (exit 2)."""
    m = _RATE.match(text.strip().lower())
    bits = int(float(m.group(1)) * _UNITS[m.group(2)]) if m else 0
    if not m or not 8000 <= bits <= 100 * 10**9:
        raise ClusterError(
            f"bad bandwidth {text[:40]!r}: a rate from 8kbit to 100gbit, like 100mbit, 1gbit or 12.5mbps",
            exit_code=2,
        )
    return bits


def parse_size(text: str) -> int:
    """A tmpfs size (``512m``, ``2g``, ``1073741824``: bytes, or k/m/g/t of 1024) in bytes, at least 1m;
    ClusterError (exit 2)."""
    m = _SIZE.match(text.strip().lower())
    size = int(m.group(1)) * _SIZE_UNITS[m.group(2)] if m else 0
    if size < MIN_FS_SIZE:
        raise ClusterError(
            f"bad file system size {text[:40]!r}: bytes, or a number with k, m, g or t (of 1024), at least 1m, "
            "like 512m, 2g or 1073741824",
            exit_code=2,
        )
    return size


def format_size(size: int) -> str:
    """``size`` bytes in the largest unit of :func:`parse_size` that divides it (``parse_size`` reads it back)."""
    for unit in ("t", "g", "m", "k"):
        if size % _SIZE_UNITS[unit] == 0:
            return f"{size // _SIZE_UNITS[unit]}{unit}"
    return str(size)


def _approx_size(size: int) -> str:
    """``size`` bytes rounded, for a person (``23.5g``)."""
    for unit in ("t", "g", "m", "k"):
        if size >= _SIZE_UNITS[unit]:
            return f"{size / _SIZE_UNITS[unit]:.1f}".rstrip("0").rstrip(".") + unit
    return str(size)


def tbf_burst(rate_bits: int) -> int:
    """The bucket of a ``tbf`` at ``rate_bits``: 10 ms of traffic, at least 32 KiB (tbf needs rate/HZ)."""
    return max(rate_bits // 8 // 100, 32 * 1024)


def parse_subnet(text: str) -> ipaddress.IPv4Network:
    """A private IPv4 network with room for a bridge and a host; ClusterError (exit 2)."""
    try:
        net = ipaddress.ip_network(text.strip(), strict=True)
    except ValueError as exc:
        raise ClusterError(f"bad subnet {text[:40]!r}: {exc} (like {DEFAULT_SUBNET})", exit_code=2) from exc
    if not isinstance(net, ipaddress.IPv4Network) or not net.is_private or net.prefixlen > 29:
        raise ClusterError(
            f"bad subnet {text[:40]!r}: a private IPv4 network of /29 or larger (like {DEFAULT_SUBNET})",
            exit_code=2,
        )
    return net


def overlaps(subnet: ipaddress.IPv4Network, in_use: Iterable[str]) -> list[str]:
    """The networks of ``in_use`` (addresses with a prefix, or routes) that share addresses with ``subnet``."""
    found = []
    for text in in_use:
        try:
            net = ipaddress.ip_interface(text).network
        except ValueError:
            continue
        if isinstance(net, ipaddress.IPv4Network) and net.prefixlen > 0 and net.overlaps(subnet):
            found.append(text)
    return found


@dataclass(frozen=True)
class HostPlan:
    """One host of a cluster: its name, namespace, veth (the bridge's end) and address."""

    index: int
    name: str
    netns: str
    veth: str
    address: str


@dataclass(frozen=True)
class ClusterPlan:
    """Every name and address of a cluster of ``count`` hosts (see the module docstring)."""

    name: str
    count: int
    subnet: str = DEFAULT_SUBNET
    bandwidth: str | None = None
    #: ``tmpfs`` or ``machine`` (:data:`FS_KINDS`)
    fs: str = DEFAULT_FS
    #: each host's tmpfs size as :func:`format_size` writes it (None given: :data:`DEFAULT_FS_SIZE`); None with
    #: ``fs="machine"``
    fs_size: str | None = None

    def __post_init__(self) -> None:
        check_name(self.name)
        net = parse_subnet(self.subnet)
        room = net.num_addresses - 3  # network, bridge, broadcast
        if not 1 <= self.count <= min(MAX_HOSTS, room):
            raise ClusterError(
                f"cannot make {self.count} hosts in {self.subnet}: 1 to {min(MAX_HOSTS, room)} hosts", exit_code=2
            )
        if self.bandwidth is not None:
            parse_rate(self.bandwidth)
        if self.fs not in FS_KINDS:
            raise ClusterError(f"bad file system {self.fs[:40]!r}: {' or '.join(FS_KINDS)}", exit_code=2)
        if self.fs == "machine" and self.fs_size is not None:
            raise ClusterError(
                "--fs-size is the size of each host's tmpfs: it has no meaning with --fs machine", exit_code=2
            )
        if self.fs == "tmpfs":
            object.__setattr__(self, "fs_size", format_size(parse_size(self.fs_size or DEFAULT_FS_SIZE)))

    @property
    def fs_bytes(self) -> int:
        """Each host's tmpfs size in bytes (0 with ``fs="machine"``)."""
        return parse_size(self.fs_size) if self.fs_size is not None else 0

    @property
    def fs_words(self) -> str:
        """The hosts' file systems in words: ``a tmpfs of 1g each``, ``directories on this machine's disk``."""
        return f"a tmpfs of {self.fs_size} each" if self.fs == "tmpfs" else "directories on this machine's disk"

    @cached_property
    def network(self) -> ipaddress.IPv4Network:
        return parse_subnet(self.subnet)

    @property
    def bridge(self) -> str:
        return f"pb-{self.name}"

    @property
    def bridge_address(self) -> str:
        return str(self.network.network_address + 1)

    @property
    def prefix(self) -> int:
        return self.network.prefixlen

    @cached_property
    def hosts(self) -> tuple[HostPlan, ...]:
        base = self.network.network_address + 1
        return tuple(
            HostPlan(k, f"{self.name}-h{k}", f"plush-{self.name}-h{k}", f"pv-{self.name}-{k}", str(base + k))
            for k in range(1, self.count + 1)
        )

    def host(self, text: str) -> HostPlan:
        """The host ``text`` names (``NAME-hK`` or ``hK``); ClusterError (exit 2) when it names none."""
        m = _HOST.match(text)
        if m and m.group(1) in (None, self.name) and int(m.group(2)) <= self.count:
            return self.hosts[int(m.group(2)) - 1]
        raise ClusterError(
            f"no host {text[:40]!r} in cluster {self.name} (its hosts: {self.name}-h1 .. {self.name}-h{self.count})",
            exit_code=2,
        )

    def to_json(self) -> dict[str, Any]:
        plan = {"name": self.name, "count": self.count, "subnet": self.subnet, "bandwidth": self.bandwidth}
        return {**plan, "fs": self.fs, "fs_size": self.fs_size}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ClusterPlan:
        """The plan ``to_json`` wrote; one written before ``fs`` existed had its hosts' files on the disk."""
        fs = str(data.get("fs", "machine"))
        size = data.get("fs_size")
        return cls(
            str(data["name"]),
            int(data["count"]),
            str(data["subnet"]),
            data.get("bandwidth"),
            fs,
            str(size) if size is not None and fs == "tmpfs" else None,
        )


def memory_warning(plan: ClusterPlan, mem_total: int) -> str | None:
    """What to say when the hosts' tmpfs together may hold more than this machine's memory (``mem_total``
    bytes; 0: unknown), or None."""
    if plan.fs != "tmpfs" or mem_total <= 0 or plan.count * plan.fs_bytes <= mem_total:
        return None
    together = format_size(plan.count * plan.fs_bytes)
    return (
        f"{plan.count} host{'s' if plan.count > 1 else ''} with a tmpfs of {plan.fs_size} each may hold {together}, "
        "more than this machine's "
        f"memory ({_approx_size(mem_total)}): a tmpfs takes memory only for what its host writes, so this is fine "
        "unless the hosts write that much; otherwise choose a smaller --fs-size, or --fs machine (the hosts' files "
        "on this machine's disk)"
    )


#: where the clusters of runs (``<resource type="netns">``) take their ranges from, clear of ``DEFAULT_SUBNET``
LEASE_RANGE = "10.214.0.0/15"


def lease_subnet(count: int, taken: Iterable[ipaddress.IPv4Network], within: str = LEASE_RANGE) -> str:
    """The first network of ``within`` with room for ``count`` hosts (a /24 at most; larger for more) that
    overlaps none of ``taken``; ClusterError when every one does."""
    prefix = min(24, 32 - (count + 2).bit_length())
    busy = list(taken)
    for net in ipaddress.ip_network(within).subnets(new_prefix=prefix):
        if isinstance(net, ipaddress.IPv4Network) and not any(net.overlaps(t) for t in busy):
            return str(net)
    raise ClusterError(f"no free /{prefix} left in {within} for a cluster of {count} hosts (plush cluster status)")


def host_name_cluster(text: str) -> str | None:
    """The cluster a host's full name (``NAME-hK``) names, or None (``hK``, or not a host's name)."""
    m = _HOST.match(text)
    return m.group(1) if m else None


# -- command lines (argv lists) ---------------------------------------------------------------------------------


def bridge_commands(plan: ClusterPlan) -> list[list[str]]:
    """Create the bridge and give it the controller's address."""
    br = plan.bridge
    return [
        ["ip", "link", "add", br, "type", "bridge"],
        ["ip", "addr", "add", f"{plan.bridge_address}/{plan.prefix}", "dev", br],
        ["ip", "link", "set", br, "up"],
    ]


def host_commands(plan: ClusterPlan, host: HostPlan) -> list[list[str]]:
    """Create ``host``'s namespace and link, with its address, loopback, route and bandwidth limits."""
    ns, veth = host.netns, host.veth
    commands = [
        ["ip", "netns", "add", ns],
        ["ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns],
        ["ip", "link", "set", veth, "master", plan.bridge, "up"],
        ["ip", "-n", ns, "addr", "add", f"{host.address}/{plan.prefix}", "dev", "eth0"],
        ["ip", "-n", ns, "link", "set", "lo", "up"],
        ["ip", "-n", ns, "link", "set", "eth0", "up"],
        ["ip", "-n", ns, "route", "add", "default", "via", plan.bridge_address],
    ]
    if plan.bandwidth is not None:
        rate = parse_rate(plan.bandwidth)
        tbf = ["root", "tbf", "rate", f"{rate}bit", "burst", str(tbf_burst(rate)), "latency", "50ms"]
        commands += [
            ["tc", "qdisc", "replace", "dev", veth, *tbf],
            ["tc", "-n", ns, "qdisc", "replace", "dev", "eth0", *tbf],
        ]
    return commands


def link_command(host: HostPlan, up: bool) -> list[str]:
    """Cut (``up`` False) or restore ``host``'s link: its veth's bridge end down or up."""
    return ["ip", "link", "set", host.veth, "up" if up else "down"]
