"""``plush report``: the failure report of a run from its journal, newest run by default."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

import plush.shell.commands  # noqa: F401  (registers the subcommands)
from plush.controller.events import Event
from plush.controller.journal import Journal
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
    assert result.exit_code == 1
    assert "no run 'nope'" in result.output
