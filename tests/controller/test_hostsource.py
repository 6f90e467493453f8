"""Where a run's new hosts come from (pure): :class:`HostSource` replaces a failed host through
``matcher.rematch`` with the failed hosts excluded and the live samples of now, and takes a fresh host (the
local sandbox) only when the matcher has none."""

from __future__ import annotations

from plush.controller.catalogue import HOST_FAILED, HOST_RESTARTED
from plush.controller.hostsource import HostSource, live_sample, match_run
from plush.resources.host import Host, Pool
from plush.resources.matcher import LiveSample
from plush.spec.model import Application, Component, ComponentBlock, HostCount, Project


def project(low: int = 2, high: int = 2, max_load: float | None = None) -> Project:
    comp = Component("w", num_hosts=HostCount(low, high), max_load=max_load)
    return Project("p", Application("app", (ComponentBlock("w", "w", ()),)), components=(comp,))


def hosts(*names: str) -> Pool:
    return Pool(Host(n, "127.0.0.1") for n in names)


def fail(source: HostSource, host: str) -> None:
    source.observe(HOST_FAILED, host, {"component": "w", "reason": "test"})


def test_a_replacement_is_the_spare_the_matcher_prefers_with_the_samples_of_now() -> None:
    pool = hosts("n1", "n2", "n3", "n4")
    samples: dict[str, LiveSample] = {}
    matching = match_run(project(), pool, {}, None)
    assert matching.hosts["w"] == ("n1", "n2") and matching.spares["w"] == ("n3", "n4")
    source = HostSource(project(), matching, lambda: pool, samples=samples)
    samples.update(n3=LiveSample(load=4.0), n4=LiveSample(load=0.5))  # the table fills during the run
    fail(source, "n1")
    new = source.new_host("w")
    assert new is not None and new.name == "n4"  # the 2nd spare, less loaded now
    assert source.matching.hosts["w"] == ("n2", "n4") and source.matching.spares["w"] == ("n3",)


def test_a_spare_over_the_live_limits_is_not_chosen_and_a_failed_host_never_again() -> None:
    proj = project(max_load=2.0)
    pool = hosts("n1", "n2", "n3", "n4")
    samples = {"n3": LiveSample(load=9.0)}
    source = HostSource(proj, match_run(proj, pool, {"w": 2}, None), lambda: pool, samples=samples)
    fail(source, "n2")
    assert (new := source.new_host("w")) is not None and new.name == "n4"
    fail(source, "n4")
    assert source.new_host("w") is None  # n3 is over max_load, n1 is used, n2 and n4 failed: no fresh source
    assert source.matching.hosts["w"] == ("n1",)


def test_the_sandbox_takes_a_fresh_host_when_the_matcher_has_none() -> None:
    pool = hosts("local-1", "local-2")
    made = iter(Host(f"local-{k}", "127.0.0.1") for k in (3, 4))
    source = HostSource(
        project(), match_run(project(), pool, {}, None), lambda: pool, samples={}, fresh=lambda: next(made)
    )
    fail(source, "local-1")
    assert (new := source.new_host("w")) is not None and new.name == "local-3"
    fail(source, "local-3")  # a fresh host is in the matching: its own failure is rematched too
    assert (new := source.new_host("w")) is not None and new.name == "local-4"
    assert source.matching.hosts["w"] == ("local-2", "local-4")
    assert [h.name for h in source.assigned()["w"]] == ["local-2", "local-4"]


def test_a_restarted_host_is_a_host_of_its_component_again() -> None:
    pool = hosts("n1", "n2", "n3")
    source = HostSource(project(), match_run(project(), pool, {}, None), lambda: pool, samples={})
    fail(source, "n1")
    assert (new := source.new_host("w")) is not None and new.name == "n3"
    source.observe(HOST_RESTARTED, "n1", {"component": "w"})  # revived by a service's refresh
    assert source.failed == set() and source.matching.hosts["w"] == ("n2", "n3", "n1")
    fail(source, "n1")
    assert source.new_host("w") is None and source.matching.hosts["w"] == ("n2", "n3")


def test_a_host_monitor_sample_becomes_a_live_sample() -> None:
    sample = {"time": 1.0, "load1": 0.75, "load5": 1.0, "load15": 1.0, "mem_total_mb": 8000, "mem_available_mb": 2048}
    assert live_sample(sample) == LiveSample(load=0.75, free_mem_mb=2048.0)
    assert live_sample({"load1": "high"}) is None
