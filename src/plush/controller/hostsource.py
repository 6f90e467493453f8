"""The hosts of one run: the matching of its pool, and the replacement of its failed hosts by the matcher.

Role: the bridge between the pure matcher (:mod:`plush.resources.matcher`) and a run. The controller matches
the run's pool once (:func:`match_run`: connected hosts, a pool file's, or the local sandbox's), hands the
run engine each component's hosts (:meth:`HostSource.assigned`) and :meth:`HostSource.new_host` as its source
of new hosts (a rematch after a failure, a service refill). The source follows the run on the event bus
(:meth:`HostSource.observe`, fed by a sink): ``host.failed`` makes a host failed and waiting for its replacement,
``host.restarted`` (restarted in place, or revived by a refresh) makes it one of the component's hosts
again. ``new_host(component)`` asks :func:`~plush.resources.matcher.rematch` with the current matching, the
failed hosts excluded and the latest live samples of host monitors (the controller's table, read at each
call), so a replacement is the best spare *now*: not over the component's live limits, the less loaded
first. When the matcher has none and the run may invent hosts (the local sandbox), a fresh host is taken.

:func:`live_sample` turns a host monitor sample (``host.sample``'s payload: ``load1``, ``mem_available_mb``)
into the matcher's :class:`~plush.resources.matcher.LiveSample`.

Invariants: every host handed out is in the matching, under its component (so its own failure can be
rematched); a failed host is never handed out again unless it was restarted; the matching changes only here.
No I/O: the pool of now and the fresh hosts come from callables the controller gives.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

from plush.controller.catalogue import HOST_FAILED, HOST_RESTARTED
from plush.resources.host import Host, Pool
from plush.resources.matcher import LiveSample, Matching, match, rematch
from plush.spec.model import Project

__all__ = ["EVERY", "HostSource", "expand_counts", "live_sample", "match_run"]

#: the ``hosts`` key of a run or a match that applies to every component (bare ``--hosts N``)
EVERY = "*"


def expand_counts(project: Project, wanted: Mapping[str, int]) -> dict[str, int]:
    """Exact host counts by component: ``"*"`` (every component's) overridden by named ones."""
    every = wanted.get(EVERY)
    counts = {c.name: every for c in project.components} if every is not None else {}
    counts.update({k: v for k, v in wanted.items() if k != EVERY})
    return counts


def live_sample(data: Mapping[str, Any]) -> LiveSample | None:
    """The matcher's view of a host monitor sample (None when it carries neither load nor memory)."""

    def number(key: str) -> float | None:
        value = data.get(key)
        return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None

    load, free = number("load1"), number("mem_available_mb")
    return None if load is None and free is None else LiveSample(load=load, free_mem_mb=free)


class HostSource:
    """The matching of one run and where its new hosts come from."""

    def __init__(
        self,
        project: Project,
        matching: Matching,
        pool: Callable[[], Pool],
        *,
        samples: Mapping[str, LiveSample],
        fresh: Callable[[], Host] | None = None,
    ) -> None:
        """``pool()``: the hosts a replacement may come from now; ``samples``: the live table (read at each
        replacement); ``fresh()``: a new host when the matcher has none (the local sandbox), or None."""
        self.project = project
        self.matching = matching
        self._pool = pool
        self._samples = samples
        self._fresh = fresh
        self._hosts: dict[str, Host] = {h.name: h for h in pool()}
        self.failed: set[str] = set()
        self._waiting: dict[str, list[str]] = {}  # component -> its failed hosts not replaced yet

    def assigned(self) -> dict[str, list[Host]]:
        """Each component's hosts (pool entries), in the matching's order."""
        return {c: [self._hosts[n] for n in names] for c, names in self.matching.hosts.items()}

    def observe(self, name: str, host: str | None, data: Mapping[str, Any]) -> None:
        """One event of the run (its name, host and data): failures and restarts of its hosts count."""
        component = data.get("component")
        if host is None or not isinstance(component, str) or component not in self.matching.hosts:
            return
        if name == HOST_FAILED:
            self.failed.add(host)
            self._waiting.setdefault(component, []).append(host)
        elif name == HOST_RESTARTED:
            self.failed.discard(host)
            if host in self._waiting.get(component, ()):
                self._waiting[component].remove(host)
            if host not in self.matching.hosts[component]:  # replaced before, live again
                self._add(component, host)

    def new_host(self, component: str) -> Host | None:
        """A new host for ``component``: the replacement of its oldest failed host not replaced yet (a
        refill when there is none), chosen by :func:`~plush.resources.matcher.rematch`; else a fresh host
        (when the run may take one); None when there is no host left."""
        waiting = self._waiting.get(component, [])
        failed = waiting.pop(0) if waiting else None
        if failed is not None and failed not in self.matching.hosts[component]:
            failed = None
        pool = self._pool()
        result = rematch(
            self.matching,
            self.project.components,
            pool,
            component,
            failed,
            samples=self._samples,
            excluded=frozenset(self.failed),
        )
        self.matching = result.matching
        if result.replacement is not None:
            host = pool.get(result.replacement)
            assert host is not None  # the matcher chose it from this pool
            self._hosts[host.name] = host
            return host
        if self._fresh is None:
            return None
        host = self._fresh()
        self._hosts[host.name] = host
        self._add(component, host.name)
        return host

    def _add(self, component: str, name: str) -> None:
        hosts = dict(self.matching.hosts)
        hosts[component] = (*hosts[component], name)
        self.matching = replace(self.matching, hosts=hosts)


def match_run(
    project: Project,
    pool: Pool,
    wanted: Mapping[str, int],
    seed: int | None,
    *,
    samples: Mapping[str, LiveSample] | None = None,
    share: bool = False,
    by_group: bool = True,
) -> Matching:
    """The matching of ``project`` on ``pool`` for a run (``wanted``: exact counts, ``"*"`` for every
    component; else as many as each component's max allows): what ``plush plan`` computes with the same
    arguments. MatchError (``COMPONENT: need N, ...``) when no matching exists."""
    counts = expand_counts(project, wanted)
    return match(project.components, pool, wanted=counts, samples=samples, seed=seed, share=share, by_group=by_group)
