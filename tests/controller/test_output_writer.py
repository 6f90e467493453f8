"""The output sink's disk writer (issue 8: no file I/O on the event loop's hot paths).

- the sink does no file operation on the event loop's thread: every open, write, close and seal of a log or
  an upload happens in the writer's thread (its ``observe`` seam records the thread of each; an audit hook
  sees every ``open`` of the run directory), and the files hold every byte in order, with the run's modes;
- the queue is bounded: a producer over the bound waits for the writer, nothing is dropped;
- a write that fails (a real ENOSPC from ``/dev/full``) is reported once, and other files go on.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import stat
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from plush.controller.catalogue import OUTPUT_COLLECTED, OUTPUT_WRITE_FAILED, PROCESS_EXITED
from plush.controller.diskwriter import DiskWriter
from plush.controller.events import Event, EventBus
from plush.controller.outputs import OutputSink
from plush.controller.rundir import RunDir
from plush.controller.runstate import HostSlot
from plush.protocol.messages import Message

_opened: list[tuple[int, str]] = []  # (thread, path) of every open under a watched directory
_watched: list[str] = []


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if event == "open" and _watched and isinstance(args[0], str | bytes | os.PathLike):
        path = os.fsdecode(args[0])
        if any(path.startswith(w) for w in _watched):
            _opened.append((threading.get_ident(), path))


sys.addaudithook(_audit)  # stays for the session; does nothing unless a test watches a directory


def _output(path: str, stream: str, data: bytes, instance: int = 1) -> Message:
    return Message.binary("output", data, path=path, instance=instance, stream=stream)


@pytest.mark.parametrize("results_mode", ["private", "shared"])
async def test_the_sink_does_no_file_operation_on_the_event_loop_thread(tmp_path: Path, results_mode: str) -> None:
    rundir = RunDir.create(tmp_path / "runs", "r1", mode=results_mode)
    seen: list[tuple[str, int, Path]] = []
    writer = DiskWriter(observe=lambda op, path: seen.append((op, threading.get_ident(), path)))
    bus = EventBus()
    got: list[Event] = []
    bus.add_sink(got.append)
    sink = OutputSink(rundir, bus, None, writer=writer)
    slot = HostSlot("h1", "c", 0)
    proc = "/app/c/p/p"
    pieces = [b"line %d\n" % i * (i % 7 + 1) for i in range(500)]
    blob = os.urandom(300_000)
    loop_thread = threading.get_ident()
    _watched.append(str(rundir.root))
    try:
        for i, piece in enumerate(pieces):
            sink.on_output_message(slot, _output(proc, "stdout" if i % 3 else "stderr", piece))
        for start in range(0, len(blob), 65536):
            sink.on_upload(slot, Message.binary("upload", blob[start : start + 65536], path="/app/c/p", name="r/x.bin"))
        sink.on_upload_end(
            slot,
            Message.of(
                "upload.end",
                path="/app/c/p",
                name="r/x.bin",
                size=len(blob),
                sha256=hashlib.sha256(blob).hexdigest(),
                mode=0o755,
            ),
        )
        sink.on_proc_exited(slot, Message.of("proc.exited", path=proc, instance=1, code=1, action="abort"))
        await sink.close()
    finally:
        _watched.remove(str(rundir.root))

    ops = {op for op, _, _ in seen}
    assert ops == {"open", "write", "close", "seal"}
    assert {thread for _, thread, _ in seen} != set() and loop_thread not in {thread for _, thread, _ in seen}
    assert _opened and loop_thread not in {thread for thread, _ in _opened}  # nothing opened on the loop
    logs = rundir.host("h1") / "logs"
    assert (logs / "c.p.p.1.stdout").read_bytes() == b"".join(p for i, p in enumerate(pieces) if i % 3)
    assert (logs / "c.p.p.1.stderr").read_bytes() == b"".join(p for i, p in enumerate(pieces) if not i % 3)
    out = rundir.host("h1") / "outputs" / "r" / "x.bin"
    assert out.read_bytes() == blob
    # modes as before the writer thread: logs get the run's file mode, an output its source's narrowed
    _, file_mode = (0o700, 0o600) if results_mode == "private" else (0o755, 0o644)
    assert stat.S_IMODE((logs / "c.p.p.1.stdout").stat().st_mode) == file_mode
    assert stat.S_IMODE(out.stat().st_mode) == 0o755 & rundir.dir_mode
    exited = next(e for e in got if e.name == PROCESS_EXITED)
    last_err = [p for i, p in enumerate(pieces) if not i % 3]
    assert exited.data["stderr_tail"] == "\n".join(b"".join(last_err).decode().splitlines()[-10:])
    assert [(e.name, e.data["ok"]) for e in got if e.name == OUTPUT_COLLECTED] == [(OUTPUT_COLLECTED, True)]
    assert [e for e in got if e.name == OUTPUT_WRITE_FAILED] == []


def _wait(condition: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.005)


async def test_a_producer_over_the_bound_waits_for_the_writer_and_nothing_is_dropped(tmp_path: Path) -> None:
    """The writer's first write waits until the producer is blocked on the full queue: the queue never holds
    more than its bound, the producer waited, and every chunk is in the file in order."""
    highest = 0
    writer: DiskWriter

    def observe(op: str, path: Path) -> None:
        nonlocal highest
        if op == "write" and writer.waits == 0:
            _wait(lambda: writer.statistics()["blocked"] == 1, "the producer blocks on the full queue")
        highest = max(highest, writer.statistics()["pending"])

    writer = DiskWriter(max_pending=8192, observe=observe)
    target = tmp_path / "log"
    errors: list[Exception] = []
    handle = writer.open(target, lambda: target.open("wb"), errors.append)
    chunks = [bytes([65 + i % 26]) * 1000 for i in range(40)]

    def produce() -> None:
        for chunk in chunks:
            writer.write(handle, chunk)

    await asyncio.to_thread(produce)
    writer.close_file(handle)
    await writer.close()
    assert target.read_bytes() == b"".join(chunks)
    assert writer.waits >= 1 and highest <= 8192 and errors == []


async def test_a_failed_file_is_reported_once_and_the_others_go_on(tmp_path: Path) -> None:
    writer = DiskWriter()
    reported: list[tuple[str, Exception]] = []
    full = writer.open(Path("/dev/full"), lambda: open("/dev/full", "wb"), lambda e: reported.append(("full", e)))  # noqa: SIM115
    good_path = tmp_path / "good"
    good = writer.open(good_path, lambda: good_path.open("wb"), lambda e: reported.append(("good", e)))
    done: list[tuple[str, bool]] = []
    for i in range(50):
        writer.write(full, b"x" * 10_000)
        writer.write(good, b"%d\n" % i)
    writer.close_file(full, after=lambda ok: done.append(("full", ok)))
    writer.close_file(good, after=lambda ok: done.append(("good", ok)))
    await writer.close()
    assert [(name, getattr(e, "strerror", None)) for name, e in reported] == [("full", "No space left on device")]
    assert done == [("full", False), ("good", True)]
    assert good_path.read_bytes() == b"".join(b"%d\n" % i for i in range(50))
    assert writer.statistics()["failures"] == 1
