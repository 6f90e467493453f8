"""The plan of a run: which hosts each component gets, its spares, the DAG order, what is installed where.

:func:`plan` is what ``plush plan`` shows and what a run would do with the same pool, before any host is
contacted. It is pure: the caller hands it the pool (the local sandbox, a pool file's, a discovery command's)
and the counts, and it asks the matcher as a run does (:func:`plush.controller.hostsource.match_run`: the
same seed, the same matching) and the block DAG
(:func:`plush.spec.dag.order`); a MatchError (exit 2) says why no matching exists.

Invariants: a plan's hosts are the matching's (pool names); ``installs`` lists, for every chosen host, the
software bundles of the components it serves, in spec order, each once; ``order`` has one entry per
component block, its levels those that ``plush check`` prints.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from plush.controller.hostsource import EVERY, match_run
from plush.resources.host import Pool
from plush.resources.matcher import LiveSample, Matching
from plush.spec import dag
from plush.spec.model import Project

__all__ = ["EVERY", "Plan", "plan"]


@dataclass(frozen=True)
class Plan:
    """A matching and what follows from it for one project."""

    project: Project
    pool_size: int
    matching: Matching
    #: component block path -> (its component, its DAG levels)
    order: Mapping[str, tuple[str, list[list[str]]]]
    #: host -> software bundle names installed there
    installs: Mapping[str, tuple[str, ...]]

    def hosts_of_software(self, name: str) -> list[str]:
        """The hosts that install the software bundle ``name``."""
        return [h for h, bundles in self.installs.items() if name in bundles]

    def to_dict(self) -> dict[str, Any]:
        """Plain data for ``plush plan --json``: ``components`` (hosts, spares, software), ``order``,
        ``installs``, ``seed``, ``share``, ``pool`` (its size)."""
        comps = self.matching.to_dict()["components"]
        for c in self.project.components:
            comps[c.name]["software"] = list(c.software)
        return {
            "project": self.project.name,
            "application": str(self.project.application.path),
            "pool": {"hosts": self.pool_size},
            "seed": self.matching.seed,
            "share": self.matching.share,
            "components": comps,
            "order": {path: {"component": c, "levels": levels} for path, (c, levels) in self.order.items()},
            "installs": {h: list(b) for h, b in self.installs.items()},
        }


def plan(
    project: Project,
    pool: Pool,
    wanted: Mapping[str, int] | None = None,
    seed: int | None = None,
    *,
    samples: Mapping[str, LiveSample] | None = None,
    share: bool = False,
    by_group: bool = True,
) -> Plan:
    """The plan of ``project`` on ``pool``: ``wanted`` are exact host counts (``"*"``: every component's),
    the others take as many hosts as ``num_hosts.max`` allows; MatchError when no matching exists."""
    matching = match_run(project, pool, wanted or {}, seed, samples=samples, share=share, by_group=by_group)
    app = project.application
    order = {str(app.path / cb.name): (cb.component, dag.order(cb.blocks)) for cb in app.component_blocks}
    installs: dict[str, list[str]] = {}
    for c in project.components:
        for host in matching.hosts[c.name]:
            bundles = installs.setdefault(host, [])
            bundles.extend(s for s in c.software if s not in bundles)
    ordered = {h: tuple(installs[h]) for h in matching.used()}
    return Plan(project, len(pool), matching, order, ordered)
