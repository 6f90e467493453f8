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


def _page_data(path: Path) -> dict[str, object]:
    text = path.read_text()
    start = text.index('<script type="application/json" id="plush-timeline-data">')
    body = text[text.index(">", start) + 1 : text.index("</script>", start)]
    data: dict[str, object] = json.loads(body)
    return data


def test_html_writes_the_page_of_a_finished_running_or_dead_run_and_prints_its_path(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    failed = make_run(runs, "20260102-000000-bbbb", failed_run("20260102-000000-bbbb"))
    result = CliRunner().invoke(cli, ["report", "--html", "--runs-dir", str(runs)])
    assert result.exit_code == 1, result.output  # the exit status says how the run went, as plush report's
    assert result.stdout.splitlines() == [str((failed / "report.html").resolve())]
    assert _page_data(failed / "report.html")["finished"] is True
    assert "Root cause" in (failed / "report.html").read_text()

    running = make_run(runs, "20260103-000000-cccc", unfinished_run("20260103-000000-cccc"))
    status = RunStatus.create(running, "20260103-000000-cccc")
    try:
        result = CliRunner().invoke(cli, ["report", "--html", str(running)])
        assert result.exit_code == 3, result.output
        data = _page_data(running / "report.html")
        assert data["finished"] is False and isinstance(data["duration"], float) and data["duration"] > 0.5
    finally:
        status.close()
    result = CliRunner().invoke(cli, ["report", "--html", str(running)])  # its controller is gone: dead
    assert result.exit_code == 4 and _page_data(running / "report.html")["duration"] == 0.5


def test_html_into_a_directory_it_cannot_write_is_one_line(tmp_path: Path) -> None:
    root = make_run(tmp_path, "20260101-000000-aaaa", failed_run("20260101-000000-aaaa"))
    (root / "report.html").mkdir()  # the page cannot replace it
    result = CliRunner().invoke(cli, ["report", "--html", str(root)])
    assert result.exit_code == 2, result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("plush: error: ") and "report.html" in lines[0]
    assert not [p.name for p in root.iterdir() if p.name.startswith(".report.html")]  # no temporary file left
