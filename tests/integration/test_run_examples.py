"""Every example of ``examples/`` runs as written through the CLI; the service example runs until Ctrl-C.

Each terminating example must exit 0 and leave a journal whose last event is a successful
``run.finished``, with every host finished. ``sword`` (a service) must keep beating until it gets a SIGINT,
then exit 130 and leave no process of the run behind.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from integration_support import (
    events,
    interrupt,
    kill_session,
    only_run,
    run_cli,
    run_processes,
    start_cli,
    wait_until,
)

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

TERMINATING = [
    "tarball.xml",
    "tarball.yaml",
    "filedist.xml",
    "modelnet.xml",
    "workflow.xml",
    "policies.xml",
    "partial.xml",
]


@pytest.mark.slow
@pytest.mark.parametrize("name", TERMINATING)
def test_example_runs_to_success(name: str, tmp_path: Path) -> None:
    result = run_cli(EXAMPLES / name, tmp_path, "-q")
    assert result.returncode == 0, result.stderr
    assert "completed" in result.stderr
    assert result.stdout == ""  # -q: process output is logged, not printed
    root = only_run(tmp_path)
    evs = events(root)
    assert evs[0].name == "run.started"
    assert evs[-1].name == "run.finished" and evs[-1].data["ok"] is True
    hosts = evs[0].data["hosts"]
    finished = [e for e in evs if e.name == "host.finished"]
    assert len(finished) == hosts and all(e.data["ok"] for e in finished)
    assert not [e for e in evs if e.name in ("block.failed", "host.failed")]


def test_tarball_unpacks_and_logs_its_output(tmp_path: Path) -> None:
    result = run_cli(EXAMPLES / "tarball.yaml", tmp_path)
    assert result.returncode == 0, result.stderr
    root = only_run(tmp_path)
    logs = sorted((root / "hosts").glob("*/logs/workers.show.show.1.stdout"))
    assert len(logs) == 2
    for log in logs:
        assert log.read_text().strip()
        host = log.parent.parent.name
        assert f"[{host} /tarball/workers/show/show] {log.read_text().splitlines()[0]}" in result.stdout


@pytest.mark.slow
@pytest.mark.parametrize("name", ["sword.xml", "sword.yaml"])
def test_service_runs_until_interrupted(name: str, tmp_path: Path) -> None:
    proc = start_cli(EXAMPLES / name, tmp_path, "-q")
    try:
        root = wait_until(lambda: next(tmp_path.iterdir(), None), 60, "the run directory", proc=proc)

        def beating() -> bool:
            beats = [p.read_text() for p in root.glob("hosts/*/work/heartbeat.log")]
            return len(beats) == 2 and all("heartbeat 2" in b for b in beats)

        wait_until(beating, 90, "two heartbeats on both hosts", proc=proc)
        assert run_processes(root.name, root)  # the scan finds the run's processes while it runs
        code, _, err = interrupt(proc)
    finally:
        kill_session(proc)
    assert code == 130, err
    assert "stopping" in err
    assert "process.exited" not in err  # processes stopped at the user's request are not reported as failures
    assert run_processes(root.name, root) == []
    evs = events(root)
    assert evs[-1].name == "run.finished" and evs[-1].data["ok"] is False and evs[-1].data["stopped"] is True
    assert evs[-1].data["reason"] == "stopped by request (SIGINT)"
    started = [e for e in evs if e.name == "process.started"]
    exited = [e for e in evs if e.name == "process.exited"]
    assert len(started) == 2
    assert {(e.host, e.block) for e in exited} == {(e.host, e.block) for e in started}
