"""The output sink's disk writer: one thread that opens, writes, seals and closes a run's log and output files.

Role. :class:`~plush.controller.outputs.OutputSink` decides on the event loop what goes to which file; every
file operation (open with the run's mode, write, close, then chmod for a collected output) is queued here and
carried out by one writer thread, so no ``output`` or ``upload`` message costs the loop a system call on a
file. What must happen on the loop once a file's operations are done (an error to report, ``output.collected``)
is handed back to it with ``call_soon_threadsafe`` (the journal's writer thread does the same: ``journal.py``).

Invariants:

- **lossless and in order**: one FIFO queue and one thread for every file, so the operations on a file happen
  in the order they were queued; nothing queued is dropped (a file that failed skips its later operations:
  see below). The writer flushes a file's buffer whenever its queue runs empty, so a log is on disk soon
  even when the process goes quiet.
- **bounded memory, back-pressure by blocking**: at most ``max_pending`` bytes of data (plus a small cost per
  operation) wait in the queue. A caller that would go over the bound blocks -- on the event loop, so
  briefly that the loop reads nothing more from the agents -- until the writer has caught up below it: a
  disk slower than the network thus slows the agents through TCP (their processes wait on full pipes,
  docs/howitworks.md section 5) instead of growing memory. Nothing is ever dropped to stay within the bound.
  A hung disk stalls the loop there, as a synchronous write would.
- **errors are reported once per file**: a failed operation (``OSError``: a full disk, a path made a
  directory, ...) marks its file failed; its later writes are skipped and its ``on_error`` callback runs
  once, on the loop, with the error. Other files go on being written. A failed file's ``after`` callback
  gets ``False``.
- :meth:`DiskWriter.close` (awaited at the run's end) writes everything queued, closes every file, stops the
  thread and runs every callback due before it returns; nothing can be queued after it (a late operation is
  logged and refused).

``observe(operation, path)`` is a seam for tests: called in the writer thread before each file operation.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

__all__ = ["DEFAULT_MAX_PENDING", "DiskWriter"]

log = logging.getLogger(__name__)

#: the bytes of data that may wait for the disk before :meth:`DiskWriter.write` blocks its caller
DEFAULT_MAX_PENDING = 16 * 1024 * 1024
#: what an operation counts against the bound besides its data (so a flood of tiny chunks is bounded too)
_OP_COST = 256

_OPEN, _WRITE, _CLOSE = "open", "write", "close"

#: a callback for the loop and its argument
_Due = tuple[Callable[[Any], None], Any]


@dataclass(eq=False, slots=True)
class _File:
    path: Path
    on_error: Callable[[Exception], None]
    fh: BinaryIO | None = None
    failed: bool = False
    dirty: bool = False


class DiskWriter:
    """Carries out file operations in one writer thread (see the module docstring). Call its methods from the
    event loop; the thread starts with the first file opened."""

    def __init__(
        self, *, max_pending: int = DEFAULT_MAX_PENDING, observe: Callable[[str, Path], None] | None = None
    ) -> None:
        self.max_pending = max_pending
        self._observe = observe
        self._cond = threading.Condition()
        self._queue: deque[tuple[str, int, Any]] = deque()
        self._pending = 0  # bytes (and per-operation costs) queued, not yet done
        self._blocked = 0  # callers waiting for room
        self._closing = False
        self._dead = False  # the thread ended on a bug (never otherwise before close())
        self._files: dict[int, _File] = {}  # the writer thread's; entries added by open() before it sees them
        self._next = 0
        self._due: list[_Due] = []  # callbacks for the loop, in the order they became due
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        #: times a caller waited for room in the queue (statistics)
        self.waits = 0
        self.failures = 0

    # --- the loop's side ------------------------------------------------------------------------------

    def open(self, path: Path, opener: Callable[[], BinaryIO], on_error: Callable[[Exception], None]) -> int:
        """Queue the opening of ``path`` (``opener`` runs in the writer thread); the handle of the file.
        ``on_error(exc)`` runs once, on the loop, if an operation on this file fails."""
        self._start()
        self._next += 1
        handle = self._next
        with self._cond:
            self._files[handle] = _File(path, on_error)
        self._put((_OPEN, handle, opener), 0)
        return handle

    def write(self, handle: int, data: bytes) -> None:
        """Queue ``data`` for the file ``handle``; blocks while the queue is over its bound."""
        self._put((_WRITE, handle, data), len(data))

    def close_file(
        self,
        handle: int,
        then: Callable[[Path], None] | None = None,
        after: Callable[[bool], None] | None = None,
    ) -> None:
        """Queue the closing of ``handle``; ``then(path)`` runs in the writer thread once it is closed (a
        chmod: its failure is the file's), ``after(ok)`` on the loop once all that is done (``ok``: no
        operation on the file failed)."""
        self._put((_CLOSE, handle, (then, after)), 0)

    async def close(self) -> None:
        """Write what is queued, close every file, stop the thread, run the callbacks due (see above)."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join)
        self._deliver()

    def statistics(self) -> dict[str, int]:
        with self._cond:
            return {
                "pending": self._pending,
                "queued": len(self._queue),
                "open": len(self._files),
                "blocked": self._blocked,
                "waits": self.waits,
                "failures": self.failures,
            }

    def _start(self) -> None:
        if self._thread is not None:
            return
        self._loop = asyncio.get_running_loop()
        self._thread = threading.Thread(target=self._writer, name="plush-output-writer", daemon=True)
        self._thread.start()

    def _put(self, op: tuple[str, int, Any], size: int) -> None:
        cost = size + _OP_COST
        with self._cond:
            if self._pending + cost > self.max_pending and self._pending > 0 and not self._stopped():
                self.waits += 1
                self._blocked += 1
                try:  # back-pressure: the loop waits for the disk (see the module docstring)
                    self._cond.wait_for(
                        lambda: self._pending + cost <= self.max_pending or self._pending == 0 or self._dead
                    )
                finally:
                    self._blocked -= 1
            if self._stopped():
                log.warning("not written (the writer has stopped): %s of %s", op[0], self._path_of(op[1]))
                return
            self._pending += cost
            self._queue.append(op)
            self._cond.notify_all()

    def _stopped(self) -> bool:
        return self._closing or self._dead

    def _path_of(self, handle: int) -> str:
        f = self._files.get(handle)
        return str(f.path) if f is not None else f"file #{handle}"

    def _deliver(self) -> None:
        """On the loop: run the callbacks that became due, in order."""
        with self._cond:
            due, self._due = self._due, []
        for callback, arg in due:
            try:
                callback(arg)
            except Exception:  # a bug in a callback must not keep the others from running
                log.exception("output writer callback failed")

    # --- the writer thread ----------------------------------------------------------------------------

    def _writer(self) -> None:
        try:
            self._drain()
        except BaseException:  # a bug: say so loudly, and never leave a caller waiting for room
            log.exception("the output writer stopped")
            with self._cond:
                self._dead = True
                self._cond.notify_all()
            raise

    def _drain(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._queue or self._closing)
                if not self._queue:
                    break  # closing, and everything done
                batch, self._queue = self._queue, deque()
            for op in batch:
                self._do(op)
                with self._cond:
                    self._pending -= _OP_COST + (len(op[2]) if op[0] == _WRITE else 0)
                    if self._blocked:
                        self._cond.notify_all()
            with self._cond:
                idle = not self._queue
            if idle:
                self._flush_dirty()
        for handle in list(self._files):
            self._do((_CLOSE, handle, (None, None)))

    def _do(self, op: tuple[str, int, Any]) -> None:
        kind, handle, arg = op
        f = self._files.get(handle)
        if f is None:
            return  # closed already
        try:
            if f.failed:
                return
            if kind == _WRITE:
                self._seen(_WRITE, f.path)
                assert f.fh is not None
                f.fh.write(arg)
                f.dirty = True
            elif kind == _OPEN:
                self._seen(_OPEN, f.path)
                f.fh = arg()
            else:
                self._seen(_CLOSE, f.path)
                fh, f.fh = f.fh, None
                if fh is not None:
                    fh.close()
                then = arg[0]
                if then is not None:
                    self._seen("seal", f.path)
                    then(f.path)
        except Exception as exc:  # OSError above all; anything else is this file's failure too
            self._failed(f, exc)
        finally:
            if kind == _CLOSE:
                with self._cond:
                    del self._files[handle]
                after = arg[1]
                if after is not None:
                    self._due_on_loop(after, not f.failed)

    def _flush_dirty(self) -> None:
        with self._cond:
            files = [f for f in self._files.values() if f.dirty and not f.failed and f.fh is not None]
        for f in files:
            f.dirty = False
            try:
                assert f.fh is not None
                f.fh.flush()
            except Exception as exc:
                self._failed(f, exc)

    def _failed(self, f: _File, exc: Exception) -> None:
        f.failed = True
        fh, f.fh = f.fh, None
        if fh is not None:
            with contextlib.suppress(OSError):  # the buffer that could not be written fails again
                fh.close()
        self.failures += 1
        self._due_on_loop(f.on_error, exc)

    def _seen(self, operation: str, path: Path) -> None:
        if self._observe is not None:
            self._observe(operation, path)

    def _due_on_loop(self, callback: Callable[[Any], None], arg: Any) -> None:
        with self._cond:
            first = not self._due
            self._due.append((callback, arg))
        if first and self._loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop is closed: close() delivers what is left
                self._loop.call_soon_threadsafe(self._deliver)
