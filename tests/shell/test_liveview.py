"""The live view's summary (plush.shell.liveview.LiveState, pure): fed a run's events at 1,000 hosts, it
counts each component's hosts per stage (each host in one stage), restarts, barriers and the last error,
and renders to the same few lines at 1,000 hosts as at 3 (summaries, not one row per host)."""

from __future__ import annotations

import io
import threading

from rich.console import Console

from plush.shell.liveview import STAGES, LiveState, Screen, live_view, summary_table


def _render(renderable: object) -> str:
    out = io.StringIO()
    Console(file=out, width=140, color_system=None).print(renderable)
    return out.getvalue()


def _feed_run(n: int) -> LiveState:
    state = LiveState()
    state.feed("run.started", None, None, {"run": "r1", "hosts": n + 1}, 0.0)
    hosts = [f"node-{i}" for i in range(1, n + 1)]
    state.expect({"work": hosts, "boss": ["boss-1"]})
    for h in hosts:
        state.feed("host.joined", h, None, {"component": "work"}, 1.0)
    state.feed("host.joined", "boss-1", None, {"component": "boss"}, 1.0)
    for h in hosts:
        state.feed("host.installed", h, None, {"software": []}, 2.0)
    state.feed("barrier.start_released", None, None, {"hosts": n + 1}, 2.0)
    for h in hosts:
        state.feed("block.started", h, "/app/work/p", {}, 3.0)
        state.feed("barrier.arrived", h, "/app/work/gate", {"barrier": "gate"}, 3.0)
    state.feed("host.failed", "node-7", None, {"reason": "agent exited", "component": "work"}, 4.0)
    state.feed("host.restarted", "node-7", None, {"component": "work", "reason": "agent exited"}, 4.5)
    for h in hosts[: n // 2]:
        if h != "node-7":
            state.feed("host.finished", h, None, {"ok": True}, 5.0)
    state.feed(
        "process.exited", "node-9", "/app/work/p/p", {"code": 3, "action": "fail", "stderr_tail": "x\nboom\n"}, 5.0
    )
    return state


def test_each_host_is_in_one_stage_and_the_counts_are_per_component() -> None:
    state = _feed_run(1000)
    work, boss = state.rows()
    assert (work.name, boss.name) == ("work", "boss")
    assert sum(work.count(s) for s in STAGES) == 1000
    assert work.count("done") == 499 and work.count("running") == 500 and work.count("joining") == 1
    assert work.restarts == 1
    assert boss.count("installing") == 1 and sum(boss.count(s) for s in STAGES) == 1
    assert state.barriers["gate"].arrived == 1000
    assert state.last_error == "node-9 /app/work/p/p: exit 3: boom"
    assert state.phase == "running"


def test_the_view_is_as_small_at_1000_hosts_as_at_3() -> None:
    big, small = _render(live_view(_feed_run(1000), now=6.0)), _render(live_view(_feed_run(3), now=6.0))
    assert len(big.splitlines()) == len(small.splitlines()) <= 8
    assert "node-" not in big.replace("node-9 /app", "")  # no host listed, but the one in the last error
    state = _feed_run(1000)
    state.barrier_counts([{"name": "gate", "expected": 1001, "arrived": 1000, "released": False}])
    assert "gate 1000/1001" in _render(live_view(state, now=6.0))


def test_the_summary_table_has_hosts_done_failed_restarts_wall_and_the_results() -> None:
    state = _feed_run(10)
    state.feed("run.finished", None, None, {"ok": False, "stopped": False, "reason": "boom"}, 9.0)
    text = _render(summary_table(state, "/runs/r1", now=10.0))
    assert "run r1: FAILED" in text and "results: /runs/r1" in text
    row = next(line for line in text.splitlines() if " work " in line)
    cells = [cell.strip() for cell in row.split("│")[1:-1]]
    assert cells == ["work", "10", "5", "0", "1", "9.00s"]  # node-7 failed, was restarted: joining again


def test_hosts_connected_before_the_run_are_placed_in_their_component_once_it_is_known() -> None:
    """A run on connected hosts (``plush serve``): they joined before it, their first events name no component
    until the run's hosts per component are read (``expect``)."""
    state = LiveState()
    state.feed("run.started", None, None, {"run": "r1", "hosts": 3}, 0.0)
    for h in ("local-1", "local-2", "local-3"):
        state.feed("host.installed", h, None, {"software": []}, 1.0)
    assert [(c.name, c.count("ready")) for c in state.rows()] == [("?", 3)]
    state.expect({"echo": ["local-1", "local-2"], "other": ["local-3"]})
    assert [(c.name, c.hosts, c.count("ready")) for c in state.rows()] == [("echo", 2, 2), ("other", 1, 1)]
    state.feed("host.finished", "local-3", None, {"ok": True}, 2.0)
    assert state.components["other"].count("done") == 1
    state.expect({"echo": ["local-1", "local-2", "local-4"], "other": ["local-3"]})
    state.feed("host.installed", "local-4", None, {"software": []}, 2.5)  # first seen after expect
    assert [(c.name, c.hosts, c.count("ready")) for c in state.rows()] == [("echo", 3, 3), ("other", 1, 0)]


class _StalledTerminal(io.StringIO):
    """A terminal that stops reading once ``stall`` is called, until ``resume``: a write then waits."""

    def __init__(self) -> None:
        super().__init__()
        self.open = threading.Event()
        self.open.set()
        self.writing = threading.Event()

    def isatty(self) -> bool:
        return True

    def write(self, text: str) -> int:
        if not self.open.is_set():
            self.writing.set()
            assert self.open.wait(30), "never resumed"
        return super().write(text)


def test_a_terminal_that_stops_reading_blocks_the_painter_never_the_run() -> None:
    """The live view paints in a thread of its own: while the terminal does not read, feeding the view,
    writing output lines and asking for refreshes all return (the engine's loop goes on); once it reads
    again, every output line is printed and the view ends with the summary table."""
    terminal = _StalledTerminal()
    state = _feed_run(50)
    screen = Screen(state, terminal)
    screen.start()
    terminal.open.clear()
    screen.write("[local-1 /app/work/p/p] first line\n")
    screen.refresh()
    assert terminal.writing.wait(30)  # the painter is stuck in a write
    for n in range(1, 51):  # the run's end, fed while the painter is stuck
        with screen.lock:
            state.feed("host.finished", f"node-{n}", None, {"ok": True}, 6.0)
    for n in range(200):
        screen.write(f"[local-2 /app/work/p/p] line {n}\n")
        screen.refresh()
    assert not terminal.open.is_set()  # all of it returned while the terminal was not read
    terminal.open.set()
    screen.stop("/tmp/results")
    text = terminal.getvalue()
    assert "first line" in text and "line 199" in text and "results: /tmp/results" in text
    assert state.components["work"].count("done") == 50
