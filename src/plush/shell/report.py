"""``plush report [RUN]``: the failure report of a run, finished, still running, or dead.

RUN is a run directory's path or a run id under the runs directory (default: the newest run there). The
report is rebuilt from the run's journal (an event is in it within about a second), completed by the run's
status file (``status.json``: how the run ended, and whether its controller still holds it). ``--json``
prints the JSON form; ``--html`` writes (again) the run's ``report.html`` (its failure report and timeline in one
page, :mod:`plush.controller.reportpage`) and prints its path.

Exit status (docs/commands.md): 0 the run completed (or was stopped on request); 1 it failed; 3 it is still
running; 4 it is dead (its controller is gone and it never finished); 2 no such run, or its journal cannot be
read.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from plush.errors import PlushError
from plush.shell.cli import clean_up_dead_runs, cli, load_cli_settings

__all__ = ["NoSuchRun", "find_run"]


class NoSuchRun(PlushError):
    """The run named on the command line (or any run, when none is named) cannot be found."""

    exit_code = 2


def find_run(run: str | None, runs_dir: str) -> Path:
    """The run directory named by ``run`` (a path or an id), or the newest one under ``runs_dir``."""
    if run is not None:
        for candidate in (Path(run), Path(runs_dir) / run):
            if (candidate / "journal.sqlite").is_file():
                return candidate
        raise NoSuchRun(f"no run {run!r}: expected a run directory or a run id under {runs_dir}/")
    base = Path(runs_dir)
    if base.exists() and not base.is_dir():
        raise NoSuchRun(f"the runs directory {runs_dir} is not a directory")
    from plush.controller.rundir import newest_run

    newest = newest_run(base)
    if newest is None:
        raise NoSuchRun(f"no run found under {runs_dir}/ (give a run directory or --runs-dir)")
    return newest


@cli.command("report")
@click.argument("run", required=False)
@click.option("--runs-dir", default=None, help="Where runs are (default: ./plush-runs).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--html", "as_html", is_flag=True, help="Write the run's report.html; print its path.")
def report_command(run: str | None, runs_dir: str | None, as_json: bool, as_html: bool) -> None:
    """Print the failure report of RUN (default: the newest run).

    Exit status: 0 completed or stopped on request, 1 failed, 3 still running, 4 dead (controller gone),
    2 no such run."""
    from plush.controller.report import load_report

    settings = load_cli_settings({"runs_dir": runs_dir})
    for line in clean_up_dead_runs():
        click.echo(line, err=True)
    rundir = find_run(run, settings.runs_dir)
    if as_html:
        from plush.controller.reportpage import write_run_page

        path, report = write_run_page(rundir)
        click.echo(str(path.resolve()))
        sys.exit(report.exit_status)
    report = load_report(rundir / "journal.sqlite")
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2, default=str))
    else:
        click.echo(report.render_text())
    sys.exit(report.exit_status)
