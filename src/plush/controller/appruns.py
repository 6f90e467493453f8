"""One application run with its records: the spec saved, the journal written, the status kept, the report.

Role: :func:`record_run` is what :meth:`plush.controller.api.Controller.run` does around
:meth:`~plush.controller.engine.RunEngine.run`: it saves the spec in the run directory, journals every event
of the run (a failed journal write stops the run: ``storage_failed``), tells the status file how the run
ended (``completed``, ``stopped``, ``failed``; ``failed`` with the reason when it could not start or was
interrupted) and writes the failure report and ``report.html`` (from the journal, or from the events in memory
when the journal is unreadable; no half report when the disk is full). :class:`RunResult` is what a run returns.

Invariants: the journal is a sink of the bus exactly while the run runs; the status never stays
``running`` after :func:`record_run` returns or raises; the status file is closed in every case.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass

from plush.controller.engine import RunEngine, RunOutcome
from plush.controller.events import RUN_STARTED, Event, EventBus
from plush.controller.journal import Journal, JournalError
from plush.controller.report import FailureReport, build_report, load_report, read_run, write_report
from plush.controller.reportpage import PAGE, page_of, write_page
from plush.controller.rundir import RunDir
from plush.controller.runstatus import RunStatus
from plush.errors import PlushError, StorageError
from plush.spec.model import Project

__all__ = ["RunResult", "record_run"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunResult:
    """The outcome of a run and where its results are."""

    outcome: RunOutcome
    rundir: RunDir
    report: FailureReport | None = None
    #: the run directory could not be written (disk full, ...): the run was stopped because of it
    error: StorageError | None = None

    @property
    def ok(self) -> bool:
        return self.outcome.ok


async def record_run(
    engine: RunEngine,
    project: Project,
    rundir: RunDir,
    status: RunStatus,
    bus: EventBus,
    on_start: Callable[[RunDir], None],
) -> RunResult:
    """Run ``engine`` with its records (see the module docstring)."""
    try:
        return await _record(engine, project, rundir, status, bus, on_start)
    except BaseException as exc:  # interrupted, or could not start: the status says so, not "running"
        if isinstance(exc, asyncio.CancelledError | KeyboardInterrupt):
            status.update("failed", "interrupted by the user (forced stop)")
        else:
            status.update("failed", str(exc) if isinstance(exc, PlushError) else f"internal error: {exc!r}")
        raise
    finally:
        status.close()


async def _record(
    engine: RunEngine,
    project: Project,
    rundir: RunDir,
    status: RunStatus,
    bus: EventBus,
    on_start: Callable[[RunDir], None],
) -> RunResult:
    rundir.save_spec(project)
    loop = asyncio.get_running_loop()
    journal = Journal(rundir.journal, on_error=lambda error: loop.call_soon_threadsafe(engine.storage_failed, error))
    journal.set_meta("run_id", rundir.run_id)
    journal.set_meta("spec", project.source)
    bus.add_sink(journal)
    on_start(rundir)
    try:
        outcome = await engine.run()
    finally:
        bus.remove_sink(journal)
        journal_error = await asyncio.to_thread(journal.close)
    error = engine.storage_error or journal_error
    if error is not None and outcome.ok:
        outcome = RunOutcome(False, str(error), timings=outcome.timings)
    status.update("completed" if outcome.ok else "stopped" if outcome.stopped else "failed", outcome.reason)
    try:
        run = read_run(rundir.journal)
        events, report = run[0], load_report(rundir.journal, run)
    except JournalError:  # the journal is unreadable (its writes failed): report from the events in memory
        events = _this_run(list(bus.history()), rundir.run_id)
        report = build_report(events, rundir_root=rundir.root)
    try:
        write_report(rundir.root, report, mode=rundir.mode)
    except OSError as exc:  # the disk is full (the error that stopped the run says so): no half report
        log.info("cannot write the failure report: %s", exc)
        for name in ("report.txt", "report.json"):
            with contextlib.suppress(OSError):
                (rundir.root / name).unlink()
    try:  # written whole or not at all
        await asyncio.to_thread(lambda: write_page(rundir.root, page_of(events, report), mode=rundir.mode))
    except OSError as exc:
        log.info("cannot write %s: %s", PAGE, exc)
    return RunResult(outcome, rundir, report, error)


def _this_run(events: list[Event], run_id: str) -> list[Event]:
    """The events of run ``run_id`` in a controller's history (which holds earlier runs' too)."""
    for i in range(len(events) - 1, -1, -1):
        if events[i].name == RUN_STARTED and events[i].data.get("run") == run_id:
            return events[i:]
    return events
