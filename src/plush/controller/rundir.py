"""A run's results directory: ``<runs_dir>/<run-id>/``.

Layout (documented in docs/operations.md)::

    spec.xml | spec.yaml        the spec as run (a copy of the file given)
    spec.json                   the model as run (plush.spec.model.to_dict)
    journal.sqlite              every event with timestamps
    shared/                     a directory shared by the run's local sandbox hosts (PLUSH_RUN_DIR)
    hosts/<host>/work/          a local sandbox host's working directory
    hosts/<host>/logs/<block>.<process>.<instance>.stdout|stderr
    hosts/<host>/outputs/...    output files collected back from the host
    report.txt, report.json     the failure report (when the run ends)
    report.html                 the report and the timeline in one page (when the run ends)

Run ids are ``YYYYmmdd-HHMMSS-NNNN``: the local time the run started and a counter. Invariants:

- ids are unique per runs directory and their lexicographic order is their creation order, also within
  one second and across processes: :func:`allocate` takes an exclusive ``flock`` on the runs directory,
  picks :func:`next_run_id` of the names there (after the greatest one: same second -> next counter; a
  clock gone back or a full counter -> the greatest stamp, or the next second), and ``mkdir``\\ s it
  (``O_EXCL``: a collision, where the lock does not reach, retries);
- :func:`newest_run` is the greatest id holding a journal: the run started last.

Modes (``results_mode``): everything Plush creates here is ``private`` (directories 0700, files 0600) or
``shared`` (0755 / 0644), set exactly whatever the process umask (which Plush never changes: agents and
applications inherit it). The journal file is created before SQLite opens it, so its ``-wal`` and ``-shm``
get its mode. A collected output keeps its source's permission bits, narrowed to the directory mode (never
widened; never setuid, setgid or sticky). The hosts' working directories belong to the applications: what
they make there keeps its own modes.
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import json
import os
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from plush.spec.model import Project, to_dict
from plush.spec.paths import BlockPath

__all__ = ["RESULTS_MODES", "RunDir", "allocate", "new_run_id", "newest_run", "next_run_id"]

#: ``results_mode`` -> (directory mode, file mode)
RESULTS_MODES: dict[str, tuple[int, int]] = {"private": (0o700, 0o600), "shared": (0o755, 0o644)}

_STAMP = "%Y%m%d-%H%M%S"
_STAMPED = re.compile(r"\d{8}-\d{6}-[0-9A-Za-z]+")
_COUNTED = re.compile(r"(\d{8}-\d{6})-(\d{4})")
_NOFOLLOW = os.O_NOFOLLOW | os.O_CLOEXEC


def new_run_id(now: float | None = None) -> str:
    """The first id of the second ``now`` (local time)."""
    stamp = time.strftime(_STAMP, time.localtime(time.time() if now is None else now))
    return f"{stamp}-0001"


def next_run_id(existing: Iterable[str], now: float) -> str:
    """The id of a run started at ``now`` in a runs directory holding ``existing`` names: the first id of
    ``now``'s second, unless that would not sort after every existing id (pure)."""
    candidate = new_run_id(now)
    last = max((n for n in existing if _STAMPED.fullmatch(n)), default="")
    if candidate > last:
        return candidate
    counted = _COUNTED.fullmatch(last)
    if counted and int(counted[2]) < 9999:
        return f"{counted[1]}-{int(counted[2]) + 1:04d}"
    later = datetime.datetime.strptime(last[:15], _STAMP) + datetime.timedelta(seconds=1)
    return f"{later.strftime(_STAMP)}-0001"


def allocate(runs_dir: Path, mode: int = 0o700, *, attempts: int = 100) -> str:
    """Create the directory of a new run under ``runs_dir`` (made if missing) with ``mode``; its id."""
    runs_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(runs_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        with contextlib.suppress(OSError):  # a file system without locks: O_EXCL below still keeps ids unique
            fcntl.flock(fd, fcntl.LOCK_EX)
        for _ in range(attempts):
            run_id = next_run_id(os.listdir(runs_dir), time.time())
            try:
                os.mkdir(runs_dir / run_id, mode)
            except FileExistsError:
                continue
            os.chmod(runs_dir / run_id, mode)
            return run_id
        raise FileExistsError(f"no free run id under {runs_dir} after {attempts} attempts")
    finally:
        os.close(fd)  # releases the lock


def newest_run(runs_dir: str | Path) -> Path | None:
    """The run directory under ``runs_dir`` with the greatest id that holds a journal, or None."""
    runs_dir = Path(runs_dir)
    try:
        names = os.listdir(runs_dir)
    except OSError:
        return None
    runs = [n for n in names if _STAMPED.fullmatch(n) and (runs_dir / n / "journal.sqlite").is_file()]
    return runs_dir / max(runs) if runs else None


def _flat(block: str) -> str:
    """A block path as one file-name segment: ``/app/cb/p`` → ``cb.p`` (the application name dropped)."""
    parts = BlockPath.parse(block).parts[1:] if block.startswith("/") else (block,)
    return ".".join(parts) or "app"


@dataclass(frozen=True, slots=True)
class RunDir:
    """Paths inside one run's results directory, and the writers that give files their mode.
    ``create()`` makes it on disk."""

    root: Path
    run_id: str
    #: ``private`` or ``shared`` (see the module docstring)
    mode: str = "private"

    @classmethod
    def create(cls, runs_dir: str | Path, run_id: str | None = None, *, mode: str = "private") -> RunDir:
        dir_mode, _ = RESULTS_MODES[mode]
        runs = Path(runs_dir).resolve()
        if run_id is None:
            run_id = allocate(runs, dir_mode)
        else:
            runs.mkdir(parents=True, exist_ok=True)
            (runs / run_id).mkdir(dir_mode)
            os.chmod(runs / run_id, dir_mode)
        rd = cls(root=runs / run_id, run_id=run_id, mode=mode)
        rd.make_dir(rd.shared)
        rd.make_dir(rd.root / "hosts")
        rd.open_file(rd.journal).close()  # before SQLite opens it: its -wal and -shm take its mode
        return rd

    @property
    def dir_mode(self) -> int:
        return RESULTS_MODES[self.mode][0]

    @property
    def file_mode(self) -> int:
        return RESULTS_MODES[self.mode][1]

    @property
    def journal(self) -> Path:
        return self.root / "journal.sqlite"

    @property
    def shared(self) -> Path:
        return self.root / "shared"

    def host(self, host: str) -> Path:
        return self.root / "hosts" / host

    def workdir(self, host: str) -> Path:
        return self.host(host) / "work"

    def log(self, host: str, process_path: str, instance: int, stream: str) -> Path:
        return self.host(host) / "logs" / f"{_flat(process_path)}.{instance}.{stream}"

    def output(self, host: str, name: str) -> Path:
        """Where a collected output file lands; refuses names that would escape the host's directory."""
        base = (self.host(host) / "outputs").resolve()
        target = (base / name).resolve()
        if os.path.commonpath([base, target]) != str(base):
            raise ValueError(f"output name {name!r} escapes the host's output directory")
        return target

    # --- writers: every file and directory Plush makes here gets the run's mode -------------------------

    def make_dir(self, path: Path) -> Path:
        """Make ``path`` (inside the run directory) and its missing parents with the directory mode."""
        missing = []
        here = path
        while here != self.root and not here.is_dir():
            missing.append(here)
            here = here.parent
        for each in reversed(missing):
            with contextlib.suppress(FileExistsError):
                os.mkdir(each, self.dir_mode)
                os.chmod(each, self.dir_mode)
        return path

    def open_file(self, path: Path, *, append: bool = False) -> BinaryIO:
        """Open ``path`` for writing (truncated, or appended to), created with the file mode."""
        self.make_dir(path.parent)
        flags = os.O_WRONLY | os.O_CREAT | _NOFOLLOW | (os.O_APPEND if append else os.O_TRUNC)
        fd = os.open(path, flags, self.file_mode)
        try:
            os.fchmod(fd, self.file_mode)  # exact, whatever the umask
            return os.fdopen(fd, "ab" if append else "wb")
        except BaseException:
            os.close(fd)
            raise

    def write_file(self, name: str | Path, data: bytes) -> Path:
        """Write ``data`` to ``name`` (relative to the run directory) with the file mode."""
        path = self.root / name
        with self.open_file(path) as fh:
            fh.write(data)
        return path

    def write_json(self, name: str, data: Any) -> None:
        self.write_file(name, (json.dumps(data, indent=2, default=str) + "\n").encode())

    def open_log(self, host: str, process_path: str, instance: int, stream: str) -> BinaryIO:
        return self.open_file(self.log(host, process_path, instance, stream), append=True)

    def create_output(self, target: Path) -> BinaryIO:
        """A fresh file for a collected output (0600 until :meth:`seal_output`); a previous one is replaced."""
        self.make_dir(target.parent)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(target)  # never write through an old file (its mode, or a hard link to it)
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW, 0o600)
        return os.fdopen(fd, "wb")

    def seal_output(self, target: Path, source_mode: int | None) -> None:
        """Give a collected output its source's permission bits (0666 when unknown) narrowed to the
        directory mode: ``private`` keeps only the owner's, ``shared`` drops write for group and others."""
        os.chmod(target, (0o666 if source_mode is None else source_mode & 0o777) & self.dir_mode)

    def save_spec(self, project: Project) -> None:
        if project.source and Path(project.source).is_file():
            suffix = Path(project.source).suffix or ".xml"
            self.write_file(f"spec{suffix}", Path(project.source).read_bytes())
        self.write_json("spec.json", to_dict(project))
