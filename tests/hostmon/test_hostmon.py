"""The host monitor: real readings are sane; limits have hysteresis (fake clock)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from plush.hostmon import OK, OVER, HostSample, LimitWatch, read_disk, read_load, read_memory, sample


def make(load: float = 0.5, free: int = 4096) -> HostSample:
    return HostSample(
        time=0.0,
        load1=load,
        load5=load,
        load15=load,
        mem_total_mb=8192,
        mem_available_mb=free,
        disk_total_mb=100_000,
        disk_free_mb=50_000,
    )


def test_real_readings_are_sane(tmp_path: Path) -> None:
    load = read_load()
    assert len(load) == 3
    assert all(x >= 0 for x in load)
    total, available = read_memory()
    assert total > 0
    assert 0 <= available <= total
    disk_total, disk_free = read_disk(str(tmp_path))
    assert disk_total > 0
    assert 0 <= disk_free <= disk_total
    s = sample(str(tmp_path), now=123.0)
    assert s.time == 123.0
    assert s.cpus == os.cpu_count()
    assert s.mem_total_mb == total
    assert HostSample.from_dict(s.to_dict()) == s


def test_readers_parse_proc_files_and_fall_back(tmp_path: Path) -> None:
    (tmp_path / "loadavg").write_text("1.50 0.75 0.25 2/345 6789\n")
    assert read_load(str(tmp_path / "loadavg")) == (1.5, 0.75, 0.25)
    assert len(read_load(str(tmp_path / "missing"))) == 3  # falls back to os.getloadavg
    (tmp_path / "meminfo").write_text("MemTotal:  2048000 kB\nMemFree: 100000 kB\nMemAvailable: 1024000 kB\n")
    assert read_memory(str(tmp_path / "meminfo")) == (2000, 1000)
    # an old kernel without MemAvailable: free + buffers + cached
    (tmp_path / "old").write_text("MemTotal: 4096 kB\nMemFree: 1024 kB\nBuffers: 1024 kB\nCached: 1024 kB\n")
    assert read_memory(str(tmp_path / "old")) == (4, 3)
    assert read_disk(str(tmp_path / "no" / "such" / "dir")) == (0, 0)


def test_over_only_after_a_whole_window_above_the_limit() -> None:
    watch = LimitWatch(max_load=2.0, window=10.0, now=0.0)
    assert watch.observe(make(load=5.0), 0.0) == OK
    assert watch.reasons == ["load 5.00 > max_load 2.0"]
    assert watch.changing_since == 0.0
    assert watch.observe(make(load=5.0), 9.9) == OK
    assert watch.observe(make(load=5.0), 10.0) == OVER
    assert watch.since == 10.0


def test_a_dip_restarts_the_window_both_ways() -> None:
    watch = LimitWatch(max_load=2.0, min_free_mem=512, window=10.0)
    assert watch.observe(make(free=100), 0.0) == OK
    assert watch.observe(make(), 8.0) == OK  # a good sample in between: the spike did not last
    assert watch.changing_since is None
    assert watch.observe(make(free=100), 9.0) == OK
    assert watch.observe(make(free=100), 18.0) == OK
    assert watch.observe(make(free=100), 19.0) == OVER
    assert watch.reasons == ["free memory 100 MB < min_free_mem 512 MB"]
    # back to ok only after a whole window below every limit
    assert watch.observe(make(), 20.0) == OVER
    assert watch.observe(make(load=3.0), 25.0) == OVER  # still over: the calm period starts again
    assert watch.observe(make(), 26.0) == OVER
    assert watch.observe(make(), 35.9) == OVER
    assert watch.observe(make(), 36.0) == OK


def test_no_limits_never_over() -> None:
    watch = LimitWatch(window=0.0)
    assert watch.observe(make(load=1e9, free=0), 0.0) == OK
    with pytest.raises(ValueError):
        LimitWatch(window=-1.0)


@given(st.lists(st.tuples(st.floats(0.0, 2.0), st.booleans()), max_size=60), st.floats(0.5, 10.0))
def test_no_flapping(steps: list[tuple[float, bool]], window: float) -> None:
    """Whenever the state changes, every sample of the preceding ``window`` seconds agreed with the new state."""
    watch = LimitWatch(max_load=1.0, window=window)
    now = 0.0
    history: list[tuple[float, str]] = []
    state = OK
    for dt, high in steps:
        now += dt
        wanted = OVER if high else OK
        history.append((now, wanted))
        new = watch.observe(make(load=5.0 if high else 0.5), now)
        if new != state:
            # the run of agreeing samples ending now spans at least one window
            run_start = now
            for t, w in reversed(history):
                if w != new:
                    break
                run_start = t
            assert now - run_start >= window
            state = new
