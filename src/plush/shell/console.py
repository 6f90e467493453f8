"""The console of a run: how process output and the run's events become lines on a terminal.

Role: :class:`LineWriter` prefixes every complete output line with its host and process path (stdout lines
to stdout, stderr lines to stderr) and keeps partial lines until they complete; :func:`shown` says which
events the console prints and :func:`print_events` prints them. Every face that streams a run prints through
here: the batch ``plush run`` (:mod:`plush.shell.run`), its live view (:mod:`plush.shell.runface`) and the
interactive terminal (:mod:`plush.shell.terminal`). :class:`FoldWriter` keeps each process's output per host for
``--fold`` and prints it folded (:func:`plush.controller.gather.fold_outputs`) at the end of the run;
:func:`end_status` prints a run's last lines.

Invariants: rendering is linear in the output (a line longer than :data:`MAX_LINE` is cut, never rescanned);
a UTF-8 character is never split.
"""

from __future__ import annotations

import os
import sys
from typing import Any, Protocol

import click

from plush.controller.catalogue import (
    BARRIER_RELEASED,
    BLOCK_FAILED,
    HOST_FAILED,
    HOST_INSTALL_FAILED,
    PROCESS_EXITED,
)
from plush.controller.gather import RULE, fold_outputs
from plush.resources.hostset import fold

__all__ = ["MAX_LINE", "SHOWN", "FoldWriter", "LineWriter", "Writable", "end_status", "print_events", "shown"]


class Writable(Protocol):
    """Where :class:`LineWriter` writes: a text stream, or the live view's :class:`~plush.shell.liveview.Screen`."""

    def write(self, text: str, /) -> int: ...
    def flush(self) -> None: ...


#: the longest line the console prints as one: a longer stretch without a newline is cut into pieces of
#: this many bytes (fewer when that would split a UTF-8 character), so rendering stays linear in the output
MAX_LINE = 64 * 1024


class LineWriter:
    """Prefixes every complete output line with its host and process; keeps partial lines until complete.

    Linear in its input: each call splits only the new data, appends to the stream's partial line, and
    cuts every stretch of ``MAX_LINE`` bytes without a newline into a line of its own, so what a stream
    keeps between calls stays under ``MAX_LINE`` bytes (:meth:`held`).
    """

    def __init__(self, stdout: Writable | None = None, stderr: Writable | None = None) -> None:
        self._partial: dict[tuple[str, str, int, str], bytearray] = {}
        self._out = stdout
        self._err = stderr

    def __call__(self, host: str, path: str, instance: int, stream: str, data: bytes) -> None:
        key = (host, path, instance, stream)
        part = self._partial.get(key)
        if part is None:
            part = self._partial[key] = bytearray()
        lines: list[bytes] = []
        pieces = data.split(b"\n")
        part += pieces[0]
        if len(pieces) > 1:
            _cut(part, lines, whole=True)
            part.clear()
            middle = pieces[1:-1]
            if middle and max(map(len, middle)) >= MAX_LINE:
                for line in middle:
                    _cut(line, lines, whole=True)
            else:
                lines += middle  # the usual case: short lines, no Python loop over them
            part += pieces[-1]
        if len(part) >= MAX_LINE:
            used = _cut(part, lines, whole=False)
            del part[:used]
        if not part:
            del self._partial[key]
        if lines:
            self._emit(key, lines)

    def held(self) -> int:
        """Bytes of partial lines kept until their newline comes (each stream's under ``MAX_LINE``)."""
        return sum(len(part) for part in self._partial.values())

    def _emit(self, key: tuple[str, str, int, str], lines: list[bytes]) -> None:
        host, path, instance, stream = key
        tag = f"[{host} {path}{'#' + str(instance) if instance > 1 else ''}] "
        out = (self._err or sys.stderr) if stream == "stderr" else (self._out or sys.stdout)
        out.write("".join(tag + line.decode("utf-8", "replace") + "\n" for line in lines))
        out.flush()

    def flush(self) -> None:
        for key, rest in list(self._partial.items()):
            self._emit(key, [bytes(rest)])
        self._partial.clear()


def _cut(line: bytes | bytearray, out: list[bytes], *, whole: bool) -> int:
    """Append ``line`` to ``out`` in pieces of at most ``MAX_LINE`` bytes, each ending on a UTF-8 character
    boundary where one is near; the bytes used: all (``whole``), or only the full-size pieces."""
    start, end = 0, len(line)
    if end < MAX_LINE:
        if whole:
            out.append(bytes(line))
        return end if whole else 0
    view = memoryview(line)
    while end - start >= MAX_LINE:
        stop = _boundary(line, start + MAX_LINE)
        out.append(bytes(view[start:stop]))
        start = stop
    if whole and start < end:
        out.append(bytes(view[start:end]))
        start = end
    view.release()
    return start


def _boundary(line: bytes | bytearray, stop: int) -> int:
    """``stop``, or the start of the UTF-8 character that ``stop`` would cut (looking back 3 bytes at most)."""
    lead = stop - 1
    while lead > stop - 4 and line[lead] & 0xC0 == 0x80:
        lead -= 1
    first = line[lead]
    size = 2 if first >> 5 == 0b110 else 3 if first >> 4 == 0b1110 else 4 if first >> 3 == 0b11110 else 1
    return lead if lead + size > stop else stop


#: the events the console prints (process exits only when they are not a success nor stopped by plush)
SHOWN = (BLOCK_FAILED, BARRIER_RELEASED, HOST_FAILED, HOST_INSTALL_FAILED, PROCESS_EXITED)


def shown(name: str, data: dict[str, Any]) -> bool:
    """Whether the console prints an event (process exits only when not a success nor stopped by plush)."""
    if name not in SHOWN:
        return False
    return not (name == PROCESS_EXITED and (data.get("code") == 0 or data.get("action") == "stopped"))


async def print_events(events: Any) -> None:
    async for event in events:
        if shown(event.name, event.data):
            click.echo(f"plush: {event.describe()}", err=True)


def end_status(summary: dict[str, Any], interrupts: int) -> int:
    """Print the last lines of a run (:func:`plush.api.handlers.run_summary`) and return the exit status."""
    run_id, took = summary["run"], summary["took"]
    if summary["ok"]:
        click.echo(f"plush: run {run_id} completed in {took:.2f}s", err=True)
        return 0
    if summary["stopped"]:
        click.echo(f"plush: run {run_id} STOPPED after {took:.2f}s: {summary['reason']}", err=True)
        return 130 if interrupts else 0
    if summary["report"] and not interrupts:
        click.echo(summary["report"], err=True)
    click.echo(f"plush: run {run_id} FAILED: {summary['reason']}", err=True)
    click.echo(f"plush: failure report in {os.path.join(summary['results'], 'report.txt')}", err=True)
    return 130 if interrupts else 1


class FoldWriter:
    """``--fold``: each process's output kept per host and stream (at most ``limit`` bytes each, the logs have
    it all), printed at the end of the run gathered as ``plush exec -b`` does: hosts with identical output
    (or differing only by their name, address or index) share one block, headed by their host set and the
    process path."""

    def __init__(self, limit: int = 1 << 20) -> None:
        self.limit = limit
        self._outputs: dict[tuple[str, str], dict[str, bytearray]] = {}
        self.cut: set[tuple[str, str, str]] = set()

    def __call__(self, host: str, path: str, instance: int, stream: str, data: bytes) -> None:
        key = (path + (f"#{instance}" if instance > 1 else ""), stream)
        kept = self._outputs.setdefault(key, {}).setdefault(host, bytearray())
        room = self.limit - len(kept)
        if len(data) > room:
            self.cut.add((host, key[0], stream))
        kept += data[: max(room, 0)]

    def lines(self, stream: str) -> list[str]:
        """The folded text of every process's ``stream``, in the order the processes first wrote."""
        out: list[str] = []
        for (path, kind), outputs in self._outputs.items():
            if kind != stream:
                continue
            for block in fold_outputs({h: bytes(b) for h, b in outputs.items()}):
                head = f"{fold(block.hosts)} ({len(block.hosts)}) {path}"
                if block.marks:
                    head += " varies: " + " ".join("{" + m + "}" for m in block.marks)
                out += [RULE, head, RULE, *block.text.decode("utf-8", "replace").splitlines()]
        return out
