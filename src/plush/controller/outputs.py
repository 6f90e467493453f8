"""Process output and uploads of a run: log files, the output callback, collected output files.

Role. :class:`OutputSink` (a part of :class:`~plush.controller.engine.RunEngine` that owns its files)
records what agents report of their processes: ``proc.started`` (the last instance number per host and
process, so a restarted host's instances go on), ``proc.exited`` (with the tail of stderr when the exit was
not a success), ``output`` (appended to the run's log files, handed to ``on_output``, and published as
``process.output`` events when anyone subscribes: not journaled, lossy for a slow subscriber) and
``upload``/``upload.end`` (written under the run's outputs, checked against the agent's size and SHA-256).

Invariants: at most one open file per (host, process, instance, stream) log and per upload; a process's
log files are closed when it exits; every file is closed by :meth:`OutputSink.close` when the run ends; an
upload whose name would leave the host's output directory is refused. Logs get the run's file mode; an
upload is written 0600 and, once complete, gets the mode the agent reported narrowed to the run's
(:meth:`~plush.controller.rundir.RunDir.seal_output`): never wider than its source.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import IO

from plush.controller.catalogue import (
    OUTPUT_COLLECTED,
    PROCESS_EXITED,
    PROCESS_LIVENESS_FAILED,
    PROCESS_OUTPUT,
    PROCESS_STARTED,
)
from plush.controller.events import EventBus
from plush.controller.rundir import RunDir
from plush.controller.runstate import HostSlot, OutputCallback
from plush.protocol.messages import Message

__all__ = ["OutputSink"]

log = logging.getLogger(__name__)


class _Upload:
    def __init__(self, rundir: RunDir, path: Path) -> None:
        self.path = path
        self.file = rundir.create_output(path)
        self.digest = hashlib.sha256()
        self.size = 0


class OutputSink:
    """Process reports, log files and uploads of one run."""

    def __init__(self, rundir: RunDir, bus: EventBus, on_output: OutputCallback | None) -> None:
        self.rundir = rundir
        self.bus = bus
        self.on_output = on_output
        self._logs: dict[tuple[str, str, int, str], IO[bytes]] = {}
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
            fh = self._logs.pop((slot.name, path, instance, stream), None)
            if fh is not None:
                fh.close()
        data = {k: msg.get(k) for k in ("code", "signal", "action", "rule") if msg.get(k) is not None}
        if msg.get("action") not in (None, "success", "stopped"):
            tail = _tail(self.rundir.log(slot.name, path, instance, "stderr"))
            if tail:
                data["stderr_tail"] = tail
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
        fh = self._logs.get(key)
        if fh is None:
            fh = self._logs[key] = self.rundir.open_log(slot.name, path, instance, stream)
        data = msg.payload or b""
        fh.write(data)  # the log writer: every byte, in order
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
                up = self._uploads[key] = _Upload(self.rundir, self.rundir.output(slot.name, msg["name"]))
            except (ValueError, OSError) as exc:  # a name escaping outputs/, or clashing with an earlier one
                log.warning("%s: refused upload: %s", slot.name, exc)
                return
        data = msg.payload or b""
        up.file.write(data)
        up.digest.update(data)
        up.size += len(data)

    def on_upload_end(self, slot: HostSlot, msg: Message) -> None:
        up = self._uploads.pop((slot.name, msg["path"], msg["name"]), None)
        if up is None:
            return
        up.file.close()
        self.rundir.seal_output(up.path, msg.get("mode"))
        ok = up.size == msg["size"] and up.digest.hexdigest() == msg["sha256"]
        self.bus.emit(
            OUTPUT_COLLECTED, host=slot.name, block=msg["path"], data={"name": msg["name"], "size": up.size, "ok": ok}
        )

    def close(self) -> None:
        """Close every file; the first error (a write that failed on close) is raised once all are closed."""
        errors: list[OSError] = []
        for fh in [*self._logs.values(), *(up.file for up in self._uploads.values())]:
            try:
                fh.close()
            except OSError as exc:
                errors.append(exc)
        self._logs.clear()
        self._uploads.clear()
        if errors:
            raise errors[0]


def _tail(path: Path, lines: int = 10, limit: int = 4096) -> str:
    """The last ``lines`` lines (at most ``limit`` bytes) of a log file; empty when there is none."""
    try:
        with path.open("rb") as fh:
            fh.seek(0, 2)
            size = fh.tell()
            fh.seek(max(0, size - limit))
            data = fh.read()
    except OSError:
        return ""
    return "\n".join(data.decode("utf-8", "replace").splitlines()[-lines:])
