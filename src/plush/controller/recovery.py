"""What the run engine's failure handling needs besides the ladder: leftovers, limits, spares.

Role: small, separately testable helpers of :class:`~plush.controller.engine.RunEngine`'s recovery paths.

- :func:`host_processes` / :func:`kill_host_processes`: every process of one host of one run, found in
  ``/proc`` by its environment: each process a host starts carries ``PLUSH_HOST`` and the local launcher's
  run token ``PLUSH_SANDBOX_RUN`` (random, so unique on the machine; run ids are unique only within one
  runs directory, and two runs in two directories may share one).
  Before a failed host is restarted, replaced or dropped, its agent's process group and these leftovers are
  killed, so that a hung agent woken by SIGCONT, or a process it left behind, can never write into the run
  again.
- :class:`HostLimits`: one :class:`~plush.hostmon.limits.LimitWatch` per host whose component sets
  ``max_load`` or ``min_free_mem``, with a hysteresis window of ``limit_samples`` host monitor intervals;
  it says *once* when a host goes over its limits for good.
- :func:`local_spares`: how many local sandbox hosts could replace a failed host of a component now (the
  policy of rematch and of the service refill on this machine).

Invariants: the ``/proc`` helpers never signal the calling process, and never raise for a process that
vanished or belongs to someone else; :meth:`HostLimits.observe` reports a host at most once until
:meth:`HostLimits.forget` (its replacement, or a restart, starts a fresh watch).
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Collection, Iterable, Mapping

from plush.hostmon.limits import OVER, LimitWatch
from plush.hostmon.sample import HostSample
from plush.spec.model import Component

__all__ = ["HostLimits", "host_processes", "kill_host_processes", "local_spares"]


def _environ(pid: int) -> list[bytes]:
    try:
        with open(f"/proc/{pid}/environ", "rb") as fh:
            return fh.read().split(b"\0")
    except OSError:  # gone, or another user's process
        return []


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            data = fh.read()
    except OSError:
        return False
    return data[data.rfind(b")") + 2 :][:1] not in (b"Z", b"X", b"x", b"")


def host_processes(run_token: str, hosts: Collection[str] | None) -> list[int]:
    """Live processes (not this one) whose environment holds ``PLUSH_SANDBOX_RUN=run_token`` and
    ``PLUSH_HOST=h`` for an ``h`` of ``hosts`` (any host of the run when ``hosts`` is None). One pass over
    ``/proc``."""
    if not run_token:
        raise ValueError("a run token is needed")  # an empty one would match nothing, or too much
    run = f"PLUSH_SANDBOX_RUN={run_token}".encode()
    wanted = None if hosts is None else {f"PLUSH_HOST={h}".encode() for h in hosts}
    me = os.getpid()
    found = []
    try:
        names = os.listdir("/proc")
    except OSError:
        return []
    for name in names:
        if not name.isdigit() or int(name) == me:
            continue
        pid = int(name)
        env = _environ(pid)
        if run in env and (wanted is None or not wanted.isdisjoint(env)) and _alive(pid):
            found.append(pid)
    return sorted(found)


def kill_host_processes(run_token: str, hosts: Collection[str] | None) -> list[int]:
    """SIGKILL every process of ``hosts`` (of every host when None) of the run with ``run_token`` (a stopped one dies
    too); the pids signalled."""
    pids = host_processes(run_token, hosts)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    return pids


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
