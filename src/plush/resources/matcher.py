"""The matcher: which pool hosts each component of a spec runs on, which are kept as spares, and why not.

Role: the pure decision between the pool (:mod:`plush.resources.host`) and a run. :func:`match` assigns
hosts to components; :func:`rematch` picks the replacement of a failed host. Both take everything they know
as arguments (the pool, the live samples of host monitors, the failed hosts, a seed) and return a value:
no I/O, no clock, no randomness but a :class:`random.Random` seeded by the caller.

Rules (docs/spec.md, "How hosts are matched"):

- A host is a *candidate* of a component when it is in one of the groups the component's ``resources``
  name (every host, when a resource names no group or ``by_group`` is False: the local sandbox), meets
  every ``require`` (:mod:`plush.resources.requirements`), is within ``max_load`` / ``min_free_mem`` when
  its host monitor has reported (``samples``; a host without a sample is not judged), and is not failed
  (``excluded``).
- Each component needs ``wanted[name]`` hosts when given (``--hosts``: exactly that many), else at least its
  ``num_hosts.min``, and takes as many more candidates as ``num_hosts.max`` allows (SWORD's min 10, max 800
  from a pool of 12 takes all 12).
- Unless ``share`` is set, a host serves at most one component. Then the assignment is a bipartite
  b-matching, solved with augmenting paths (Kuhn's algorithm over the components' slots: every
  component's first ``need`` slots, then one more slot per component in turn until none can grow), so a
  matching is found whenever one exists, however the candidate sets overlap, and the total is the largest
  possible.
- Preference: hosts in pool order, or in the order of ``random.Random(seed).shuffle`` of the pool when a
  seed is given; hosts with a live sample first, the less loaded (then the more free memory) first.
- Spares: a component's candidates that no component uses (that it does not use, with ``share``), in
  preference order: :func:`rematch` takes from them first (ranked again by the samples it is given), then
  from the rest of the pool.
- When no matching exists, :class:`~plush.errors.MatchError` names the first component (in spec order) that
  cannot have its hosts: ``senders: need 2, 1 candidate: 3 hosts lack cpu_mhz>=1000 (n4 has cpu_mhz=800),
  1 is failed`` — every pool host that is not a candidate counted once, under the first rule that excluded
  it (group, each ``require`` in spec order, load, memory, failed), then the hosts other components hold.

Invariants (tests/resources/test_matcher.py): every chosen host is a candidate of its component; counts
are within ``min..max`` (exactly ``wanted``); no host serves two components unless ``share``; spares are
candidates and disjoint from every chosen host (from the component's own, with ``share``); the same
arguments give the same matching; ``min`` is never violated: a MatchError instead.

Size: about 400 lines, kept whole: candidates, the assignment that moves hosts between overlapping
components, spares and rematch share one set of private helpers, and the error text counts what each rule
excluded from the same pass.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Any

from plush.errors import MatchError
from plush.resources.host import Host, Pool
from plush.resources.requirements import have, short_requirement, unmet
from plush.spec.model import Component

__all__ = ["LiveSample", "Matching", "Rematch", "candidates", "match", "rematch"]


@dataclass(frozen=True, slots=True)
class LiveSample:
    """The latest reading of a host's monitor: 1-minute load average and free (available) memory in MB."""

    load: float | None = None
    free_mem_mb: float | None = None


@dataclass(frozen=True)
class Matching:
    """Hosts and spares per component (names, in preference order), and the choices that made them."""

    hosts: Mapping[str, tuple[str, ...]]
    spares: Mapping[str, tuple[str, ...]]
    seed: int | None = None
    share: bool = False
    by_group: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "hosts", MappingProxyType({k: tuple(v) for k, v in self.hosts.items()}))
        object.__setattr__(self, "spares", MappingProxyType({k: tuple(v) for k, v in self.spares.items()}))

    def components_of(self, host: str) -> list[str]:
        """The components ``host`` serves (at most one unless ``share``)."""
        return [c for c, names in self.hosts.items() if host in names]

    def used(self) -> list[str]:
        """Every chosen host once, in component order."""
        return list(dict.fromkeys(h for names in self.hosts.values() for h in names))

    def to_dict(self) -> dict[str, Any]:
        """``{"components": {NAME: {"hosts": [...], "spares": [...]}}, "seed": ..., "share": ...}``."""
        return {
            "components": {
                c: {"hosts": list(names), "spares": list(self.spares.get(c, ()))} for c, names in self.hosts.items()
            },
            "seed": self.seed,
            "share": self.share,
        }


@dataclass(frozen=True)
class Rematch:
    """What :func:`rematch` decided: the new matching and the replacement host (None: there is none)."""

    matching: Matching
    replacement: str | None


# --- candidates and their reasons ---------------------------------------------------------------------------


def _groups(comp: Component, by_group: bool) -> frozenset[str] | None:
    """The groups ``comp`` may take hosts from; None: any host."""
    if not by_group or not comp.resources or any(r.group is None for r in comp.resources):
        return None
    return frozenset(r.group for r in comp.resources if r.group is not None)


def _exclusion(
    comp: Component,
    host: Host,
    groups: frozenset[str] | None,
    sample: LiveSample | None,
    excluded: AbstractSet[str],
) -> tuple[str, int] | None:
    """Why ``host`` is not a candidate of ``comp``: a reason key (kind, index) or None when it is one."""
    if groups is not None and host.group not in groups:
        return ("group", 0)
    for i, r in enumerate(comp.requirements):
        if unmet(r, host.properties) is not None:
            return ("require", i)
    if sample is not None:
        if comp.max_load is not None and sample.load is not None and sample.load > comp.max_load:
            return ("load", 0)
        if comp.min_free_mem is not None and sample.free_mem_mb is not None and sample.free_mem_mb < comp.min_free_mem:
            return ("mem", 0)
    if host.name in excluded:
        return ("failed", 0)
    return None


def _ranked(pool: Pool, seed: int | None, samples: Mapping[str, LiveSample]) -> list[Host]:
    """The pool in preference order (see the module docstring)."""
    hosts = list(pool)
    if seed is not None:
        random.Random(seed).shuffle(hosts)

    def key(h: Host) -> tuple[int, float, float]:
        s = samples.get(h.name)
        if s is None:
            return (1, 0.0, 0.0)
        load = s.load if s.load is not None else float("inf")
        free = s.free_mem_mb if s.free_mem_mb is not None else float("-inf")
        return (0, load, -free)

    return sorted(hosts, key=key) if samples else hosts


def candidates(
    comp: Component,
    pool: Pool,
    *,
    samples: Mapping[str, LiveSample] | None = None,
    excluded: AbstractSet[str] = frozenset(),
    seed: int | None = None,
    by_group: bool = True,
) -> list[str]:
    """The candidates of ``comp`` in ``pool``, in preference order."""
    live = samples or {}
    groups = _groups(comp, by_group)
    return [
        h.name for h in _ranked(pool, seed, live) if _exclusion(comp, h, groups, live.get(h.name), excluded) is None
    ]


def _plural(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() and abs(x) < 1e15 else f"{x:g}"


def _explain(
    comp: Component,
    need: int,
    pool: Pool,
    available: int,
    samples: Mapping[str, LiveSample],
    excluded: AbstractSet[str],
    holders: Mapping[str, Sequence[str]],
    by_group: bool,
) -> str:
    """``senders: need 2, 1 candidate: 3 hosts lack cpu_mhz>=1000 (n4 has cpu_mhz=800), 1 is failed``."""
    groups = _groups(comp, by_group)
    counts: dict[tuple[str, int], int] = {}
    example: dict[tuple[str, int], Host] = {}
    for h in pool:
        why = _exclusion(comp, h, groups, samples.get(h.name), excluded)
        if why is not None:
            counts[why] = counts.get(why, 0) + 1
            example.setdefault(why, h)
    parts: list[str] = []
    if ("group", 0) in counts:
        n = counts["group", 0]
        group = " or ".join(sorted(groups or ()))
        parts.append(f"{_plural(n, 'host is', 'hosts are')} not in group {group}")
    for i, r in enumerate(comp.requirements):
        if ("require", i) in counts:
            n, h = counts["require", i], example["require", i]
            verb = "host lacks" if n == 1 else "hosts lack"
            parts.append(f"{n} {verb} {short_requirement(r)} ({h.name} has {have(r.attr, h.properties)})")
    if ("load", 0) in counts:
        n, h = counts["load", 0], example["load", 0]
        parts.append(
            f"{_plural(n, 'host is', 'hosts are')} over max_load {_num(comp.max_load or 0)}"
            f" ({h.name} has load {_num(samples[h.name].load or 0)})"
        )
    if ("mem", 0) in counts:
        n, h = counts["mem", 0], example["mem", 0]
        parts.append(
            f"{_plural(n, 'host is', 'hosts are')} under min_free_mem {comp.min_free_mem} MB"
            f" ({h.name} has {_num(samples[h.name].free_mem_mb or 0)} MB free)"
        )
    if ("failed", 0) in counts:
        parts.append(_plural(counts["failed", 0], "is failed", "are failed"))
    for other, names in holders.items():
        if other != comp.name and names:
            parts.append(f"{_plural(len(names), 'is', 'are')} used by {other}")
    if not len(pool):
        parts.append("the pool is empty")
    head = f"{comp.name}: need {need}, {_plural(available, 'candidate', 'candidates')}"
    return head + (": " + ", ".join(parts) if parts else "")


# --- the assignment ------------------------------------------------------------------------------------------


class _Assignment:
    """Hosts held per component during :func:`match`, with the augmenting-path search (exclusive hosts)."""

    def __init__(self, cands: Mapping[str, list[str]], share: bool) -> None:
        self.cands = cands
        self.share = share
        self.held: dict[str, set[str]] = {c: set() for c in cands}
        self.holder: dict[str, str] = {}
        self._cursor = dict.fromkeys(cands, 0)

    def _take(self, comp: str, host: str) -> None:
        self.held[comp].add(host)
        if not self.share:
            self.holder[host] = comp

    def _give(self, comp: str, host: str) -> None:
        self.held[comp].discard(host)
        self.holder.pop(host, None)

    def free(self, comp: str, host: str) -> bool:
        """Whether ``comp`` could take ``host`` now."""
        return host not in self.held[comp] and (self.share or host not in self.holder)

    def grow(self, comp: str) -> bool:
        """Give ``comp`` one more host, moving others' hosts along an augmenting path if need be."""
        cands = self.cands[comp]
        # fast path: the best free candidate (a host once taken stays taken, so the cursor only advances)
        i = self._cursor[comp]
        while i < len(cands) and not self.free(comp, cands[i]):
            i += 1
        self._cursor[comp] = i
        if i < len(cands):
            self._take(comp, cands[i])
            return True
        if self.share:
            return False
        return self._augment(comp)

    def _augment(self, start: str) -> bool:
        parent: dict[str, tuple[str, str]] = {}  # component -> (the component that wants its host, that host)
        queue = deque([start])
        seen = {start}
        while queue:
            comp = queue.popleft()
            for host in self.cands[comp]:
                if host in self.held[comp]:
                    continue
                owner = self.holder.get(host)
                if owner is None:
                    self._take(comp, host)
                    while comp != start:
                        wants, moved = parent[comp]
                        self._give(comp, moved)
                        self._take(wants, moved)
                        comp = wants
                    return True
                if owner not in seen:
                    seen.add(owner)
                    parent[owner] = (comp, host)
                    queue.append(owner)
        return False


def _needs(components: Sequence[Component], wanted: Mapping[str, int]) -> dict[str, tuple[int, int]]:
    names = {c.name for c in components}
    unknown = sorted(set(wanted) - names)
    if unknown:
        raise ValueError(f"wanted names unknown components: {', '.join(unknown)}")
    bounds: dict[str, tuple[int, int]] = {}
    for c in components:
        if c.name in bounds:
            raise ValueError(f"two components named {c.name!r}")
        low, high = c.num_hosts.min, c.num_hosts.max
        if c.name in wanted:
            n = wanted[c.name]
            if not low <= n <= high:
                raise ValueError(f"wanted {n} hosts for {c.name!r}, outside its num_hosts {low}..{high}")
            low = high = n
        bounds[c.name] = (low, high)
    return bounds


def match(
    components: Iterable[Component],
    pool: Pool,
    *,
    wanted: Mapping[str, int] | None = None,
    samples: Mapping[str, LiveSample] | None = None,
    excluded: AbstractSet[str] = frozenset(),
    seed: int | None = None,
    share: bool = False,
    by_group: bool = True,
) -> Matching:
    """Assign pool hosts to ``components`` (see the module docstring); MatchError when no matching exists.

    ``wanted``: exact host counts by component name (within ``num_hosts``, else ValueError);
    ``samples``: the live readings by host name; ``excluded``: failed hosts; ``seed``: None for pool
    order; ``share``: a host may serve several components; ``by_group``: False lets every host serve every
    component whatever resource group it names (the local sandbox).
    """
    comps = list(components)
    live = samples or {}
    bounds = _needs(comps, wanted or {})
    ranked = _ranked(pool, seed, live)
    rank = {h.name: i for i, h in enumerate(ranked)}
    cands: dict[str, list[str]] = {}
    for c in comps:
        groups = _groups(c, by_group)
        cands[c.name] = [h.name for h in ranked if _exclusion(c, h, groups, live.get(h.name), excluded) is None]
    state = _Assignment(cands, share)
    for c in comps:  # every component's lows first: a matching exists iff all of them fit
        low = bounds[c.name][0]
        while len(state.held[c.name]) < low:
            if not state.grow(c.name):
                holders = {o: sorted(state.held[o] & set(cands[c.name])) for o in cands} if not share else {}
                available = sum(1 for h in cands[c.name] if state.free(c.name, h)) + len(state.held[c.name])
                raise MatchError(
                    _explain(c, low, pool, available, live, excluded, holders, by_group),
                    component=c.name,
                    wanted=low,
                    available=available,
                )
    growing = [c.name for c in comps if len(state.held[c.name]) < bounds[c.name][1]]
    while growing:  # then one more host per component in turn, while any can grow
        growing = [c for c in growing if state.grow(c) and len(state.held[c]) < bounds[c][1]]
    hosts = {c.name: tuple(sorted(state.held[c.name], key=rank.__getitem__)) for c in comps}
    spares = {c.name: tuple(h for h in cands[c.name] if state.free(c.name, h)) for c in comps}
    return Matching(hosts, spares, seed=seed, share=share, by_group=by_group)


def rematch(
    matching: Matching,
    components: Iterable[Component],
    pool: Pool,
    component: str,
    failed: str | None,
    *,
    samples: Mapping[str, LiveSample] | None = None,
    excluded: AbstractSet[str] = frozenset(),
) -> Rematch:
    """Replace ``failed``, a host of ``component`` (None: add one host, a refill): the best of its spares
    that is still a candidate, in the preference of now (the samples and failures of now: the less loaded
    first), else the best candidate the matching does not use; the failed host leaves the matching (hosts
    and spares). ``replacement`` is None when no host can replace it: the caller decides whether the
    component can go on with fewer (at least ``min``)."""
    comp = next((c for c in components if c.name == component), None)
    if comp is None or component not in matching.hosts:
        raise ValueError(f"no component {component!r} in this matching")
    if failed is not None and failed not in matching.hosts[component]:
        raise ValueError(f"{failed!r} is not a host of {component!r}")
    gone = set(excluded) | ({failed} if failed is not None else set())
    hosts = {c: [h for h in names if h != failed] for c, names in matching.hosts.items()}
    spares = {c: [h for h in names if h != failed] for c, names in matching.spares.items()}
    taken = set(hosts[component]) if matching.share else {h for names in hosts.values() for h in names}
    usable = candidates(comp, pool, samples=samples, excluded=gone, seed=matching.seed, by_group=matching.by_group)
    spare_set = set(spares.get(component, ()))
    order = [h for h in usable if h in spare_set] + usable
    replacement = next((h for h in order if h not in taken), None)
    if replacement is not None:
        hosts[component].append(replacement)
        for c in spares if not matching.share else [component]:
            spares[c] = [h for h in spares[c] if h != replacement]
    new = replace(
        matching,
        hosts={c: tuple(names) for c, names in hosts.items()},
        spares={c: tuple(names) for c, names in spares.items()},
    )
    return Rematch(new, replacement)
