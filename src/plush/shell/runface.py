"""How a batch ``plush run`` shows itself (:class:`Face`): plain lines, the live view, or JSON events.

Role: the choice and its wiring, between :func:`plush.shell.run._run` and what it prints. Plain lines (the
default off a terminal, and ``--plain``: byte for byte what ``plush run`` always printed), the live view on a
terminal (:mod:`plush.shell.liveview`: a summary fed by the run's events, redrawn every :attr:`Face.TICK`
seconds by its own task, never per event), one JSON event per line on stdout (``--json``: the catalogue's
``to_dict``, process output as text); the output streamed as prefixed lines, folded at the end (``--fold``),
or not at all (``--quiet``). The refresh reads the controller once for the components' sizes and, while
there are barriers, ``info("control")["barriers"]`` (O(barriers)); feeding the view is O(1) per event.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import click

from plush.controller.catalogue import CATALOGUE, HOST_SAMPLE, PROCESS_OUTPUT
from plush.shell.cli import warn
from plush.shell.console import SHOWN, LineWriter, print_events, shown

__all__ = ["Face", "live_terminal"]


def live_terminal() -> bool:
    """Whether ``plush run`` shows its live view: stdout and stderr on a terminal that can draw one."""
    return sys.stdout.isatty() and sys.stderr.isatty() and os.environ.get("TERM", "") not in ("dumb", "")


class Face:
    """How a batch run shows itself: plain lines (the default off a terminal, ``--plain``), the live view
    (:mod:`plush.shell.liveview`, on a terminal), one JSON event per line (``--json``); the output streamed
    (prefixed lines), folded at the end (``--fold``) or not at all (``--quiet``)."""

    #: seconds between refreshes of the live view
    TICK = 0.25

    def __init__(self, *, quiet: bool = False, json_events: bool = False, fold: bool = False, live: bool = False):
        from plush.shell.liveview import FoldWriter, LiveState, Screen

        self.json = json_events
        self.state = LiveState() if live and not json_events else None
        self.screen = Screen(self.state, sys.stdout) if self.state is not None else None
        self.fold = FoldWriter() if fold and not quiet else None
        self.lines = LineWriter(self.screen, self.screen) if self.screen is not None else LineWriter()
        self.writer: Any = None
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
        if self.json:
            import json

            from plush.api.control import bytes_to_text

            async for event in events:
                out = event.to_dict()
                data = out.get("data")
                if isinstance(data, dict) and isinstance(data.get("data"), bytes):
                    out["data"] = dict(data, data=bytes_to_text(data["data"]))
                sys.stdout.write(json.dumps(out, default=str) + "\n")
                sys.stdout.flush()
        elif self.state is not None:
            state = self.state
            async for event in events:
                state.feed(event.name, event.host, event.block, event.data, event.at)
                if shown(event.name, event.data) and self.screen is not None:  # in the scrollback, as plain
                    self.screen.write(f"plush: {event.describe()}\n")
        else:
            await print_events(events)

    async def animate(self, controller: Any) -> None:
        """The live view's refresh loop: a few times a second, O(components + barriers)."""
        import asyncio

        if self.screen is None:
            return
        self.screen.start()
        expected = False
        while True:
            if not expected and self.state is not None and self.state.started_at is not None:
                run = controller.info("app").get("run") or {}
                self.state.expect({c: len(h) for c, h in (run.get("hosts") or {}).items()})
                expected = True
            if self.state is not None and self.state.barriers:
                self.state.barrier_counts(controller.info("control")["barriers"])
            self.screen.refresh()
            await asyncio.sleep(self.TICK)

    def end(self, results: str | None) -> None:
        """The run is over: the view gives way to the summary table; the folded output."""
        if self.screen is not None:
            self.screen.stop(results)
        if self.fold is not None:
            for line in self.fold.lines("stdout"):
                click.echo(line)
            for line in self.fold.lines("stderr"):
                click.echo(line, err=True)
            for host, path, stream in sorted(self.fold.cut):
                warn(f"{host} {path}: {stream} cut at {self.fold.limit} bytes in the folded output (its log has all)")
