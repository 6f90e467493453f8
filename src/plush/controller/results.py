"""The runs of a runs directory and their results, for a controller's faces: ``Controller.results``.

Role: the facet the HTTP API's ``/v1/runs/{run}...`` resources read (docs/api.md): the runs there (each with
the state of its status file), one run's status, failure report (rebuilt from its journal, as ``plush
report`` does) and timeline (:mod:`plush.controller.timeline`, as report.html draws it), its per-host logs and
collected outputs (list), and one of those files, opened for reading; and its ``report.html``
(:meth:`RunResults.page`, opened the same way).

The boundary: a file is named by a path the client sends, relative to the run directory, and must be a
regular file under ``hosts/HOST/logs/`` or ``hosts/HOST/outputs/``. :func:`result_path` refuses, before any
file is touched, an empty path, an absolute one, a NUL or other control character, a backslash, an empty,
``.`` or ``..`` component, and anything outside those two directories; :meth:`RunResults.open` then walks
the path one component at a time from the runs directory with ``O_NOFOLLOW`` (``openat``), so no symbolic
link, anywhere on the way (the run's own directory included), is followed, and the end must be a regular
file (a FIFO or a device is refused without blocking). Run ids are checked against the id pattern
(:data:`RUN_ID`). A refusal is :class:`BadResultPath` (a usage error); what is not there is
:class:`NoSuchResult`.
"""

from __future__ import annotations

import os
import re
import stat
import time
from pathlib import Path
from typing import Any, BinaryIO

from plush.controller.catalogue import RUN_FINISHED
from plush.controller.report import FailureReport, load_report, read_run
from plush.controller.reportpage import PAGE
from plush.controller.runstatus import read_status
from plush.controller.timeline import build_timeline
from plush.errors import PlushError

__all__ = ["RUN_ID", "BadResultPath", "NoSuchResult", "RunResults", "result_path"]

#: a run id as :mod:`plush.controller.rundir` makes them
RUN_ID = r"\d{8}-\d{6}-[0-9A-Za-z]+"
_RUN_ID = re.compile(RUN_ID)
#: the directories of a host whose files are served
KINDS = {"logs": "log", "outputs": "output"}
_MAX_PATH = 4096
_OPEN = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC


class BadResultPath(PlushError):
    """A result file's path that is not one (absolute, ``..``, NUL, outside a host's logs and outputs)."""

    exit_code = 2


class NoSuchResult(PlushError):
    """No such run under the runs directory, or no such file among its results."""

    exit_code = 2


def result_path(text: str) -> tuple[str, ...]:
    """The components of a result file's path (``hosts/HOST/logs/NAME`` or ``hosts/HOST/outputs/...``), or
    :class:`BadResultPath` saying why not. Pure."""
    if not text:
        raise BadResultPath("give the path of a result file (hosts/HOST/logs/NAME or hosts/HOST/outputs/...)")
    if len(text) > _MAX_PATH:
        raise BadResultPath(f"a result path of {len(text)} characters is too long")
    if any(ord(c) < 32 or c in "\x7f\\" for c in text):
        raise BadResultPath(f"{text!r}: a result path has no control character or backslash")
    if text.startswith("/"):
        raise BadResultPath(f"{text!r}: a result path is relative to the run directory")
    parts = tuple(text.split("/"))
    if any(p in ("", ".", "..") for p in parts):
        raise BadResultPath(f"{text!r}: a result path has no empty, '.' or '..' component")
    if len(parts) < 4 or parts[0] != "hosts" or parts[2] not in KINDS or (parts[2] == "logs" and len(parts) != 4):
        raise BadResultPath(f"{text!r} is not hosts/HOST/logs/NAME or hosts/HOST/outputs/PATH")
    return parts


class RunResults:
    """The runs under ``runs_dir`` (see the module)."""

    def __init__(self, runs_dir: str | Path) -> None:
        self.runs_dir = Path(runs_dir)

    def runs(self) -> list[dict[str, Any]]:
        """Every run (a directory with a journal), oldest first: ``run``, ``results``, ``state`` (of its status
        file: ``running``, ``completed``, ``failed``, ``stopped``; ``dead`` when its controller is gone before
        its end; ``unknown`` without one), ``reason``, ``at`` (when the state was written)."""
        try:
            names = sorted(n for n in os.listdir(self.runs_dir) if _RUN_ID.fullmatch(n))
        except OSError:
            return []
        out = []
        for name in names:
            root = self.runs_dir / name
            if root.is_symlink() or not (root / "journal.sqlite").is_file():
                continue
            status = read_status(root)
            state = "dead" if status.state == "running" and status.dead else status.state
            out.append(
                {
                    "run": name,
                    "results": str(root.resolve()),
                    "state": state,
                    "reason": status.reason,
                    "at": status.at,
                }
            )
        return out

    def root(self, run: str) -> Path:
        """The directory of run ``run`` (NoSuchResult unless it is a run id with a journal, not a link)."""
        root = self.runs_dir / run
        if not _RUN_ID.fullmatch(run) or root.is_symlink() or not (root / "journal.sqlite").is_file():
            raise NoSuchResult(f"no run {run!r} under {self.runs_dir}/")
        return root

    def report(self, run: str) -> FailureReport:
        """The run's failure report, rebuilt from its journal and status file (as ``plush report``)."""
        return load_report(self.root(run) / "journal.sqlite")

    def timeline(self, run: str) -> dict[str, Any]:
        """The run's timeline (``Timeline.to_dict()``, the JSON report.html holds); a run its controller still
        holds reaches now."""
        events, status = read_run(self.root(run) / "journal.sqlite")
        ended = any(e.name == RUN_FINISHED for e in events)
        return build_timeline(events, now=time.time() if not ended and status.held else None).to_dict()

    def status(self, run: str) -> dict[str, Any]:
        """The run's report without its entries (``outcome``, ``ok``, ``reason``, times), its ``results``
        directory, ``hosts`` (those with a results directory) and ``failures`` (how many entries)."""
        root = self.root(run)
        report = self.report(run)
        summary = {k: v for k, v in report.to_dict().items() if k not in ("entries", "root_cause")}
        summary["run"] = run
        summary["results"] = str(root.resolve())
        summary["failures"] = len(report.entries)
        summary["hosts"] = _hosts(root)
        return summary

    def files(self, run: str) -> list[dict[str, Any]]:
        """Every log and collected output of the run: ``path`` (what :meth:`open` takes), ``host``, ``kind``
        (``log`` or ``output``), ``size``; regular files only (no link followed), sorted by path."""
        root = self.root(run)
        found: list[dict[str, Any]] = []
        for host in _hosts(root):
            for folder, kind in KINDS.items():
                base = root / "hosts" / host / folder
                if base.is_symlink():
                    continue
                for dirpath, _, filenames in os.walk(base):  # never into linked directories
                    for name in filenames:
                        info = os.lstat(os.path.join(dirpath, name))
                        if stat.S_ISREG(info.st_mode):
                            rel = os.path.relpath(os.path.join(dirpath, name), root)
                            found.append({"path": rel, "host": host, "kind": kind, "size": info.st_size})
        return sorted(found, key=lambda f: f["path"])

    def open(self, run: str, path: str) -> BinaryIO:
        """One result file of the run, open for reading (see the module: no link followed, a regular file)."""
        return self._open(run, result_path(path), path)

    def page(self, run: str) -> bytes:
        """The run's ``report.html`` (written when the run ends, or by ``plush report --html``), read whole,
        opened as :meth:`open` opens a file: no link followed, a regular file; NoSuchResult when there is none."""
        try:
            handle = self._open(run, (PAGE,), PAGE)
        except NoSuchResult:
            self.root(run)  # no such run: says so
            raise NoSuchResult(
                f"run {run} has no {PAGE} (it is written when the run ends; 'plush report --html {run}' writes it)"
            ) from None
        with handle:
            return handle.read()

    def _open(self, run: str, parts: tuple[str, ...], path: str) -> BinaryIO:
        if not _RUN_ID.fullmatch(run):
            raise NoSuchResult(f"no run {run!r} under {self.runs_dir}/")
        try:
            fd = os.open(self.runs_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError:
            raise NoSuchResult(f"no run {run!r} under {self.runs_dir}/") from None
        for part in (run, *parts[:-1]):
            fd = _step(fd, part, os.O_DIRECTORY, run, path)
        fd = _step(fd, parts[-1], os.O_NONBLOCK, run, path)
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise NoSuchResult(f"{path} of run {run} is not a regular file")
            os.set_blocking(fd, True)
            handle = os.fdopen(fd, "rb")
        except BaseException:
            os.close(fd)
            raise
        return handle


def _hosts(root: Path) -> list[str]:
    """The hosts with a results directory in the run directory ``root`` (no link), sorted."""
    try:
        return sorted(e.name for e in os.scandir(root / "hosts") if e.is_dir(follow_symlinks=False))
    except OSError:
        return []


def _step(fd: int, name: str, flags: int, run: str, path: str) -> int:
    """Open ``name`` under the directory ``fd`` without following a link; closes ``fd``; the new descriptor."""
    try:
        return os.open(name, _OPEN | flags, dir_fd=fd)
    except OSError:
        raise NoSuchResult(f"no result file {path} in run {run} (or a link on its way)") from None
    finally:
        os.close(fd)
