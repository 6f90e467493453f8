"""``plush report``: the failure report of a run from its journal, newest run by default."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

import plush.shell.commands  # noqa: F401  (registers the subcommands)
from plush.controller.events import Event
from plush.controller.journal import Journal
from plush.controller.runstatus import RunStatus
from plush.shell.cli import cli


def make_run(runs: Path, run_id: str, events: list[Event]) -> Path:
    root = runs / run_id
    root.mkdir(parents=True)
    journal = Journal(root / "journal.sqlite")
    for event in events:
        journal(event)
    journal.close()
    return root


def failed_run(run_id: str) -> list[Event]:
    return [
        Event(name="run.started", at=100.0, data={"run": run_id, "hosts": 2}),
        Event(
            name="process.exited",
            at=101.0,
            host="local-2",
            block="/app/w/boom/boom",
            instance=1,
            data={"code": 3, "action": "abort", "rule": "application on_failure", "stderr_tail": "it broke"},
        ),
        Event(name="run.finished", at=102.0, data={"ok": False, "reason": "block /app/w/boom failed on local-2"}),
    ]


def test_newest_run_by_default_and_json(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    make_run(
        runs,
        "20260101-000000-aaaa",
        [Event(name="run.started", at=1.0), Event(name="run.finished", at=2.0, data={"ok": True})],
    )
    make_run(runs, "20260102-000000-bbbb", failed_run("20260102-000000-bbbb"))
    result = CliRunner().invoke(cli, ["report", "--runs-dir", str(runs)])
    assert result.exit_code == 1, result.output
    assert "Root cause" in result.output and "local-2" in result.output and "it broke" in result.output
    ok = CliRunner().invoke(cli, ["report", "--runs-dir", str(runs), "20260101-000000-aaaa"])
    assert ok.exit_code == 0 and "No failures" in ok.output
    data = json.loads(CliRunner().invoke(cli, ["report", "--json", str(runs / "20260102-000000-bbbb")]).output)
    assert data["ok"] is False and data["root_cause"]["first_host"] == "local-2"


def test_unknown_run_is_one_clear_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["report", "--runs-dir", str(tmp_path), "nope"])
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        f"plush: error: no run 'nope': expected a run directory or a run id under {tmp_path}/"
    ]


def unfinished_run(run_id: str) -> list[Event]:
    return [
        Event(name="run.started", at=100.0, data={"run": run_id, "hosts": 1}),
        Event(name="host.joined", at=100.5, host="local-1", data={"component": "w"}),
    ]


def test_a_running_run_is_exit_3_and_never_no_failures(tmp_path: Path) -> None:
    """Regression (issue 7, item 10): an unfinished run was reported "No failures", exit 0."""
    root = make_run(tmp_path, "20260101-000000-aaaa", unfinished_run("20260101-000000-aaaa"))
    status = RunStatus.create(root, "20260101-000000-aaaa")  # a controller holds the run
    try:
        result = CliRunner().invoke(cli, ["report", str(root)])
        assert result.exit_code == 3, result.output
        assert "RUNNING" in result.output and "No failures" not in result.output
        data = json.loads(CliRunner().invoke(cli, ["report", "--json", str(root)]).output)
        assert data["outcome"] == "running" and data["finished"] is False
    finally:
        status.close()


def test_a_run_whose_controller_is_gone_is_dead_exit_4(tmp_path: Path) -> None:
    root = make_run(tmp_path, "20260101-000000-aaaa", unfinished_run("20260101-000000-aaaa"))
    RunStatus.create(root, "20260101-000000-aaaa").close()  # says running; nobody holds it: dead
    result = CliRunner().invoke(cli, ["report", "--runs-dir", str(tmp_path)])
    assert result.exit_code == 4, result.output
    assert "DEAD" in result.output and "is gone" in result.output and "No failures" not in result.output
    root2 = make_run(tmp_path, "20260102-000000-bbbb", unfinished_run("20260102-000000-bbbb"))  # no status file
    assert CliRunner().invoke(cli, ["report", str(root2)]).exit_code == 4


def test_a_run_whose_journal_ends_early_says_how_it_ended(tmp_path: Path) -> None:
    root = make_run(tmp_path, "20260101-000000-aaaa", unfinished_run("20260101-000000-aaaa"))
    status = RunStatus.create(root, "20260101-000000-aaaa")
    status.update("failed", "cannot write the journal: database or disk is full")
    status.close()
    result = CliRunner().invoke(cli, ["report", str(root)])
    assert result.exit_code == 1, result.output
    assert "FAILED" in result.output and "disk is full" in result.output
