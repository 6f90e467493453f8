"""Leftovers of dead local runs: every local launcher registers its run; the next ``plush`` command on this
machine ends what a dead one left behind.

Role: the last line of "no orphan survives" for local sandbox hosts. Agents end their processes, a guard
ends an agent's processes when the agent is killed (:mod:`plush.agent.guard`), the fork server ends its
agents when the controller goes; what survives all of that (a guard that was itself killed or stopped, a
machine under such load that nothing got to run) is found here.

- :func:`register` (called by :class:`~plush.launch.local.LocalLauncher` before its first agent starts)
  writes ``$XDG_STATE_HOME/plush/sandbox/<token>.json`` -- the run's id and directory, the controller's pid,
  the stop grace -- and holds an exclusive ``flock`` on it for as long as the controller lives. The token
  is also in the environment of everything the launcher starts (``PLUSH_SANDBOX_RUN=<token>``: the fork
  server, the agents, their guards, and every application process, since agents pass their environment on).
- :func:`sweep` (called by ``plush run`` and ``plush report``) looks at every record whose lock it can take
  -- the kernel released it: that controller is dead --, finds the live processes that carry its token
  (``/proc``), ends them (SIGTERM and SIGCONT, the run's ``stop_grace``, SIGKILL), removes the record and
  returns one :class:`Cleanup` per dead run, which says in one line what was found and removed.

Invariants: a live controller's record is never touched (its lock is held; the lock's file descriptor is
never inherited); a record is locked before it is published under its final name (written under a
temporary name, locked, renamed), so a sweeper never takes a record being born for a dead one; two
sweepers never both act on one record (the second finds it unlinked). Cheap when nothing is stale: one
``listdir`` of a small directory, no ``/proc`` pass. Local-machine logic only: nothing above the launchers
knows of it.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import re
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from plush.config import state_dir
from plush.processes.tree import TAG_VARIABLE, find_with_env, terminate

__all__ = ["SANDBOX_VARIABLE", "Cleanup", "Registration", "new_token", "register", "registry_dir", "sweep"]

log = logging.getLogger(__name__)

#: the environment variable that marks every process a local launcher started (directly or not)
SANDBOX_VARIABLE = "PLUSH_SANDBOX_RUN"
_SUFFIX = ".json"
_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,64}")


def new_token() -> str:
    return "run-" + secrets.token_hex(8)


def registry_dir() -> Path:
    """Where local launchers register their runs (the user's state directory)."""
    return state_dir() / "sandbox"


class Registration:
    """A live run's record; :meth:`close` removes it (the run ended and left nothing)."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self._fd: int | None = fd

    def close(self) -> None:
        if self._fd is None:
            return
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        os.close(self._fd)  # releases the lock
        self._fd = None


def register(token: str, run_dir: Path, *, stop_grace: float, directory: Path | None = None) -> Registration:
    """Record a starting run (see the module docstring); raises OSError when the state directory is unusable."""
    directory = registry_dir() if directory is None else directory
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    record = {
        "token": token,
        "run_id": run_dir.name,
        "run_dir": str(run_dir),
        "controller_pid": os.getpid(),
        "started": time.time(),
        "stop_grace": stop_grace,
    }
    final = directory / (token + _SUFFIX)
    temporary = directory / (token + ".tmp")
    fd = os.open(temporary, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.write(fd, json.dumps(record).encode())
        os.replace(temporary, final)
    except BaseException:
        os.close(fd)
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
        raise
    return Registration(final, fd)


@dataclass(frozen=True)
class Cleanup:
    """What one dead run had left on this machine, now removed."""

    run_id: str
    run_dir: str
    controller_pid: int | None
    application: tuple[int, ...]  #: application processes ended (they carried a process tag)
    plush: tuple[int, ...]  #: Plush's own processes ended (agents, their guards, the fork server)

    def describe(self) -> str:
        """One line: which run, and what was found and removed."""
        who = f"its controller (pid {self.controller_pid})" if self.controller_pid else "its controller"
        head = f"run {self.run_id} (results in {self.run_dir}): {who} died; "
        total = len(self.application) + len(self.plush)
        if not total:
            return head + "nothing of it was left running; removed its record"
        return (
            head + f"killed {total} processes it left behind ({len(self.application)} application, "
            f"{len(self.plush)} agent/guard/fork server) and removed its record"
        )


def _is_application(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/environ", "rb") as fh:
            return any(v.startswith(TAG_VARIABLE.encode() + b"=") for v in fh.read().split(b"\0"))
    except OSError:
        return False


def _end_run(record: dict[str, object]) -> Cleanup:
    token = record.get("token")
    grace = record.get("stop_grace")
    if not isinstance(token, str) or not _TOKEN.fullmatch(token):
        log.warning("a run record without a usable token: %r", record)
        token = None
    found = find_with_env(SANDBOX_VARIABLE, token) if token else []
    application = tuple(p for p in found if _is_application(p))
    plush = tuple(p for p in found if p not in application)
    if token and found:
        seconds = float(grace) if isinstance(grace, (int, float)) and 0 <= grace < 3600 else 5.0
        terminate(lambda: find_with_env(SANDBOX_VARIABLE, token), seconds)
    pid = record.get("controller_pid")
    return Cleanup(
        run_id=str(record.get("run_id", "?")),
        run_dir=str(record.get("run_dir", "?")),
        controller_pid=pid if isinstance(pid, int) else None,
        application=application,
        plush=plush,
    )


def sweep(directory: Path | None = None) -> list[Cleanup]:
    """End what every dead run registered in ``directory`` left behind; one :class:`Cleanup` per dead run."""
    directory = registry_dir() if directory is None else directory
    try:
        names = sorted(os.listdir(directory))
    except OSError:
        return []
    cleanups = []
    for name in names:
        if name.endswith(".tmp"):
            _remove_if_dead(directory / name)  # a controller killed while it registered
            continue
        if not name.endswith(_SUFFIX):
            continue
        path = directory / name
        try:
            fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
        except OSError:
            continue  # removed meanwhile
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # its controller lives
            if os.fstat(fd).st_nlink == 0:
                continue  # another sweeper finished it
            try:
                with open(fd, "rb", closefd=False) as fh:
                    record = json.loads(fh.read() or b"{}")
            except ValueError:
                record = {}
            if not isinstance(record, dict):
                record = {}
            cleanups.append(_end_run(record))
            path.unlink()
        except (OSError, ValueError) as exc:
            log.warning("cannot clean up after the run recorded in %s: %s", path, exc)
        finally:
            os.close(fd)
    return cleanups


def _remove_if_dead(path: Path, age: float = 60.0) -> None:
    """Remove a temporary record older than ``age`` seconds whose writer is gone (never one being born)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return
    try:
        if time.time() - os.fstat(fd).st_mtime < age:
            return
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        path.unlink()
    except OSError:
        pass
    finally:
        os.close(fd)
