"""Resources made for the controller: ``create resources`` (:meth:`plush.Controller.create_resources`) and the
hosts a spec's ``<resource type="netns">`` asks for.

Role: a facet of :class:`~plush.controller.api.Controller` (it holds the controller and changes its pool and
mesh only through the controller's own calls). Plush's ``create resources`` leases hosts from a provider; here
the provider is the emulated cluster (:mod:`plush.cluster.lease`): hosts as network namespaces of this machine,
each with its own address, sshd and files, reached over SSH like any ``type="ssh"`` host.

- :meth:`Resources.create`: when the loaded application names ``netns`` resources, a cluster of as many hosts
  as its components need (each its ``num_hosts`` min, or ``hosts``) joins the pool; then every pool host not
  connected is connected (what ``plushCreateResources`` always did).
- :meth:`Resources.for_run`: a run with no host connected and no pool, whose spec names ``netns`` resources,
  runs on a cluster made for it (every component's hosts: one mesh holds one kind of host), matched with any
  resource group, as the local sandbox's are.
- A lease ends with the run (:meth:`Resources.run_ended`: its hosts are disconnected and leave the pool, the
  cluster is removed), whether the run succeeded, failed or was aborted, and at ``quit``. A lease made by
  ``create resources`` ends with the next run. The cluster's state names this process as its owner, so a
  crashed run's cluster goes with the next ``plush cluster down``.

Invariants: only root makes a cluster (otherwise one error line, exit 2, before anything is made); every
lease this controller made is removed by ``quit`` at the latest; the run directory is shared with the hosts
(they meet in ``$PLUSH_RUN_DIR``).
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from plush.cluster.plan import ClusterError
from plush.controller.preflight import preflight
from plush.resources.host import Host, Pool
from plush.spec.model import Project

if TYPE_CHECKING:
    from plush.config import Settings
    from plush.controller.mesh import Mesh

__all__ = ["CreatedResources", "Lease", "Resources", "wants_netns"]

log = logging.getLogger(__name__)

#: the pool states of hosts that ``create resources`` connects
NOT_CONNECTED = ("pooled", "gone", "failed")


class ResourceOwner(Protocol):
    """What the facet uses of its :class:`~plush.controller.api.Controller`: its settings, pool, mesh and
    samples, and its own calls to add, list and connect hosts."""

    settings: Settings
    pool: Pool
    mesh: Mesh | None
    samples: dict[str, Any]

    def add_node(self, host: Host) -> None: ...

    def info(self, what: str) -> Any: ...

    async def connect(self, hosts: Any = None) -> list[str]: ...


def is_root() -> bool:
    """Whether this process may make network namespaces (it is root)."""
    return os.geteuid() == 0


def wants_netns(project: Project) -> bool:
    """Whether a component of ``project`` names a ``netns`` resource."""
    return any(r.type == "netns" for c in project.components for r in c.resources)


def _netns_components(project: Project) -> list[str]:
    return [c.name for c in project.components if any(r.type == "netns" for r in c.resources)]


@dataclass(frozen=True)
class CreatedResources:
    """What ``create resources`` did: the hosts made (and their cluster), and the hosts connected."""

    created: list[str] = field(default_factory=list)
    cluster: str | None = None
    connected: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        return {"created": self.created, "cluster": self.cluster, "connected": self.connected}


@dataclass(frozen=True)
class Lease:
    """A cluster made for this controller: its name and its hosts (``type="ssh"`` pool entries)."""

    cluster: str
    hosts: tuple[Host, ...]


class Resources:
    """The leases of one controller (see the module docstring)."""

    def __init__(self, owner: ResourceOwner) -> None:
        self.owner = owner
        self.leases: list[Lease] = []

    async def _lease(self, project: Project, count: int, purpose: str) -> Lease:
        if not is_root():
            raise ClusterError(
                f'component(s) {", ".join(_netns_components(project))} ask for <resource type="netns"> hosts, '
                "made on this machine as network namespaces: that needs root (run as root, or give a pool with "
                "-d POOLFILE to run elsewhere)",
                exit_code=2,
            )
        from plush.cluster.lease import lease_up
        from plush.resources.directory import parse_directory

        runs = Path(self.owner.settings.runs_dir).resolve()
        runs.mkdir(parents=True, exist_ok=True)
        state = await asyncio.to_thread(lease_up, count, shares=(str(runs),), purpose=purpose)
        hosts = parse_directory(state.directory.read_text(), file=str(state.directory))
        lease = Lease(state.plan.name, tuple(hosts))
        self.leases.append(lease)
        log.info("cluster %s: %d hosts made for %s", lease.cluster, len(hosts), purpose)
        return lease

    async def for_run(self, project: Project, hosts: Mapping[str, int] | None) -> tuple[Pool, dict[str, int]]:
        """The pool of a cluster made for a run of ``project`` (its hosts' counts: ``preflight``'s), and the
        counts."""
        counts = preflight(project, self.owner.settings, hosts)
        lease = await self._lease(project, sum(counts.values()), f"a run of {project.application.name}")
        return Pool(lease.hosts), counts

    async def create(self, project: Project | None, hosts: Mapping[str, int] | None = None) -> CreatedResources:
        """``create resources`` (see the module docstring)."""
        owner = self.owner
        made: Lease | None = None
        if project is not None and wants_netns(project) and not self.leases:
            counts = preflight(project, owner.settings, hosts)
            made = await self._lease(project, sum(counts.values()), "create resources")
            for host in made.hosts:
                owner.add_node(host)
        waiting = [n["name"] for n in owner.info("nodes") if n["state"] in NOT_CONNECTED]
        connected = await owner.connect(waiting) if waiting else []
        return CreatedResources([h.name for h in made.hosts] if made else [], made.cluster if made else None, connected)

    async def run_ended(self) -> None:
        """A run ended: every lease ends with it."""
        await self.release_all()

    async def release_all(self) -> None:
        """End every lease: its hosts disconnected and out of the pool, its cluster removed."""
        while self.leases:
            await self.release(self.leases[0])

    async def release(self, lease: Lease) -> None:
        from plush.cluster.manage import down

        owner = self.owner
        names = [h.name for h in lease.hosts]
        try:
            mesh = owner.mesh
            if mesh is not None and not mesh.closed:
                await mesh.disconnect([n for n in names if n in mesh.members], reason="its lease ended")
                if not mesh.joined():
                    owner.mesh = None
                    await mesh.close()
            for name in names:
                owner.pool.remove(name)
                owner.samples.pop(name, None)
        finally:
            self.leases.remove(lease)
            await asyncio.to_thread(down, lease.cluster)
            log.info("cluster %s removed (its lease ended)", lease.cluster)
