"""Clusters of runs: the hosts a spec's ``<resource type="netns">`` asks for, made for one run (a lease).

Role: :func:`lease_up` makes a cluster as ``plush cluster up`` does (:func:`plush.cluster.manage.up`, with its
defaults: each host on a tmpfs of its own of 1g), under a name and in a range of its own (``lNNNNN`` in
:data:`~plush.cluster.plan.LEASE_RANGE`: never a user's cluster's), and records its owner -- this process, by
pid and start time -- in the cluster's state before anything is made. The owner removes it at its end
(:func:`plush.cluster.manage.down`); when the owner died first (a crashed or killed run), the cluster is a
leftover: :func:`stale` names such clusters, and ``plush cluster down`` removes them.

Invariants: a lease's cluster is told from a user's by its recorded owner, never by its name alone; an owner
is alive only if a process of its pid started at its recorded start time (a reused pid is not the owner).
"""

from __future__ import annotations

import ipaddress
import os
import secrets
from pathlib import Path
from typing import Any

from plush.cluster import machine
from plush.cluster.manage import up
from plush.cluster.plan import ClusterError, lease_subnet
from plush.cluster.state import ClusterState, load_state, names

__all__ = ["lease_up", "owner_alive", "stale"]

#: attempts at a fresh name and range (another lease may take the same range between the choice and ``up``)
ATTEMPTS = 3


def _start_time(pid: int) -> int | None:
    """When process ``pid`` started (clock ticks after boot: ``/proc/PID/stat`` field 22), or None."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    try:
        return int(stat.rpartition(")")[2].split()[19])
    except (IndexError, ValueError):
        return None


def owner() -> dict[str, Any]:
    """This process as a lease's owner."""
    pid = os.getpid()
    return {"pid": pid, "start": _start_time(pid)}


def owner_alive(lease: dict[str, Any]) -> bool:
    """Whether the process that holds ``lease`` still runs."""
    try:
        pid = int(lease["pid"])
    except (KeyError, TypeError, ValueError):
        return False
    start = _start_time(pid)
    return start is not None and (lease.get("start") is None or start == lease.get("start"))


def _taken() -> list[ipaddress.IPv4Network]:
    nets: list[ipaddress.IPv4Network] = []
    for text in machine.networks_in_use():
        try:
            net = ipaddress.ip_interface(text).network
        except ValueError:
            continue
        if isinstance(net, ipaddress.IPv4Network) and net.prefixlen > 0:
            nets.append(net)
    for name in names():
        st = load_state(name)
        if st is not None:
            nets.append(st.plan.network)
    return nets


def lease_up(count: int, *, shares: tuple[str, ...] = (), purpose: str = "") -> ClusterState:
    """A new cluster of ``count`` hosts owned by this process (``purpose``: what it is for, in words); its
    state. ClusterError (exit 2) when not root or a tool is missing, as ``plush cluster up``."""
    machine.require_root()
    known = set(names())
    last: ClusterError | None = None
    for _ in range(ATTEMPTS):
        name = "l" + "".join(secrets.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(5))
        if name in known:
            continue
        try:
            return up(
                count, name, subnet=lease_subnet(count, _taken()), shares=shares, lease={**owner(), "purpose": purpose}
            )
        except ClusterError as exc:
            if "in use here" not in str(exc) and "exists" not in str(exc):
                raise
            last = exc
    raise last or ClusterError("cannot choose a name for a run's cluster")


def stale() -> list[str]:
    """The clusters of runs whose owner is gone (leftovers of a crashed run), sorted."""
    found = []
    for name in names():
        try:
            st = load_state(name)
        except ClusterError:
            continue
        if st is not None and st.lease is not None and not owner_alive(st.lease):
            found.append(name)
    return found
