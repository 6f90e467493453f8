"""The recovery helpers: a host's processes found by environment, limit hysteresis per host, local spares."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid

import pytest

from plush.controller.recovery import HostLimits, host_processes, kill_host_processes, local_spares
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


def test_host_processes_are_found_by_run_and_host_and_killed() -> None:
    code = "import time; time.sleep(60)"
    run_id = f"run-{uuid.uuid4().hex}"  # unique: another test session on this machine never matches
    env = dict(os.environ, PLUSH_SANDBOX_RUN=run_id, PLUSH_HOST="local-7")
    mine = subprocess.Popen([sys.executable, "-c", code], env=env)
    other = subprocess.Popen([sys.executable, "-c", code], env=dict(env, PLUSH_HOST="local-8"))
    try:
        # Popen returns once the child closed its close-on-exec pipe, which the kernel does a moment before it
        # sets up the new environment: until then /proc/PID/environ reads empty. Wait for both to show.
        deadline = time.monotonic() + 30
        while len(host_processes(run_id, None)) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert host_processes(run_id, ["local-7"]) == [mine.pid]
        assert sorted(host_processes(run_id, None)) == sorted([mine.pid, other.pid])
        assert host_processes("run-other", None) == []
        assert kill_host_processes(run_id, ["local-7"]) == [mine.pid]
        assert mine.wait(timeout=10) == -9
        assert other.poll() is None
    finally:
        for proc in (mine, other):
            proc.kill()
            proc.wait()


def test_a_process_of_another_run_with_the_same_id_and_host_names_is_never_touched() -> None:
    """Run ids are unique only within one runs directory: two runs started in the same second in two
    directories share one (``…-0001``), and both have a ``local-1``. The sweep must tell them apart."""
    code = "import time; time.sleep(60)"
    same = {"PLUSH_RUN_ID": "20260101-000000-0001", "PLUSH_HOST": "local-1"}
    ours_token, theirs_token = f"run-{uuid.uuid4().hex}", f"run-{uuid.uuid4().hex}"
    ours = subprocess.Popen([sys.executable, "-c", code], env=dict(os.environ, **same, PLUSH_SANDBOX_RUN=ours_token))
    theirs = subprocess.Popen(
        [sys.executable, "-c", code], env=dict(os.environ, **same, PLUSH_SANDBOX_RUN=theirs_token)
    )
    try:
        deadline = time.monotonic() + 30
        while not (host_processes(ours_token, None) and host_processes(theirs_token, None)):
            assert time.monotonic() < deadline, "the test processes never showed their environment"
            time.sleep(0.01)
        assert kill_host_processes(ours_token, None) == [ours.pid]
        assert ours.wait(timeout=10) == -9
        assert theirs.poll() is None
        with pytest.raises(ValueError):
            host_processes("", None)
    finally:
        for proc in (ours, theirs):
            proc.kill()
            proc.wait()
