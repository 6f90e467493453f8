"""What ``plush cluster`` does: up, down, status, cut/restore, freeze/thaw (the plan in :mod:`.plan`).

``up`` records the cluster's state first, then creates the bridge, each host's namespace, link and files, and
starts each host's first process (:mod:`.hostinit`, which becomes its sshd) detached; it returns once every
sshd accepts connections. A failure on the way removes what was made (``down``) and says what failed.

``down`` removes whatever of a cluster exists, whether ``up`` finished or not: every process of each host's
namespace (SIGKILL, until none is left: the host's mount namespace and its mounts, its tmpfs too, die with
them, its only processes), the namespaces (``ip netns del``: their ``/run/netns`` mounts), the veths, the
bridge, the state directory and the state file, in that order. It finds the namespaces and links by the
cluster's names as well as by its state, so leftovers of a crashed ``up`` are removed too. Doing it again
finds nothing and succeeds.

Invariants: only root changes anything (ClusterError, exit 2, otherwise); nothing outside the cluster's names
and its state directory is touched.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from plush.cluster import hostinit, machine
from plush.cluster.hostfiles import (
    RESOLV_CONF,
    client_config,
    directory_file,
    hosts_file,
    known_hosts,
    sshd_config,
    start_command,
)
from plush.cluster.plan import (
    DEFAULT_FS,
    SSH_PORT,
    ClusterError,
    ClusterPlan,
    HostPlan,
    bridge_commands,
    check_name,
    host_commands,
    link_command,
    overlaps,
)
from plush.cluster.state import ClusterState, clusters_dir, load_state, names

__all__ = ["cut", "down", "freeze", "status", "up"]

#: seconds every sshd of a new cluster has to accept connections
SSHD_READY_TIMEOUT = 30.0


def up(
    count: int,
    name: str,
    *,
    subnet: str,
    bandwidth: str | None = None,
    fs: str = DEFAULT_FS,
    fs_size: str | None = None,
    shares: tuple[str, ...] = (),
    lease: dict[str, Any] | None = None,
) -> ClusterState:
    """Create cluster ``name`` of ``count`` hosts (see the module docstring); its state. ``fs``, ``fs_size``:
    the hosts' file systems (:class:`~plush.cluster.plan.ClusterPlan`). ``lease``: the owner of a run's cluster,
    recorded before anything is made (:mod:`plush.cluster.lease`)."""
    machine.require_root()
    plan = ClusterPlan(check_name(name), count, subnet, bandwidth, fs, fs_size)
    machine.require_tools()
    if load_state(name) is not None:
        raise ClusterError(f"cluster {name} exists: plush cluster down {name} first, or another --name", exit_code=2)
    left = _leftovers(plan)
    if left:
        raise ClusterError(
            f"leftovers of a cluster {name} ({', '.join(left[:4])}): plush cluster down {name}", exit_code=2
        )
    taken = overlaps(plan.network, machine.networks_in_use())
    for other in names():
        st = load_state(other)
        if st is not None and plan.network.overlaps(st.plan.network):
            taken.append(f"{st.plan.subnet} of cluster {other}")
    if taken:
        raise ClusterError(
            f"{plan.subnet} is in use here ({', '.join(taken[:3])}): give another private range with --subnet",
            exit_code=2,
        )
    shared = []
    for share in shares:
        path = Path(share).resolve()
        if not path.is_dir():
            raise ClusterError(f"--share {share}: not a directory", exit_code=2)
        shared.append(str(path))
    state = ClusterState(plan, str(clusters_dir() / name), shared, lease=lease)
    state.save()
    try:
        _make(state)
    except BaseException as exc:
        try:
            down(name)
        except ClusterError as again:
            raise ClusterError(f"{exc}; cleaning up failed too: {again}") from exc
        if isinstance(exc, ClusterError):
            raise ClusterError(f"cluster {name} not made: {exc} (what was made is removed)") from exc
        raise
    return state


def _make(state: ClusterState) -> None:
    plan = state.plan
    root = Path(state.root)
    root.mkdir(parents=True, exist_ok=True, mode=0o700)
    client = machine.keygen(state.key, f"plush-cluster-{plan.name}")
    keys = {}
    for host in plan.hosts:
        dirs = state.dirs(host.name)
        private = [dirs.fs] if dirs.tmpfs else [dirs.home, dirs.tmp, dirs.var_tmp]  # tmpfs: hostinit makes them
        for d in (dirs.sshd, *private, str(Path(dirs.hosts_file).parent)):
            Path(d).mkdir(parents=True, exist_ok=True, mode=0o700)
        Path(dirs.hosts_file).write_text(hosts_file(plan, host))
        Path(dirs.resolv_conf).write_text(RESOLV_CONF)
        if not dirs.tmpfs:
            Path(dirs.tmp).chmod(0o1777)
            Path(dirs.var_tmp).chmod(0o1777)
        keys[host.name] = machine.keygen(Path(dirs.sshd) / "host_ed25519", host.name)
        (Path(dirs.sshd) / "authorized_keys").write_text(client)
        (Path(dirs.sshd) / "sshd_config").write_text(sshd_config(host, dirs))
    state.known_hosts.write_text(known_hosts(plan, keys))
    key, known = str(state.key), str(state.known_hosts)
    state.ssh_config.write_text(client_config(plan, key, known))  # every host: for ssh -F
    own = {}
    for host in plan.hosts:  # each host's own, which its directory entry names: a few lines to read a connection
        path = Path(state.dirs(host.name).ssh_config)
        path.write_text(client_config(plan, key, known, only=host))
        own[host.name] = str(path)
    state.directory.write_text(directory_file(plan, own))
    for argv in bridge_commands(plan):
        machine.run(argv)
    for host in plan.hosts:
        for argv in host_commands(plan, host):
            machine.run(argv)
    home = pwd.getpwuid(0).pw_dir
    for host in plan.hosts:
        dirs = state.dirs(host.name)
        argv = start_command(
            plan,
            host,
            dirs,
            python=_python(),
            hostinit=str(Path(hostinit.__file__).resolve()),
            outside=os.readlink("/proc/self/ns/mnt"),
            home=home,
            shares=state.shares,
            sshd=machine.SSHD,
        )
        machine.spawn_detached(argv, Path(dirs.log))
    spaces = {h.address: h.netns for h in plan.hosts}
    late = machine.wait_listening(spaces, SSH_PORT, SSHD_READY_TIMEOUT)
    if late:
        host = next(h for h in plan.hosts if h.address in late)
        log = Path(state.dirs(host.name).log)
        tail = log.read_text(errors="replace").strip().splitlines()[-1:] if log.exists() else []
        raise ClusterError(f"the sshd of {host.name} did not start ({tail[0] if tail else 'no message'}; {log})")
    state.phase = "up"
    state.save()


def _python() -> str:
    import sys

    return sys.executable


def _leftovers(plan: ClusterPlan) -> list[str]:
    pattern = re.compile(rf"plush-{plan.name}-h[0-9]+\Z")
    found = [n for n in machine.namespaces() if pattern.match(n)]
    found += [n for n in machine.links() if n == plan.bridge or re.match(rf"pv-{plan.name}-[0-9]+\Z", n)]
    return found


def down(name: str) -> list[str]:
    """Remove everything of cluster ``name`` (see the module docstring); what was removed, in words."""
    machine.require_root()
    check_name(name)
    state = load_state(name)
    removed: list[str] = []
    spaces = {h.netns for h in state.plan.hosts} if state else set()
    spaces |= {n for n in machine.namespaces() if re.match(rf"plush-{name}-h[0-9]+\Z", n)}
    present = sorted(spaces & set(machine.namespaces()))
    machine.kill_all(present)
    for ns in present:
        machine.run(["ip", "netns", "del", ns])
        removed.append(ns)
    links = [n for n in machine.links() if re.match(rf"pv-{name}-[0-9]+\Z", n)]
    for link in [*links, f"pb-{name}"]:
        # a veth goes with its namespace's end, a moment after ``ip netns del``: gone meanwhile is fine
        if machine.link_exists(link) and machine.run(["ip", "link", "del", link], check=False).returncode == 0:
            removed.append(link)
        if machine.link_exists(link):
            raise ClusterError(f"cannot remove {link}: ip link del {link} failed")
    where = clusters_dir() / name
    if state is not None and Path(state.root) == where and where.is_dir():
        shutil.rmtree(where)
        removed.append(str(where))
    if state is not None:
        state.forget()
    return removed


def the_cluster(name: str | None) -> ClusterState:
    """The state of cluster ``name``, or of the only cluster when None; ClusterError (exit 2) otherwise."""
    if name is None:
        known = names()
        if len(known) != 1:
            raise ClusterError(
                "no cluster is up (plush cluster up N)" if not known else f"clusters {', '.join(known)}: name one",
                exit_code=2,
            )
        name = known[0]
    state = load_state(name)
    if state is None:
        raise ClusterError(f"no cluster {check_name(name)} (plush cluster status lists them)", exit_code=2)
    return state


def _find_host(text: str) -> tuple[ClusterState, HostPlan]:
    cluster = text.rsplit("-", 1)[0] if "-" in text else None
    state = the_cluster(cluster)
    return state, state.plan.host(text)


def cut(text: str, *, restore: bool = False) -> str:
    """Take host ``text``'s link down (or up again when ``restore``); the host's name."""
    machine.require_root()
    state, host = _find_host(text)
    machine.run(link_command(host, up=restore))
    state.cut = sorted(set(state.cut) - {host.name} if restore else set(state.cut) | {host.name})
    state.save()
    return host.name


def freeze(text: str, *, thaw: bool = False) -> tuple[str, int]:
    """Stop every process of host ``text`` (or continue them when ``thaw``); its name and how many."""
    machine.require_root()
    state, host = _find_host(text)
    count = machine.signal_all(host.netns, signal.SIGCONT if thaw else signal.SIGSTOP)
    state.frozen = sorted(set(state.frozen) - {host.name} if thaw else set(state.frozen) | {host.name})
    state.save()
    return host.name, count


@dataclass(frozen=True)
class HostStatus:
    name: str
    address: str
    netns: str
    state: str
    processes: int


def host_state(state: ClusterState, host: HostPlan) -> HostStatus:
    """One host as it is: ``missing`` (no namespace), ``down`` (no process), ``cut``, ``frozen`` or ``up``."""
    pids = machine.netns_pids(host.netns)
    if host.netns not in machine.namespaces():
        word = "missing"
    elif not pids:
        word = "down"
    else:
        marks = [
            w for w, on in (("cut", not machine.link_is_up(host.veth)), ("frozen", host.name in state.frozen)) if on
        ]
        word = "+".join(marks) or "up"
    return HostStatus(host.name, host.address, host.netns, word, len(pids))


def status(name: str | None = None) -> list[dict[str, Any]]:
    """Every recorded cluster (or ``name``'s) with its hosts as they are now."""
    states = [the_cluster(name)] if name is not None else [s for n in names() if (s := load_state(n))]
    out = []
    for st in states:
        hosts = [host_state(st, h) for h in st.plan.hosts]
        out.append(
            {
                **st.plan.to_json(),
                "phase": st.phase,
                "bridge": st.plan.bridge,
                "bridge_address": st.plan.bridge_address,
                "directory": str(st.directory),
                "ssh_config": str(st.ssh_config),
                "shares": st.shares,
                "hosts": [h.__dict__ for h in hosts],
            }
        )
    return out
