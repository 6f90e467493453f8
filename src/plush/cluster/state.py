"""The state of emulated clusters: ``$XDG_STATE_HOME/plush/clusters/NAME.json`` and ``.../clusters/NAME/``.

The JSON file is written before anything of the cluster is created and rewritten after each change, so a
crashed ``up`` (or a killed run) leaves what the next ``down`` needs: the plan (every name derives from it),
the state directory, the sshd pids, which hosts are cut or frozen. ``down`` removes the file last.

The state directory holds the controller's key (``id_ed25519``), ``ssh_config``, ``known_hosts``, the
directory file (``cluster.xml``) and per host ``hosts/hK/``: ``sshd/`` (config, host key, authorized_keys),
``etc/`` (hosts, resolv.conf), ``sshd.log`` and the host's private directories: with ``fs="machine"``
``home/``, ``tmp/``, ``var-tmp/``; with ``fs="tmpfs"`` an empty ``fs/``, on which the host mounts its tmpfs
(holding them) in its own mount namespace, where only the host sees it.

Invariants: writes are atomic (a temporary file renamed); a file that cannot be read as a cluster's state
is a ClusterError naming it; names are checked before they become paths.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from plush.cluster.hostfiles import HostDirs
from plush.cluster.plan import ClusterError, ClusterPlan, check_name
from plush.config import state_dir

__all__ = ["ClusterState", "clusters_dir", "load_state", "names"]


def clusters_dir() -> Path:
    return state_dir() / "clusters"


@dataclass
class ClusterState:
    """A cluster as recorded: its plan, directory, shared paths and what is running or injected."""

    plan: ClusterPlan
    root: str
    shares: list[str] = field(default_factory=list)
    #: host name -> the pid of its first process (hostinit, then its sshd)
    pids: dict[str, int] = field(default_factory=dict)
    cut: list[str] = field(default_factory=list)
    frozen: list[str] = field(default_factory=list)
    #: "starting" until every host's sshd answered, then "up"
    phase: str = "starting"
    #: the cluster of a run (``<resource type="netns">``): its owner ``{"pid", "start", "purpose"}``, whose
    #: death makes it a leftover (:mod:`plush.cluster.lease`); None for ``plush cluster up``'s
    lease: dict[str, Any] | None = None

    @property
    def path(self) -> Path:
        return clusters_dir() / f"{self.plan.name}.json"

    @property
    def directory(self) -> Path:
        return Path(self.root) / "cluster.xml"

    @property
    def ssh_config(self) -> Path:
        return Path(self.root) / "ssh_config"

    @property
    def key(self) -> Path:
        return Path(self.root) / "id_ed25519"

    @property
    def known_hosts(self) -> Path:
        return Path(self.root) / "known_hosts"

    def dirs(self, host: str) -> HostDirs:
        return HostDirs(str(Path(self.root) / "hosts" / host), tmpfs=self.plan.fs == "tmpfs")

    def to_json(self) -> dict[str, Any]:
        return {
            "version": 1,
            **self.plan.to_json(),
            "root": self.root,
            "shares": self.shares,
            "pids": self.pids,
            "cut": self.cut,
            "frozen": self.frozen,
            "phase": self.phase,
            "lease": self.lease,
        }

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = self.path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(self.to_json(), indent=1) + "\n")
        os.replace(tmp, self.path)

    def forget(self) -> None:
        self.path.unlink(missing_ok=True)


def from_json(data: Any, where: Path) -> ClusterState:
    """The state recorded in ``data`` (read from ``where``); ClusterError when it is not one."""
    try:
        return ClusterState(
            plan=ClusterPlan.from_json(data),
            root=str(data["root"]),
            shares=[str(s) for s in data.get("shares", [])],
            pids={str(k): int(v) for k, v in data.get("pids", {}).items()},
            cut=[str(h) for h in data.get("cut", [])],
            frozen=[str(h) for h in data.get("frozen", [])],
            phase=str(data.get("phase", "starting")),
            lease=dict(data["lease"]) if data.get("lease") else None,
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ClusterError(f"{where}: not a cluster's state ({exc}); remove it once the cluster is gone") from exc


def load_state(name: str) -> ClusterState | None:
    """The recorded state of cluster ``name``, or None when there is none."""
    path = clusters_dir() / f"{check_name(name)}.json"
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ClusterError(f"{path}: not a cluster's state ({exc}); remove it once the cluster is gone") from exc
    return from_json(data, path)


def names() -> list[str]:
    """The names of the clusters recorded on this machine (for this user's state directory), sorted."""
    try:
        found = [p.stem for p in clusters_dir().glob("*.json")]
    except OSError:
        return []
    return sorted(n for n in found if _valid(n))


def _valid(name: str) -> bool:
    try:
        check_name(name)
    except ClusterError:
        return False
    return True
