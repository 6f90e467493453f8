"""The one public async API of the controller. Every front end (CLI, terminal, HTTP, XML-RPC, web UI) calls
this and nothing else.

A :class:`Controller` holds the settings, the event bus, and at most one application run at a time, as in
Plush. ``load`` parses and validates a spec; ``run`` executes it and returns a :class:`RunResult`;
``stop`` (a requested, normal end), ``abort`` (a failure), ``fail_host``, ``release_barrier`` and ``subscribe``
steer and watch the run in progress.

Runs use local sandbox hosts (:mod:`plush.resources.sandbox`): a component whose ``require`` this machine
does not meet is refused before anything starts, and components whose spec names other resources are
announced through ``on_notice``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from plush.config import Settings
from plush.controller.engine import OutputCallback, RunEngine, RunOutcome
from plush.controller.events import EventBus, Subscription
from plush.controller.journal import Journal, JournalError
from plush.controller.preflight import preflight
from plush.controller.report import FailureReport, build_report, load_report, write_report
from plush.controller.rundir import RunDir
from plush.controller.runstatus import RunStatus
from plush.errors import PlushError, StorageError
from plush.launch.base import AgentContact, Launcher
from plush.launch.local import LocalLauncher, SandboxHosts
from plush.resources.sandbox import sandbox_notice
from plush.spec.model import Project

__all__ = ["Controller", "RunResult"]

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


class Controller:
    """One controller: settings, events, and the application run in progress."""

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or Settings()
        self.bus = EventBus()
        self.engine: RunEngine | None = None

    def load(self, path: str | Path) -> Project:
        """Read and validate a spec (Plush XML or YAML); raises SpecError listing every problem."""
        from plush.spec.load import load_spec

        return load_spec(Path(path))

    def subscribe(self, *, maxlen: int | None = None) -> Subscription:
        return self.bus.subscribe(maxlen=maxlen)

    async def run(
        self,
        project: Project,
        *,
        hosts: dict[str, int] | None = None,
        on_output: OutputCallback | None = None,
        on_start: Callable[[RunDir], None] | None = None,
        on_notice: Callable[[str], None] | None = None,
    ) -> RunResult:
        """Run ``project`` on local sandbox hosts (``hosts``: component → count, default each ``min``).

        Raises :class:`~plush.errors.SpecError` (or MatchError, for requirements this machine does not meet)
        before anything starts when :func:`preflight` refuses the run; ``on_notice`` (default: this module's
        logger) hears, after ``on_start``, which components run here instead of the resources their spec
        names."""
        if self.engine is not None and not self.engine.finished:
            raise PlushError("an application is already running on this controller; abort it first")
        counts = preflight(project, self.settings, hosts)
        notice = sandbox_notice(project, counts)
        rundir = RunDir.create(self.settings.runs_dir, mode=self.settings.results_mode)
        # held until the run's end is written; the kernel drops it if this process dies (plush report: dead)
        status = RunStatus.create(rundir.root, rundir.run_id, rundir.file_mode)

        def started(rundir: RunDir) -> None:
            if on_start is not None:
                on_start(rundir)
            if notice is not None:
                (on_notice or log.warning)(notice)

        try:
            return await self._run(project, rundir, status, counts, on_output, started)
        except BaseException as exc:  # interrupted, or could not start: the status says so, not "running"
            if isinstance(exc, asyncio.CancelledError | KeyboardInterrupt):
                status.update("failed", "interrupted by the user (forced stop)")
            else:
                status.update("failed", str(exc) if isinstance(exc, PlushError) else f"internal error: {exc!r}")
            raise
        finally:
            status.close()

    async def _run(
        self,
        project: Project,
        rundir: RunDir,
        status: RunStatus,
        counts: dict[str, int],
        on_output: OutputCallback | None,
        on_start: Callable[[RunDir], None],
    ) -> RunResult:
        rundir.save_spec(project)
        loop = asyncio.get_running_loop()
        journal = Journal(rundir.journal, on_error=lambda error: loop.call_soon_threadsafe(self._storage_failed, error))
        journal.set_meta("run_id", rundir.run_id)
        journal.set_meta("spec", project.source)
        self.bus.add_sink(journal)
        sandbox = SandboxHosts()
        hosts = {c.name: sandbox.take(counts.get(c.name, c.num_hosts.min)) for c in project.components}

        def launcher(contact: AgentContact) -> Launcher:
            return LocalLauncher(
                rundir.root,
                contact,
                stop_grace=self.settings.stop_grace,
                dir_mode=rundir.dir_mode,
                file_mode=rundir.file_mode,
            )

        self.engine = RunEngine(
            project,
            settings=self.settings,
            rundir=rundir,
            bus=self.bus,
            hosts=hosts,
            new_host=lambda component: sandbox.take(1)[0],
            launcher=launcher,
            on_output=on_output,
        )
        on_start(rundir)
        try:
            outcome = await self.engine.run()
        finally:
            self.bus.remove_sink(journal)
            journal_error = await asyncio.to_thread(journal.close)
        error = self.engine.storage_error or journal_error
        if error is not None and outcome.ok:
            outcome = RunOutcome(False, str(error), timings=outcome.timings)
        status.update("completed" if outcome.ok else "stopped" if outcome.stopped else "failed", outcome.reason)
        try:
            report = load_report(rundir.journal)
        except JournalError:  # the journal is unreadable (its writes failed): report from the events in memory
            report = build_report(list(self.bus.history()), rundir_root=rundir.root)
        try:
            write_report(rundir.root, report, mode=rundir.mode)
        except OSError as exc:  # the disk is full (the error that stopped the run says so): no half report
            log.info("cannot write the failure report: %s", exc)
            for name in ("report.txt", "report.json"):
                with contextlib.suppress(OSError):
                    (rundir.root / name).unlink()
        return RunResult(outcome, rundir, report, error)

    def _storage_failed(self, error: StorageError) -> None:
        if self.engine is not None:
            self.engine.storage_failed(error)

    def abort(self, reason: str = "aborted by the user") -> None:
        """End the run in progress as failed (its report names ``reason`` as the root cause)."""
        if self.engine is not None:
            self.engine.abort(reason)

    def stop(self, reason: str = "stopped by request") -> None:
        """End the run in progress on request, cleanly: processes stopped (SIGTERM, ``stop_grace``, SIGKILL),
        outputs collected, agents stopped; its outcome and report say *stopped*, not failed. The path of
        Ctrl-C and of ``quit``."""
        if self.engine is not None:
            self.engine.stop(reason)

    def fail_host(self, host: str) -> None:
        """Mark ``host`` of the run in progress failed (the terminal's ``fail``, coming): the ladder replaces it
        (rematch), goes on without it while its component keeps its min, or aborts the run."""
        if self.engine is None or self.engine.finished:
            raise PlushError("no application is running")
        self.engine.fail_host(host)

    def release_barrier(self, name: str) -> None:
        if self.engine is None:
            raise PlushError("no application is running")
        self.engine.release_barrier(name)
