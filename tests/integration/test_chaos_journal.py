"""Chaos on the journal (issue 7, item 10): it is durable and honest.

- kill -9 of the controller during a quiet run: the journal already holds the run's events (each is on disk
  within about a second, even when no other event follows), stays readable, and ``plush report`` says the run
  is dead (exit 4), having said it was running (exit 3) before;
- a full disk under the runs directory (a 2 MiB tmpfs, root only): the run stops cleanly with one error line
  naming ENOSPC and exit 1, the journal stays readable, the run's status says why, no process survives.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from integration_support import (
    cli_env,
    events,
    kill_session,
    run_cli,
    run_in_process,
    run_processes,
    start_cli,
    wait_until,
    write_spec,
)

from plush.controller.journal import JournalError

QUIET = """\
project: quiet
components:
  w:
    hosts: 1
application:
  execution:
    w:
      blocks:
        - process: hello
          run: [sh, -c, 'echo hello; exec sleep 300']
"""


def _report(run_root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "plush", "report", str(run_root)],
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _run_root(stderr_line: str) -> Path:
    match = re.match(r"plush: run (\S+): results in (.+)$", stderr_line.strip())
    assert match, stderr_line
    return Path(match.group(2))


def _kill_run(run_id: str, root: Path) -> None:
    for pid, _ in run_processes(run_id, root):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def test_kill_9_of_the_controller_in_a_quiet_run_keeps_its_events(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, QUIET)
    env = cli_env(PLUSH_HOSTMON_INTERVAL="3600", PLUSH_AGENT_GRACE="2")  # no periodic event at all
    proc = start_cli(spec, tmp_path / "runs", env=env)
    root: Path | None = None
    try:
        assert proc.stderr is not None and proc.stdout is not None
        root = _run_root(proc.stderr.readline())
        assert "hello" in proc.stdout.readline()  # the process runs; from now on the run is quiet

        def started() -> bool:
            try:
                return any(e.block == "/quiet/w/hello/hello" for e in events(root, "process.started"))
            except JournalError:
                return False  # not created yet

        wait_until(started, 30.0, "process.started in the journal, with no event after it", proc=proc)
        running = _report(root)
        assert running.returncode == 3, running.stdout + running.stderr
        assert "RUNNING" in running.stdout and "No failures" not in running.stdout

        os.kill(proc.pid, signal.SIGKILL)
        proc.communicate(timeout=30)  # reaped, pipes closed
        names = [e.name for e in events(root)]
        assert names[0] == "run.started" and "process.started" in names
        assert "run.finished" not in names
        dead = _report(root)
        assert dead.returncode == 4, dead.stdout + dead.stderr
        assert "DEAD" in dead.stdout and "is gone" in dead.stdout and "No failures" not in dead.stdout
    finally:
        kill_session(proc)
        if root is not None:
            _kill_run(root.name, root)


FLOOD = """\
project: flood
components:
  w:
    hosts: 1
application:
  execution:
    w:
      blocks:
        - process: flood
          run: [sh, -c, 'yes 0123456789abcdefghijklmnopqrstuvwxyz | head -c 50000000; sleep 300']
"""


@pytest.fixture
def full_disk(tmp_path: Path) -> Iterator[Path]:
    """A 2 MiB tmpfs to hold the runs directory (root only)."""
    if os.geteuid() != 0:
        pytest.skip("the disk-full test mounts a small tmpfs, which needs root")
    where = tmp_path / "small"
    where.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(where)], check=False, capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def test_a_full_disk_stops_the_run_cleanly_and_says_why(tmp_path: Path, full_disk: Path) -> None:
    spec = write_spec(tmp_path, FLOOD)
    done = run_cli(spec, full_disk / "runs", "-q")
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("plush: error:")]
    assert len(errors) == 1, done.stderr
    assert "No space left on device" in errors[0] or "disk is full" in errors[0], done.stderr
    root = _run_root(done.stderr.splitlines()[0])
    try:
        evs = events(root)  # readable
        assert evs[0].name == "run.started"
        status = json.loads((root / "status.json").read_text())
        assert status["state"] == "failed"
        assert "No space left on device" in status["reason"] or "disk is full" in status["reason"]
        report = _report(root)
        assert report.returncode == 1, report.stdout + report.stderr
        assert "FAILED" in report.stdout and ("No space left" in report.stdout or "disk is full" in report.stdout)
        page = root / "report.html"  # whole, or not there at all
        assert not page.exists() or page.read_text().endswith("</html>\n")
        assert not list(root.glob(".report.html.*"))
        assert run_processes(root.name, root) == []
    finally:
        _kill_run(root.name, root)


async def test_a_journal_that_cannot_be_written_stops_the_run_at_once(tmp_path: Path, full_disk: Path) -> None:
    """The journal's own write fails first (a disk with little room left, a run with many events and no
    output): the run stops with the journal's error, and what the journal had written stays readable."""
    filler = full_disk / "filler"
    free = os.statvfs(full_disk).f_bavail * os.statvfs(full_disk).f_frsize
    with filler.open("wb") as fh:
        fh.write(b"\0" * max(0, free - 192 * 1024))
    spec = write_spec(tmp_path, QUIET.replace("echo hello; ", ""))
    result = await run_in_process(spec, full_disk / "runs", hostmon_interval=0.005)
    assert not result.ok
    assert result.error is not None
    assert "journal" in str(result.error) and "full" in str(result.error), result.error
    assert result.outcome.reason == str(result.error)
    evs = events(result.rundir.root)
    assert evs and evs[0].name == "run.started"
    status = json.loads((result.rundir.root / "status.json").read_text())
    assert status["state"] == "failed" and "journal" in status["reason"]
    assert run_processes(result.rundir.run_id, result.rundir.root) == []
