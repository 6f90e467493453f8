"""A run's status file, ``<run dir>/status.json``: how the run stands, and whether its controller lives.

The controller that runs the run creates the file at the start and holds an exclusive ``flock`` on it until
the run is over; the kernel drops the lock when the controller's process dies, however it dies (kill -9
included), so a reader that can take the lock knows that no controller holds the run any more. The file
says ``running`` until the controller writes the end: ``completed`` or ``failed`` (or ``stopped``) with the
reason. A run whose file still says ``running`` while nobody holds the lock is **dead**.

The file is created at its full size (:data:`STATUS_SIZE` bytes, allocated on disk) and every update
rewrites it in place, padded with spaces: writing the status never needs a new block, so a run stopped by a
full disk can still say why. Invariants: the JSON is always one object followed by spaces; the lock is held
from :meth:`RunStatus.create` to :meth:`RunStatus.close`; the descriptor is close-on-exec (agents and
processes never inherit the lock).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["STATUS_FILE", "STATUS_SIZE", "RunState", "RunStatus", "read_status"]

STATUS_FILE = "status.json"
#: the status file's fixed size; a longer reason is cut to fit
STATUS_SIZE = 4096


class RunStatus:
    """The controller's side: holds the lock, writes the state."""

    def __init__(self, path: Path, fd: int, run_id: str) -> None:
        self.path = path
        self._fd = fd
        self._base: dict[str, Any] = {"run": run_id, "pid": os.getpid(), "started_at": time.time()}

    @classmethod
    def create(cls, root: Path, run_id: str, mode: int = 0o600) -> RunStatus:
        """Create ``root/status.json`` (state ``running``, file ``mode``) and lock it; raises OSError when it
        cannot."""
        path = root / STATUS_FILE
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, mode)
        try:
            os.fchmod(fd, mode)  # exact, whatever the umask
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            os.posix_fallocate(fd, 0, STATUS_SIZE)
            status = cls(path, fd, run_id)
            status.update("running")
        except BaseException:
            os.close(fd)
            raise
        return status

    def update(self, state: str, reason: str = "") -> None:
        """Write ``state`` (and ``reason``) in place. Never raises: the status is the last word of a run."""
        record = dict(self._base, state=state, reason=reason, at=time.time())
        data = json.dumps(record).encode()
        while len(data) > STATUS_SIZE and record["reason"]:
            record["reason"] = record["reason"][: len(record["reason"]) // 2] + "..."
            data = json.dumps(record).encode()
        with contextlib.suppress(OSError):
            os.pwrite(self._fd, data.ljust(STATUS_SIZE), 0)

    def close(self) -> None:
        """Drop the lock (the run is over: its state was written)."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


@dataclass(frozen=True, slots=True)
class RunState:
    """What a reader learns: ``state`` as written, and whether a controller still holds the run."""

    state: str  # running | completed | failed | stopped | unknown (no status file)
    reason: str = ""
    pid: int | None = None
    at: float | None = None
    #: a controller holds the run now (None: cannot tell, there is no status file)
    held: bool | None = None

    @property
    def dead(self) -> bool:
        """The run never finished and no controller holds it any more."""
        return self.state in ("running", "unknown") and self.held is not True


def read_status(root: Path) -> RunState:
    """The status of the run in ``root`` (``unknown`` for a run directory without a status file)."""
    try:
        fd = os.open(root / STATUS_FILE, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return RunState("unknown")
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            held = False
        except OSError as exc:
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise
            held = True
        raw = os.pread(fd, STATUS_SIZE, 0)
    finally:
        os.close(fd)  # drops our shared lock, if we took it
    try:
        record = json.loads(raw.decode("utf-8", "replace").strip() or "{}")
    except ValueError:
        record = {}
    if not isinstance(record, dict):
        record = {}
    pid = record.get("pid")
    at = record.get("at")
    return RunState(
        state=str(record.get("state") or "running"),  # a file being created: its controller is starting
        reason=str(record.get("reason") or ""),
        pid=pid if isinstance(pid, int) else None,
        at=float(at) if isinstance(at, int | float) else None,
        held=held,
    )
