"""One emulated host's files: where they live (:class:`HostDirs`), the command line that starts the host
(:func:`start_command`), and the files written for it and for the cluster (sshd config, ``/etc/hosts``, the
SSH client configs, known_hosts, the directory file). Pure: text and argv lists; :mod:`.manage` writes and
runs them.

Invariants: every path and name reaches a command as one argv element, never through a shell; a host's client
config holds its own block alone (an SSH client reads the whole file for each connection); the directory file
escapes what it quotes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from xml.sax.saxutils import escape

from plush.cluster.plan import SSH_PORT, ClusterPlan, HostPlan

__all__ = [
    "RESOLV_CONF",
    "HostDirs",
    "client_config",
    "directory_file",
    "hosts_file",
    "known_hosts",
    "sshd_config",
    "start_command",
]


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
