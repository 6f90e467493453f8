"""Process output and uploads of a run: log files, the output callback, collected output files.

Role. :class:`OutputSink` (a part of :class:`~plush.controller.engine.RunEngine` that owns its files)
records what agents report of their processes: ``proc.started`` (the last instance number per host and
process, so a restarted host's instances go on), ``proc.exited`` (with the tail of stderr when the exit was
not a success), ``output`` (appended to the run's log files, handed to ``on_output``, and published as
``process.output`` events when anyone subscribes: not journaled, lossy for a slow subscriber) and
``upload``/``upload.end`` (written under the run's outputs, checked against the agent's size and SHA-256).

No file I/O on the event loop: the sink decides which file each piece goes to and hands every file operation
(open, write, close, the chmod of a collected output) to its :class:`~plush.controller.diskwriter.DiskWriter`,
whose one thread carries them out in order (lossless; bounded memory: a full queue blocks the loop briefly,
which slows the agents through TCP; see that module). The stderr tail of a failed exit comes from the last
:data:`TAIL_BYTES` of the stream kept in memory, not from reading the log back. ``on_output`` (the console)
and ``process.output`` events stay on the loop, in message order.

A file that cannot be written (a full disk, a path turned into a directory, ...) is reported once:
``output.write_failed`` naming the file and the reason, and a warning in the log; its later writes are skipped,
every other file goes on being written and the run goes on, except when the error says the whole file
system refuses writes (:data:`STORAGE_ERRNOS`: full, over quota, read-only): then ``on_storage_failed``
(the engine's ``storage_failed``: the run stops, as for the journal).

Invariants: at most one open file per (host, process, instance, stream) log and per upload; a process's
log files are closed when it exits; every file is written and closed by :meth:`OutputSink.close` (awaited at
the run's end, before ``run.finished``); an upload whose name would leave the host's output directory is
refused. Logs get the run's file mode; an upload is written 0600 and, once complete, gets the mode the agent
reported narrowed to the run's (:meth:`~plush.controller.rundir.RunDir.seal_output`): never wider than its
source; ``output.collected`` is emitted once it is sealed (``ok``: size and SHA-256 matched and it was
written).
"""

from __future__ import annotations

import errno
import functools
import hashlib
import logging
from collections.abc import Callable
from pathlib import Path

from plush.controller.catalogue import (
    OUTPUT_COLLECTED,
    OUTPUT_WRITE_FAILED,
    PROCESS_EXITED,
    PROCESS_LIVENESS_FAILED,
    PROCESS_OUTPUT,
    PROCESS_STARTED,
)
from plush.controller.diskwriter import DiskWriter
from plush.controller.events import EventBus
from plush.controller.rundir import RunDir
from plush.controller.runstate import HostSlot, OutputCallback
from plush.protocol.messages import Message

__all__ = ["STORAGE_ERRNOS", "TAIL_BYTES", "OutputSink"]

log = logging.getLogger(__name__)

#: the stderr bytes kept per running process for the tail of a failed exit
TAIL_BYTES = 4096
#: errors that say the run directory's file system takes no more writes: the run stops
STORAGE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS})


class _Upload:
    __slots__ = ("digest", "handle", "path", "size")

    def __init__(self, path: Path, handle: int) -> None:
        self.path = path
        self.handle = handle
        self.digest = hashlib.sha256()
        self.size = 0


class OutputSink:
    """Process reports, log files and uploads of one run (see the module docstring)."""

    def __init__(
        self,
        rundir: RunDir,
        bus: EventBus,
        on_output: OutputCallback | None,
        *,
        on_storage_failed: Callable[[OSError], None] | None = None,
        writer: DiskWriter | None = None,
    ) -> None:
        self.rundir = rundir
        self.bus = bus
        self.on_output = on_output
        self.on_storage_failed = on_storage_failed
        self.writer = writer if writer is not None else DiskWriter()
        self._logs: dict[tuple[str, str, int, str], int] = {}  # -> the writer's handle
        self._tails: dict[tuple[str, str, int], bytearray] = {}  # the last TAIL_BYTES of each stderr
        self._uploads: dict[tuple[str, str, str], _Upload] = {}
        self._instances: dict[str, dict[str, int]] = {}  # host -> process path -> last instance started

    def instances(self, host: str) -> dict[str, int]:
        """The last instance number of each process ``host`` started (a restarted host's go on from there)."""
        return dict(self._instances.get(host, {}))

    def on_proc_started(self, slot: HostSlot, msg: Message) -> None:
        seen = self._instances.setdefault(slot.name, {})
        seen[msg["path"]] = max(seen.get(msg["path"], 0), int(msg["instance"]))
        self.bus.emit(
            PROCESS_STARTED, host=slot.name, block=msg["path"], instance=msg["instance"], data={"pid": msg["pid"]}
        )

    def on_proc_exited(self, slot: HostSlot, msg: Message) -> None:
        path, instance = msg["path"], msg["instance"]
        for stream in ("stdout", "stderr"):
            handle = self._logs.pop((slot.name, path, instance, stream), None)
            if handle is not None:
                self.writer.close_file(handle)
        tail = self._tails.pop((slot.name, path, instance), None)
        data = {k: msg.get(k) for k in ("code", "signal", "action", "rule") if msg.get(k) is not None}
        if msg.get("action") not in (None, "success", "stopped") and tail:
            text = _tail(bytes(tail))
            if text:
                data["stderr_tail"] = text
        if msg.get("liveness"):
            self.bus.emit(
                PROCESS_LIVENESS_FAILED,
                host=slot.name,
                block=path,
                instance=instance,
                data={"reason": msg["liveness"]},
            )
        self.bus.emit(PROCESS_EXITED, host=slot.name, block=path, instance=instance, data=data)

    def on_output_message(self, slot: HostSlot, msg: Message) -> None:
        path, instance, stream = msg["path"], msg["instance"], msg["stream"]
        key = (slot.name, path, instance, stream)
        handle = self._logs.get(key)
        if handle is None:
            target = self.rundir.log(slot.name, path, instance, stream)
            handle = self._logs[key] = self.writer.open(
                target,
                functools.partial(self.rundir.open_log, slot.name, path, instance, stream),
                functools.partial(self._write_failed, slot.name, path, instance, target),
            )
        data = msg.payload or b""
        self.writer.write(handle, data)  # the log writer: every byte, in order (in the writer's thread)
        if stream == "stderr" and data:
            tail = self._tails.setdefault((slot.name, path, instance), bytearray())
            tail += data[-TAIL_BYTES:]
            if len(tail) > TAIL_BYTES:
                del tail[:-TAIL_BYTES]
        if self.on_output is not None:
            self.on_output(slot.name, path, instance, stream, data)
        if self.bus.wants(PROCESS_OUTPUT):  # an event for every face; not journaled, lossy for a slow subscriber
            self.bus.emit(
                PROCESS_OUTPUT, host=slot.name, block=path, instance=instance, data={"stream": stream, "data": data}
            )

    def on_upload(self, slot: HostSlot, msg: Message) -> None:
        key = (slot.name, msg["path"], msg["name"])
        up = self._uploads.get(key)
        if up is None:
            try:
                target = self.rundir.output(slot.name, msg["name"])
            except ValueError as exc:  # a name escaping outputs/
                log.warning("%s: refused upload: %s", slot.name, exc)
                return
            handle = self.writer.open(
                target,
                functools.partial(self.rundir.create_output, target),
                functools.partial(self._write_failed, slot.name, msg["path"], None, target),
            )
            up = self._uploads[key] = _Upload(target, handle)
        data = msg.payload or b""
        self.writer.write(up.handle, data)
        up.digest.update(data)
        up.size += len(data)

    def on_upload_end(self, slot: HostSlot, msg: Message) -> None:
        up = self._uploads.pop((slot.name, msg["path"], msg["name"]), None)
        if up is None:
            return
        matched = up.size == msg["size"] and up.digest.hexdigest() == msg["sha256"]
        mode = msg.get("mode")
        self.writer.close_file(
            up.handle,
            then=lambda target: self.rundir.seal_output(target, mode),
            after=functools.partial(self._collected, slot.name, msg["path"], msg["name"], up.size, matched),
        )

    def _collected(self, host: str, block: str, name: str, size: int, matched: bool, written: bool) -> None:
        self.bus.emit(
            OUTPUT_COLLECTED, host=host, block=block, data={"name": name, "size": size, "ok": matched and written}
        )

    def _write_failed(self, host: str, block: str, instance: int | None, target: Path, exc: Exception) -> None:
        """On the loop, once per file: a write to ``target`` failed (see the module docstring)."""
        reason = (exc.strerror if isinstance(exc, OSError) else None) or str(exc)
        log.warning("%s: cannot write %s: %s", host, target, reason)
        self.bus.emit(
            OUTPUT_WRITE_FAILED,
            host=host,
            block=block,
            instance=instance,
            data={"path": str(target), "error": reason},
        )
        if isinstance(exc, OSError) and exc.errno in STORAGE_ERRNOS and self.on_storage_failed is not None:
            self.on_storage_failed(OSError(exc.errno, reason, str(target)))

    async def close(self) -> None:
        """Write and close every file (the callbacks it causes, ``output.write_failed`` and the like, have run
        when it returns). An upload left incomplete stays 0600 and is not collected."""
        for handle in self._logs.values():
            self.writer.close_file(handle)
        for up in self._uploads.values():
            self.writer.close_file(up.handle)
        self._logs.clear()
        self._uploads.clear()
        self._tails.clear()
        await self.writer.close()


def _tail(data: bytes, lines: int = 10) -> str:
    """The last ``lines`` lines of the end of a stderr stream (pure)."""
    return "\n".join(data.decode("utf-8", "replace").splitlines()[-lines:])
