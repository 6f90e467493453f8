"""``plush run``'s live view on a terminal: per component, its hosts' progress, above the streaming output.

Role. :class:`LiveState` is a summary kept from the run's events (pure, no I/O): each host's stage
(joining, installing, ready, running, done, failed) under its component, counts per component and stage,
restarts, each barrier's arrivals and release, the phase of the run, the last error line. Feeding it an
event is O(1); reading it (:meth:`LiveState.rows`) is O(components + barriers): a refresh never walks the
hosts, so the view is the same size at 1,000 hosts as at 3. :func:`live_view` and :func:`summary_table` turn
it into rich renderables (pure). :class:`Screen` is the I/O: a ``rich.live.Live`` on the terminal, transient
(at the end the view gives way to the summary table), refreshed at the caller's request a few times per
second with the output lines gathered since the last refresh printed above it in one write -- never a
render per event or per line -- by a thread of its own, so that a terminal slow to read cannot block the
engine. (``--fold`` is :class:`plush.shell.console.FoldWriter`.)

Invariants: the counts of a component always sum to the hosts seen in it (a host is in exactly one stage);
expected hosts not yet seen count as joining.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, TextIO

from rich.console import Console, ConsoleOptions, Group, RenderableType, RenderResult
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.segment import Segment
from rich.table import Table
from rich.text import Text

from plush.controller import catalogue as ev

__all__ = ["STAGES", "LiveState", "Screen", "live_view", "summary_table"]

#: a host's stages in the view, in the order it goes through them
STAGES = ("joining", "installing", "ready", "running", "done", "failed")
_STYLE = {"done": "green", "failed": "red", "running": "cyan", "installing": "yellow", "ready": "blue"}
#: the component of a host whose first event named none (until :meth:`LiveState.expect` says which)
UNKNOWN = "?"
#: barriers shown by name; beyond, a count
SHOWN_BARRIERS = 6


@dataclass
class Component:
    """One component's summary."""

    name: str
    expected: int = 0
    counts: Counter[str] = field(default_factory=Counter)
    restarts: int = 0
    finished_at: float | None = None

    @property
    def seen(self) -> int:
        return sum(self.counts.values())

    def count(self, stage: str) -> int:
        if stage == "joining":
            return self.counts["joining"] + max(0, self.expected - self.seen)
        return self.counts[stage]

    @property
    def hosts(self) -> int:
        return max(self.expected, self.seen)


@dataclass
class Barrier:
    name: str
    arrived: int = 0
    expected: int | None = None
    released: bool = False


class LiveState:
    """The run's progress as the live view shows it, kept from its events (see the module docstring)."""

    def __init__(self) -> None:
        self.components: dict[str, Component] = {}
        self.barriers: dict[str, Barrier] = {}
        self._host: dict[str, tuple[str, str]] = {}  # host -> (component, stage)
        self._placed: dict[str, str] = {}  # host -> component, as the run chose (expect)
        self.total = 0
        self.phase = "starting"
        self.last_error = ""
        self.started_at: float | None = None
        self.ended_at: float | None = None
        self.run_id = ""
        self.outcome = ""  # completed, STOPPED, FAILED once the run finished

    # --- feeding ---------------------------------------------------------------------------------------------

    def expect(self, hosts: dict[str, list[str]]) -> None:
        """The hosts of each component (the run's choice, ``info("app")["run"]["hosts"]``), known once it
        started: each component's expected count, and the component of the hosts seen before it was known (a
        run on connected hosts: they joined before the run, their first events name no component). O(hosts),
        once per run."""
        for name, names in hosts.items():
            self._component(name).expected = len(names)
            for host in names:
                self._placed[host] = name
                old = self._host.get(host)
                if old is not None and old[0] == UNKNOWN:
                    self._move(host, old[1], name)

    def feed(self, name: str, host: str | None, block: str | None, data: dict[str, Any], at: float) -> None:
        """One event (O(1))."""
        if name == ev.RUN_STARTED:
            self.started_at, self.total, self.run_id = at, int(data.get("hosts") or 0), str(data.get("run", ""))
            self.phase = "connecting"
        elif name == ev.HOST_JOINED and host is not None:
            self._move(host, "installing", data.get("component") or "?")
        elif name == ev.HOST_INSTALLED and host is not None:
            self._move(host, "ready")
            if self.phase == "connecting":
                self.phase = "installing"
        elif name == ev.BARRIER_START_RELEASED:
            self.phase = "running"
        elif name == ev.BLOCK_STARTED and host is not None:
            if self._stage(host) in ("installing", "ready", "joining"):
                self._move(host, "running")
        elif name == ev.HOST_FINISHED and host is not None:
            self._move(host, "done" if data.get("ok", True) else "failed", at=at)
        elif name in (ev.HOST_FAILED, ev.HOST_INSTALL_FAILED) and host is not None:
            self._move(host, "failed", data.get("component"), at=at)
            self._error(f"{host}: {data.get('reason', 'failed')}")
        elif name == ev.HOST_RESTARTED and host is not None:
            self._move(host, "joining", data.get("component"))
            self._component(self._host[host][0]).restarts += 1
        elif name == ev.HOST_REMATCHED and host is not None:
            comp = data.get("component") or self._host.get(host, ("?", ""))[0]
            self._forget(host)
            self._component(comp).restarts += 1
        elif name == ev.HOST_DROPPED and host is not None:
            self._forget(host)
        elif name == ev.BARRIER_ARRIVED:
            self._barrier(str(data.get("barrier"))).arrived += 1
        elif name == ev.BARRIER_RELEASED:
            barrier = self._barrier(str(data.get("barrier")))
            barrier.released = True
            self.phase = f"running (barrier {barrier.name} released)"
        elif name == ev.BLOCK_FAILED:
            self._error(f"{host} {block}: {data.get('reason', 'failed')}")
        elif name == ev.PROCESS_EXITED and data.get("code") not in (0, None) and data.get("action") != "stopped":
            tail = [line for line in str(data.get("stderr_tail") or "").splitlines() if line.strip()]
            self._error(f"{host} {block}: exit {data.get('code')}" + (f": {tail[-1]}" if tail else ""))
        elif name == ev.APP_STOPPED:
            self.phase = "stopping"
        elif name == ev.APP_ABORTED:
            self.phase = "aborting"
            self._error(str(data.get("reason", "aborted")))
        elif name == ev.RUN_FINISHED:
            self.ended_at = at
            ok, stopped = data.get("ok"), data.get("stopped")
            self.outcome = "completed" if ok else "STOPPED" if stopped else "FAILED"
            self.phase = self.outcome if ok or stopped else f"FAILED: {data.get('reason', '')}"

    def barrier_counts(self, barriers: Iterable[dict[str, Any]]) -> None:
        """Each barrier's expected count (``Controller.info("control")["barriers"]``: O(barriers))."""
        for b in barriers:
            barrier = self._barrier(str(b["name"]))
            barrier.expected = int(b["expected"])
            barrier.arrived = max(barrier.arrived, int(b["arrived"]))
            barrier.released = barrier.released or bool(b["released"])

    def _component(self, name: str) -> Component:
        comp = self.components.get(name)
        if comp is None:
            comp = self.components[name] = Component(name)
        return comp

    def _barrier(self, name: str) -> Barrier:
        barrier = self.barriers.get(name)
        if barrier is None:
            barrier = self.barriers[name] = Barrier(name)
        return barrier

    def _stage(self, host: str) -> str:
        return self._host.get(host, ("", "joining"))[1]

    def _move(self, host: str, stage: str, component: str | None = None, *, at: float | None = None) -> None:
        old = self._host.get(host)
        if old is not None:
            self._component(old[0]).counts[old[1]] -= 1
        comp = component or (old[0] if old is not None else self._placed.get(host, UNKNOWN))
        self._host[host] = (comp, stage)
        record = self._component(comp)
        record.counts[stage] += 1
        if at is not None and record.count("done") + record.count("failed") >= record.hosts:
            record.finished_at = at

    def _forget(self, host: str) -> None:
        old = self._host.pop(host, None)
        if old is not None:
            self._component(old[0]).counts[old[1]] -= 1

    def _error(self, line: str) -> None:
        self.last_error = line.splitlines()[0] if line else line

    # --- reading ---------------------------------------------------------------------------------------------

    def rows(self) -> list[Component]:
        """The components, in the order they were first seen (O(components)); not the hosts' of no known
        component once there are none."""
        return [c for c in self.components.values() if c.name != UNKNOWN or c.seen]

    def wall(self, comp: Component, now: float) -> float:
        """A component's wall time: from the run's start to its last host's end (or now, or the run's end)."""
        if self.started_at is None:
            return 0.0
        end = comp.finished_at or self.ended_at or now
        return max(0.0, end - self.started_at)


# --- rendering (pure) -------------------------------------------------------------------------------------------


def live_view(state: LiveState, now: float | None = None) -> RenderableType:
    """The live view: a row per component (counts per stage and a bar), the barriers, the phase, the last error."""
    now = time.time() if now is None else now
    table = Table(box=None, pad_edge=False, show_edge=False, header_style="bold")
    table.add_column("component")
    table.add_column("hosts", justify="right")
    for stage in STAGES:
        table.add_column(stage, justify="right", style=_STYLE.get(stage, ""))
    table.add_column("", min_width=20)
    for comp in state.rows():
        finished = comp.count("done") + comp.count("failed")
        bar = ProgressBar(
            total=max(comp.hosts, 1), completed=finished, width=20, complete_style="green", finished_style="green"
        )
        table.add_row(comp.name, str(comp.hosts), *(str(comp.count(s)) for s in STAGES), bar)
    elapsed = now - state.started_at if state.started_at is not None else 0.0
    lines: list[RenderableType] = [table, Text(f"phase: {state.phase}  ({elapsed:.1f}s)", style="bold")]
    if state.barriers:
        parts = [_barrier_text(b) for b in list(state.barriers.values())[:SHOWN_BARRIERS]]
        more = len(state.barriers) - SHOWN_BARRIERS
        lines.append(Text("barriers: " + "  ".join(parts) + (f"  (+{more} more)" if more > 0 else "")))
    if state.last_error:
        lines.append(Text(f"last error: {state.last_error}", style="red", overflow="ellipsis", no_wrap=True))
    return Group(*lines)


def _barrier_text(b: Barrier) -> str:
    if b.released:
        return f"{b.name} released"
    return f"{b.name} {b.arrived}/{b.expected if b.expected is not None else '?'}"


def summary_table(state: LiveState, results: str, now: float | None = None) -> RenderableType:
    """The table printed at the end: per component, its hosts, done, failed, restarts, wall time; the results."""
    now = time.time() if now is None else now
    title = f"run {state.run_id}: {state.outcome or state.phase}"
    table = Table(title=title, title_justify="left", header_style="bold")
    for name, justify in (("component", "left"), ("hosts", "right"), ("done", "right"), ("failed", "right")):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    table.add_column("restarts", justify="right")
    table.add_column("wall", justify="right")
    for comp in state.rows():
        failed = comp.count("failed")
        table.add_row(
            comp.name,
            str(comp.hosts),
            Text(str(comp.count("done")), style="green"),
            Text(str(failed), style="red" if failed else ""),
            str(comp.restarts),
            f"{state.wall(comp, now):.2f}s",
        )
    return Group(table, Text(f"results: {results}"))


# --- the terminal -----------------------------------------------------------------------------------------------


class _Raw:
    """Text printed as is above the live view: one segment, no wrapping nor markup (linear in its length)."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield Segment(self.text)


class Screen:
    """The live view on a terminal (``file``), with the output lines gathered between refreshes above it.

    ``write`` (the :class:`plush.shell.console.LineWriter`'s stdout and stderr) only appends to a list;
    :meth:`refresh` asks for one paint: the output gathered, in one write, then the view redrawn once. Once
    :meth:`start` ed, painting happens in a thread of its own (the *painter*), so that a terminal slow to
    read (a full pseudo-terminal, a loaded machine) blocks the painter, never the caller: the controller's
    event loop only feeds the state and asks. Requests made while the painter is busy are one paint. Feeding
    the state and taking a snapshot of it hold :attr:`lock`; writing to the terminal holds nothing of the
    caller's."""

    def __init__(self, state: LiveState, file: TextIO) -> None:
        self.state = state
        self.console = Console(file=file, highlight=False)
        #: held while the state is fed (by the caller) or read for a paint (by the painter), and around output
        self.lock = threading.Lock()
        self._pending: list[str] = []
        self._live = Live(
            console=self.console,
            auto_refresh=False,
            transient=True,
            redirect_stdout=False,
            redirect_stderr=True,
            vertical_overflow="visible",
        )
        self._due = threading.Event()
        self._halt = False
        self._painter: threading.Thread | None = None

    def write(self, text: str) -> int:
        with self.lock:
            self._pending.append(text)
        return len(text)

    def flush(self) -> None:
        pass

    def start(self) -> None:
        self._live.start()
        self._painter = threading.Thread(target=self._paint_loop, name="plush-live-view", daemon=True)
        self._painter.start()

    def refresh(self) -> None:
        """Ask for a paint; returns at once (before :meth:`start`: paints here)."""
        if self._painter is None:
            self._paint()
        else:
            self._due.set()

    def _paint_loop(self) -> None:
        while True:
            self._due.wait()
            self._due.clear()
            if self._halt:
                return
            self._paint()

    def _paint(self) -> None:
        with self.lock:  # a snapshot: the view holds numbers and texts, not the state
            text, self._pending = "".join(self._pending), []
            view = live_view(self.state)
        if text:
            self.console.print(_Raw(text), end="", soft_wrap=True)
        self._live.update(view, refresh=True)

    def stop(self, results: str | None) -> None:
        painter, self._painter = self._painter, None
        if painter is not None:
            self._halt = True
            self._due.set()
            painter.join()
        self._paint()
        self._live.stop()
        if results is not None:
            self.console.print(summary_table(self.state, results))
