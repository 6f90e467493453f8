"""The recovery helpers: limit hysteresis per host, local spares."""

from __future__ import annotations

from plush.controller.recovery import HostLimits, local_spares
from plush.spec.model import Component, HostCount


def _sample(free_mb: int, load: float = 0.1) -> dict[str, object]:
    return {
        "time": 0.0,
        "load1": load,
        "load5": load,
        "load15": load,
        "mem_total_mb": 8192,
        "mem_available_mb": free_mb,
        "disk_total_mb": 1000,
        "disk_free_mb": 500,
        "cpus": 2,
    }


def test_a_host_goes_over_after_the_window_and_is_reported_once() -> None:
    comps = [Component("w", min_free_mem=1000), Component("free")]
    limits = HostLimits(comps, interval=1.0, samples=3)
    assert limits.window == 2.0
    assert limits.observe("h1", "w", _sample(500), 0.0) is None  # violation starts
    assert limits.observe("h1", "w", _sample(500), 1.0) is None
    reasons = limits.observe("h1", "w", _sample(500), 2.0)
    assert reasons is not None and "min_free_mem 1000" in reasons[0]
    assert limits.observe("h1", "w", _sample(500), 3.0) is None  # reported once
    assert limits.observe("h2", "free", _sample(1), 0.0) is None  # a component without limits
    limits.forget("h1")
    assert limits.observe("h1", "w", _sample(500), 10.0) is None  # a fresh watch


def test_a_flapping_host_is_never_over() -> None:
    limits = HostLimits([Component("w", max_load=2.0)], interval=1.0, samples=3)
    loads = [5.0, 5.0, 0.5, 5.0, 5.0, 0.5, 5.0]
    assert all(limits.observe("h", "w", _sample(4000, load), float(t)) is None for t, load in enumerate(loads))


def test_local_spares_keep_max_the_host_budget_and_the_replacement_budget() -> None:
    comp = Component("w", num_hosts=HostCount(min=1, max=3))
    assert local_spares(comp, live_in_component=2, started_total=3, replaced=0, max_local_hosts=100) == 1
    assert local_spares(comp, live_in_component=3, started_total=3, replaced=0, max_local_hosts=100) == 0
    assert local_spares(comp, live_in_component=1, started_total=3, replaced=0, max_local_hosts=3) == 0
    assert local_spares(comp, live_in_component=1, started_total=5, replaced=3, max_local_hosts=100) == 0
