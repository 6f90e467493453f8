"""``plush report [RUN]``: the failure report of a run, finished or still running.

RUN is a run directory or a run id under the runs directory (default: the newest run there). The report is
rebuilt from the run's journal, so it also works on demand while the run goes on (the journal is written in
batches: the last second or so of events may not be in it yet). ``--json`` prints the JSON form.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from plush.errors import PlushError
from plush.shell.cli import cli, load_cli_settings, reports_errors


def find_run(run: str | None, runs_dir: str) -> Path:
    """The run directory named by ``run`` (a path or an id), or the newest one under ``runs_dir``."""
    if run is not None:
        for candidate in (Path(run), Path(runs_dir) / run):
            if (candidate / "journal.sqlite").is_file():
                return candidate
        raise PlushError(f"no run {run!r}: expected a run directory or a run id under {runs_dir}/")
    runs = sorted(p for p in Path(runs_dir).glob("*") if (p / "journal.sqlite").is_file())
    if not runs:
        raise PlushError(f"no run found under {runs_dir}/ (give a run directory or --runs-dir)")
    return runs[-1]


@cli.command("report")
@click.argument("run", required=False)
@click.option("--runs-dir", default=None, help="Where runs are (default: ./plush-runs).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@reports_errors
def report_command(run: str | None, runs_dir: str | None, as_json: bool) -> None:
    """Print the failure report of RUN (default: the newest run)."""
    from plush.controller.report import load_report

    settings = load_cli_settings({"runs_dir": runs_dir})
    rundir = find_run(run, settings.runs_dir)
    report = load_report(rundir / "journal.sqlite")
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2, default=str))
    else:
        click.echo(report.render_text())
    sys.exit(0 if report.ok or not report.finished else 1)
