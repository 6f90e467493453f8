"""The plan of an emulated cluster: names, addresses, the files written and every command line. Pure.

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

About 500 lines, over the house's 400: the names, sizes, files and command lines of a cluster are one pure
vocabulary, read together by :mod:`.manage` and its tests.

Invariants: a cluster name matches ``[a-z][a-z0-9]{0,5}`` so that every interface name stays within Linux's
15 characters; everything that comes from the user reaches a command as one argv element, never through a
shell; the subnet is a private IPv4 network with room for the bridge and every host.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any
from xml.sax.saxutils import escape

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


@dataclass(frozen=True)
class HostDirs:
    """Where one host's files live under the cluster's state directory. With ``tmpfs`` its home, tmp and
    var-tmp are made by :mod:`.hostinit` in the tmpfs it mounts on ``fs`` (seen only by the host); otherwise
    they are directories of ``root`` on this machine's disk."""

    root: str
    tmpfs: bool = False

    @property
    def sshd(self) -> str:
        return f"{self.root}/sshd"

    @property
    def ssh_config(self) -> str:
        """The client config that reaches this host alone (its directory file entry names it)."""
        return f"{self.root}/ssh_config"

    @property
    def fs(self) -> str:
        """The empty directory the host's tmpfs is mounted on (in the host's mount namespace only)."""
        return f"{self.root}/fs"

    @property
    def _private(self) -> str:
        return self.fs if self.tmpfs else self.root

    @property
    def home(self) -> str:
        return f"{self._private}/home"

    @property
    def tmp(self) -> str:
        return f"{self._private}/tmp"  # noqa: S108 (the host's private /tmp, under the state directory)

    @property
    def var_tmp(self) -> str:
        return f"{self._private}/var-tmp"

    @property
    def hosts_file(self) -> str:
        return f"{self.root}/etc/hosts"

    @property
    def resolv_conf(self) -> str:
        return f"{self.root}/etc/resolv.conf"

    @property
    def log(self) -> str:
        return f"{self.root}/sshd.log"


def start_command(
    plan: ClusterPlan,
    host: HostPlan,
    dirs: HostDirs,
    *,
    python: str,
    hostinit: str,
    outside: str,
    home: str,
    shares: Sequence[str],
    sshd: str,
) -> list[str]:
    """The argv that starts ``host``: in its network namespace, mount and UTS namespaces of its own (its host
    name is its name) where the home, /tmp, /var/tmp, /etc/hosts and /etc/resolv.conf are the host's (its sshd
    directory and ``shares`` kept visible), then its sshd. ``outside`` names the mount namespace hostinit must
    not be in (``up``'s own). With ``plan.fs`` ``tmpfs`` (``dirs.tmpfs``), a tmpfs named after the host's
    namespace is mounted on ``dirs.fs`` first and the home (0700), tmp and var-tmp (1777) made in it."""
    argv = ["ip", "netns", "exec", host.netns, "unshare", "--mount", "--uts", "--propagation", "private", "--"]
    argv += [python, "-I", hostinit, "--outside", outside, "--hostname", host.name]
    if dirs.tmpfs:
        argv += ["--tmpfs", host.netns, dirs.fs, str(plan.fs_bytes)]
        argv += ["--mkdir", dirs.home, "700", "--mkdir", dirs.tmp, "1777", "--mkdir", dirs.var_tmp, "1777"]
    private: tuple[tuple[str, str], ...] = ((dirs.home, home), (dirs.tmp, "/tmp"), (dirs.var_tmp, "/var/tmp"))  # noqa: S108
    private += ((dirs.hosts_file, "/etc/hosts"), (dirs.resolv_conf, "/etc/resolv.conf"))
    for src, dst in private:
        argv += ["--bind", src, dst]
    for path in (dirs.sshd, *shares):
        argv += ["--keep", path]
    return [*argv, "--", sshd, "-D", "-e", "-f", f"{dirs.sshd}/sshd_config"]


# -- files ------------------------------------------------------------------------------------------------------


def sshd_config(host: HostPlan, dirs: HostDirs) -> str:
    """The sshd_config of ``host``: its address only, keys in its sshd directory, root by key only."""
    lines = [
        f"ListenAddress {host.address}:{SSH_PORT}",
        f"HostKey {dirs.sshd}/host_ed25519",
        f"AuthorizedKeysFile {dirs.sshd}/authorized_keys",
        "PidFile none",
        "StrictModes no",
        "UsePAM no",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "PubkeyAuthentication yes",
        "PermitRootLogin prohibit-password",
        "AllowTcpForwarding yes",
        "MaxStartups 100:30:200",
        "Subsystem sftp internal-sftp",  # scp and sftp work as on any host (OpenSSH 9's scp speaks SFTP)
        "LogLevel ERROR",
    ]
    return "\n".join(lines) + "\n"


def hosts_file(plan: ClusterPlan, host: HostPlan) -> str:
    """``/etc/hosts`` of ``host``: loopback, then every host of the cluster by name (itself first) and this
    machine as ``plush-controller``; names resolve at once, with no DNS."""
    others = [h for h in plan.hosts if h != host]
    lines = ["127.0.0.1 localhost", "::1 localhost ip6-localhost ip6-loopback", f"{host.address} {host.name}"]
    lines += [f"{h.address} {h.name}" for h in others] + [f"{plan.bridge_address} plush-controller"]
    return "\n".join(lines) + "\n"


#: ``/etc/resolv.conf`` of every host: no name server (the cluster's network has no DNS: a lookup that misses
#: /etc/hosts fails at once, instead of waiting for a server it cannot reach)
RESOLV_CONF = "# plush cluster: no DNS on this network; the hosts' names are in /etc/hosts\n"
RESOLV_CONF += "options timeout:1 attempts:1\n"


def client_config(plan: ClusterPlan, key: str, known_hosts: str, only: HostPlan | None = None) -> str:
    """The OpenSSH client config that reaches every host (or ``only`` that one) by its name or address: one
    ``Host`` block a host. The cluster's own file (``ssh -F``) has every host; each host's own file has just
    its block, so an SSH client reads a few lines per host, not the whole cluster's (asyncssh reads the whole
    file for each connection: one file for N hosts costs N x N lines)."""
    what = f"host {only.name}" if only is not None else "its hosts"
    lines = [f"# plush cluster {plan.name}: the client config of {what} (ssh -F <this file>)"]
    for host in plan.hosts if only is None else [only]:
        lines += [
            f"Host {host.name} {host.address}",
            f"  HostName {host.address}",
            f"  Port {SSH_PORT}",
            "  User root",
            f"  IdentityFile {key}",
            "  IdentitiesOnly yes",
            f"  UserKnownHostsFile {known_hosts}",
        ]
    return "\n".join(lines) + "\n"


def known_hosts(plan: ClusterPlan, keys: dict[str, str]) -> str:
    """known_hosts lines of every host (its name and address) from ``keys``: host name -> public key line."""
    return "".join(f"{h.name},{h.address} {' '.join(keys[h.name].split()[:2])}\n" for h in plan.hosts)


def directory_file(plan: ClusterPlan, ssh_config: str | Mapping[str, str]) -> str:
    """The PLUSH-FORMAT directory file of the cluster: one ``type="ssh"`` node per host, group = the cluster,
    each naming the client config (``ssh_config``: an absolute path, or one per host name) that the SSH launcher
    reaches it with, whatever the ``ssh_config`` setting says."""

    def config(host: HostPlan) -> str:
        path = ssh_config if isinstance(ssh_config, str) else ssh_config[host.name]
        return escape(path, {'"': "&quot;"})

    nodes = "".join(
        f'    <node hostname="{h.name}" user="root" group="{plan.name}" ssh_port="{SSH_PORT}" netns="{h.netns}"'
        f' ssh_config="{config(h)}"/>\n'
        for h in plan.hosts
    )
    head = f"<!-- plush cluster {plan.name}: {plan.count} hosts in {plan.subnet}; "
    head += "each is reached with the client config its ssh_config names -->\n"
    return f'{head}<plush>\n  <resource_manager type="ssh">\n{nodes}  </resource_manager>\n</plush>\n'
