"""How ``plush run`` shows itself (:class:`Face`): plain lines, the live view, or JSON events.

Role: the choice and its wiring, between a run and what it prints: the batch run's events come from its
controller's bus (:func:`plush.shell.run._run`), a client's from a controller's socket
(:mod:`plush.shell.runclient`); both feed :meth:`Face.take` one event at a time and refresh the view with
:meth:`Face.tick`. Plain lines (the
default off a terminal, and ``--plain``: byte for byte what ``plush run`` always printed), the live view on a
terminal (:mod:`plush.shell.liveview`: a summary fed by the run's events, redrawn every :attr:`Face.TICK`
seconds by its own task, never per event), one JSON event per line on stdout (``--json``: the catalogue's
``to_dict``, process output as text); the output streamed as prefixed lines, folded at the end (``--fold``),
or not at all (``--quiet``). The refresh reads the controller once for the components' sizes and, while
there are barriers, ``info("control")["barriers"]`` (O(barriers)); feeding the view is O(1) per event.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from typing import Any

import click

from plush.controller.catalogue import CATALOGUE, HOST_SAMPLE, PROCESS_OUTPUT
from plush.shell.cli import warn
from plush.shell.console import SHOWN, FoldWriter, LineWriter, shown
from plush.shell.spool import Spool

__all__ = ["Face", "live_terminal"]


def live_terminal() -> bool:
    """Whether ``plush run`` shows its live view: stdout and stderr on a terminal that can draw one."""
    return sys.stdout.isatty() and sys.stderr.isatty() and os.environ.get("TERM", "") not in ("dumb", "")


class Face:
    """How a run shows itself: plain lines (the default off a terminal, ``--plain``), the live view
    (:mod:`plush.shell.liveview`, on a terminal), one JSON event per line (``--json``); the output streamed
    (prefixed lines), folded at the end (``--fold``) or not at all (``--quiet``)."""

    #: seconds between refreshes of the live view
    TICK = 0.25

    def __init__(self, *, quiet: bool = False, json_events: bool = False, fold: bool = False, live: bool = False):
        from plush.shell.liveview import LiveState, Screen

        self.json = json_events
        self.state = LiveState() if live and not json_events else None
        self.screen = Screen(self.state, sys.stdout) if self.state is not None else None
        self.fold = FoldWriter() if fold and not quiet else None
        #: off the live view, stdout and stderr are written by threads of their own (:mod:`plush.shell.spool`):
        #: a reader slow to read (``plush run SPEC | less``) never blocks the run
        self._spools = [] if self.screen is not None else [Spool(sys.stdout), Spool(sys.stderr)]
        self._out: Any = self._spools[0] if self._spools else sys.stdout
        self._err: Any = self._spools[1] if self._spools else sys.stderr
        self.lines = LineWriter(self.screen, self.screen) if self.screen is not None else LineWriter(*self._spools)
        self.writer: Any = None
        self._expected = False  # the components' sizes were read (the live view's expected hosts)
        if self.fold is not None:
            self.writer = self.fold
        elif not quiet and not json_events:
            self.writer = self.lines
        #: what the run subscribes to: the plain lines' events, all but output for the view, all for --json
        self.kinds: Any = SHOWN
        if json_events:
            self.kinds = None if not quiet else [k for k in CATALOGUE if k != PROCESS_OUTPUT]
        elif self.state is not None:
            self.kinds = [k for k in CATALOGUE if k not in (PROCESS_OUTPUT, HOST_SAMPLE)]

    def writer_flush(self) -> None:
        self.lines.flush()

    async def consume(self, events: Any) -> None:
        """Print (plain, JSON) or take in (the view) the run's events until the subscription closes."""
        async for event in events:
            self.take(event.name, event.host, event.block, event.data, event.at, event.describe, event.to_dict)

    def take(
        self,
        name: str,
        host: str | None,
        block: str | None,
        data: dict[str, Any],
        at: float,
        line: Callable[[], str],
        as_dict: Callable[[], dict[str, Any]],
    ) -> None:
        """One event of the run, whichever way it came (the controller's bus, or a controller's socket):
        ``line`` and ``as_dict`` give its one-line and JSON forms when they are needed. O(1)."""
        if self.json:
            from plush.api.control import bytes_to_text

            out = as_dict()
            inner = out.get("data")
            if isinstance(inner, dict) and isinstance(inner.get("data"), bytes):
                out["data"] = dict(inner, data=bytes_to_text(inner["data"]))
            self._out.write(json.dumps(out, default=str) + "\n")
        elif self.state is not None and self.screen is not None:
            with self.screen.lock:
                self.state.feed(name, host, block, data, at)
            if shown(name, data):  # in the scrollback, as plain
                self.screen.write(f"plush: {line()}\n")
        elif shown(name, data):
            self._err.write(f"plush: {line()}\n")

    def needs(self) -> tuple[str, ...]:
        """What the next refresh reads of the controller (``info`` topics): ``app`` once the run started (the
        components' sizes, read once), ``control`` while there are barriers (their expected counts)."""
        if self.state is None:
            return ()
        wanted = ("app",) if not self._expected and self.state.started_at is not None else ()
        return wanted + (("control",) if self.state.barriers else ())

    def tick(self, info: dict[str, Any]) -> None:
        """One refresh of the live view, with what :meth:`needs` asked (``info``: topic -> answer, those that
        could be read). O(components + barriers)."""
        if self.state is None or self.screen is None:
            return
        app, control = info.get("app"), info.get("control")
        with self.screen.lock:
            if app is not None:
                run = app.get("run") or {}
                self.state.expect(run.get("hosts") or {})
                self._expected = True
            if control is not None:
                self.state.barrier_counts(control.get("barriers") or [])
        self.screen.refresh()  # a request to the painter: never waits for the terminal

    async def animate(self, controller: Any) -> None:
        """The live view's refresh loop: a few times a second, O(components + barriers)."""
        import asyncio

        if self.screen is None:
            return
        self.screen.start()
        while True:
            self.tick({what: controller.info(what) for what in self.needs()})
            await asyncio.sleep(self.TICK)

    def end(self, results: str | None) -> None:
        """The run is over: what the spools hold is written; the view gives way to the summary table; the
        folded output."""
        for spool in self._spools:
            spool.close()
        if self.screen is not None:
            self.screen.stop(results)
        if self.fold is not None:
            for line in self.fold.lines("stdout"):
                click.echo(line)
            for line in self.fold.lines("stderr"):
                click.echo(line, err=True)
            for host, path, stream in sorted(self.fold.cut):
                warn(f"{host} {path}: {stream} cut at {self.fold.limit} bytes in the folded output (its log has all)")
