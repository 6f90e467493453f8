"""Run records and the sweep of dead runs, with real processes: a "controller" registers a run and starts
processes carrying the run's token, then dies with SIGKILL; :func:`sweep` ends them and removes the record.

Also: a live controller's record is never touched; nothing stale costs nothing; unreadable records, records
with hostile tokens and records being born are handled without a traceback or a wrong kill.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from plush.launch.leftovers import SANDBOX_VARIABLE, new_token, register, sweep
from plush.processes.tree import TAG_VARIABLE, proc_available

pytestmark = pytest.mark.skipif(not proc_available(), reason="needs Linux /proc")

SRC = str(Path(__file__).resolve().parents[2] / "src")

CONTROLLER = """
import os, subprocess, sys, time
from pathlib import Path
from plush.launch.leftovers import register
token, registry, run_dir = sys.argv[1:4]
reg = register(token, Path(run_dir), stop_grace=0.2, directory=Path(registry))
env = dict(os.environ, PLUSH_SANDBOX_RUN=token)
app = subprocess.Popen(
    ["sleep", "1000"], env=dict(env, PLUSH_INSTANCE_TAG="plush-x"), start_new_session=True, stdout=subprocess.DEVNULL
)
agent = subprocess.Popen(["sleep", "1001"], env=env, start_new_session=True, stdout=subprocess.DEVNULL)
print(app.pid, agent.pid, flush=True)
time.sleep(1000)
"""


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return False
    return stat[stat.rfind(b")") + 2 :][:1] not in (b"Z", b"X", b"x")


@pytest.fixture
def spawned() -> Iterator[list[int]]:
    pids: list[int] = []
    yield pids
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _controller(tmp_path: Path, registry: Path, spawned: list[int]) -> tuple[subprocess.Popen[str], str, list[int]]:
    token = new_token()
    proc = subprocess.Popen(
        [sys.executable, "-c", CONTROLLER, token, str(registry), str(tmp_path / "runs" / "20260101-000000-abcd")],
        stdout=subprocess.PIPE,
        text=True,
        env=dict(os.environ, PYTHONPATH=SRC),
    )
    assert proc.stdout is not None
    pids = [int(w) for w in proc.stdout.readline().split()]
    spawned.extend([proc.pid, *pids])
    return proc, token, pids


def test_a_dead_controller_s_processes_are_ended_and_its_record_removed(tmp_path: Path, spawned: list[int]) -> None:
    registry = tmp_path / "registry"
    proc, _, (app, agent) = _controller(tmp_path, registry, spawned)
    assert sweep(registry) == []  # alive: its lock is held
    assert _alive(app) and _alive(agent)
    proc.kill()
    proc.communicate()
    (cleanup,) = sweep(registry)
    assert cleanup.application == (app,) and cleanup.plush == (agent,)
    assert cleanup.controller_pid == proc.pid and cleanup.run_id == "20260101-000000-abcd"
    line = cleanup.describe()
    assert "20260101-000000-abcd" in line and f"pid {proc.pid}" in line and "died" in line
    assert "killed 2 processes" in line and "1 application" in line
    assert not _alive(app) and not _alive(agent)
    assert list(registry.iterdir()) == []
    assert sweep(registry) == []


def test_a_live_registration_is_left_alone_and_closing_removes_it(tmp_path: Path) -> None:
    registry = tmp_path / "registry"
    reg = register(new_token(), tmp_path / "run-1", stop_grace=1.0, directory=registry)
    try:
        assert sweep(registry) == []
        assert [p.suffix for p in registry.iterdir()] == [".json"]
    finally:
        reg.close()
    assert list(registry.iterdir()) == []
    assert sweep(tmp_path / "missing") == []


def test_a_dead_run_that_left_nothing_is_reported_once(tmp_path: Path) -> None:
    registry = tmp_path / "registry"
    registry.mkdir()
    record = {"token": new_token(), "run_id": "r1", "run_dir": "/x/r1", "controller_pid": 123, "stop_grace": 1}
    (registry / f"{record['token']}.json").write_text(json.dumps(record))
    (cleanup,) = sweep(registry)
    assert cleanup.describe() == "run r1 (results in /x/r1): its controller (pid 123) died; " + (
        "nothing of it was left running; removed its record"
    )
    assert sweep(registry) == []


def test_temporary_records_are_removed_only_when_old(tmp_path: Path) -> None:
    registry = tmp_path / "registry"
    registry.mkdir()
    young, old = registry / "run-young.tmp", registry / "run-old.tmp"
    young.write_text("")
    old.write_text("")
    past = time.time() - 3600
    os.utime(old, (past, past))
    assert sweep(registry) == []
    assert [p.name for p in registry.iterdir()] == ["run-young.tmp"]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    content=st.one_of(
        st.binary(max_size=200),
        st.dictionaries(
            st.sampled_from(["token", "run_id", "run_dir", "controller_pid", "stop_grace"]),
            st.one_of(st.none(), st.integers(), st.floats(allow_nan=True), st.text(max_size=30)),
        ).map(lambda d: json.dumps(d).encode()),
    )
)
def test_any_record_content_is_removed_without_a_traceback_or_a_stray_kill(tmp_path: Path, content: bytes) -> None:
    """Whatever a record file holds, the sweep removes it and signals no process but those that carry the
    record's own token (none here: this test's processes carry none)."""
    registry = tmp_path / "hyp"
    registry.mkdir(exist_ok=True)
    (registry / "run-x.json").write_bytes(content)
    assert os.environ.get(SANDBOX_VARIABLE) is None and os.environ.get(TAG_VARIABLE) is None
    cleanups = sweep(registry)
    assert len(cleanups) == 1
    assert cleanups[0].application == () and cleanups[0].plush == ()
    assert isinstance(cleanups[0].describe(), str)
    assert not (registry / "run-x.json").exists()
