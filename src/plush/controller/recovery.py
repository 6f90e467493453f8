"""What the run engine's failure handling needs besides the ladder: limits and spares.

Role: small, separately testable helpers of :class:`~plush.controller.engine.RunEngine`'s recovery paths.
(What a failed host left running is killed by its launcher: ``Launcher.kill_leftovers``.)

- :class:`HostLimits`: one :class:`~plush.hostmon.limits.LimitWatch` per host whose component sets
  ``max_load`` or ``min_free_mem``, with a hysteresis window of ``limit_samples`` host monitor intervals;
  it says *once* when a host goes over its limits for good.
- :func:`local_spares`: how many local sandbox hosts could replace a failed host of a component now (the
  policy of rematch and of the service refill on this machine).

Invariants: :meth:`HostLimits.observe` reports a host at most once until
:meth:`HostLimits.forget` (its replacement, or a restart, starts a fresh watch).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from plush.hostmon.limits import OVER, LimitWatch
from plush.hostmon.sample import HostSample
from plush.spec.model import Component

__all__ = ["HostLimits", "local_spares"]


class HostLimits:
    """Per-host limit watches of one run; ``observe`` returns the reasons when a host goes over for good."""

    def __init__(self, components: Iterable[Component], *, interval: float, samples: int) -> None:
        self.limits = {
            c.name: (c.max_load, c.min_free_mem)
            for c in components
            if c.max_load is not None or c.min_free_mem is not None
        }
        #: seconds of continuous violation: ``samples`` consecutive samples span ``samples - 1`` intervals
        self.window = max(0, samples - 1) * interval
        self.watches: dict[str, LimitWatch] = {}
        self.reported: set[str] = set()

    def observe(self, host: str, component: str, sample: Mapping[str, object], now: float) -> list[str] | None:
        """Feed one host monitor sample; the violated limits if ``host`` just went over, else ``None``."""
        limits = self.limits.get(component)
        if limits is None or host in self.reported:
            return None
        watch = self.watches.get(host)
        if watch is None:
            watch = self.watches[host] = LimitWatch(limits[0], limits[1], window=self.window, now=now)
        try:
            parsed = HostSample.from_dict(dict(sample))
        except (KeyError, TypeError, ValueError):
            return None
        if watch.observe(parsed, now) == OVER:
            self.reported.add(host)
            return list(watch.reasons)
        return None

    def forget(self, host: str) -> None:
        """``host`` restarts or is replaced: its next samples start a fresh watch."""
        self.watches.pop(host, None)
        self.reported.discard(host)


def local_spares(
    component: Component, *, live_in_component: int, started_total: int, replaced: int, max_local_hosts: int
) -> int:
    """Local sandbox hosts that could join ``component`` now: the component stays within ``num_hosts.max``
    live hosts, the run starts at most ``max_local_hosts`` local hosts in all (``started_total`` so far,
    failed ones included), and the component is given at most ``num_hosts.max`` replacement hosts over the
    whole run (``replaced`` so far), so that a failure every host shares (this machine over a load limit)
    ends in an abort instead of replacing hosts forever."""
    room = component.num_hosts.max - live_in_component
    return max(0, min(room, max_local_hosts - started_total, component.num_hosts.max - replaced))
