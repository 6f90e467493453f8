"""The journal's cost on the controller's event loop, and how late an event reaches disk.

    .venv/bin/python bench/journal.py [--events 100000] [--latency 20]

- **call**: microseconds per ``Journal.__call__`` (what the event loop pays per event: serialising the row and
  queueing it; the writer thread does the I/O), median over batches of 10,000 events;
- **to disk**: seconds from publishing one event (with no other event after it) until a separate reader
  sees it in the file, median over ``--latency`` single events.

Prints medians with (min-max); nothing is asserted (timings belong here, not in tests).
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path

from plush.controller.events import Event
from plush.controller.journal import Journal


def _event(i: int) -> Event:
    return Event(
        name="process.exited",
        host=f"local-{i % 100}",
        block="/app/workers/crunch/worker",
        instance=1,
        data={"code": 1, "action": "restart_process", "rule": "exit_policy #1 match=nonzero"},
    )


def call_cost(path: Path, events: int, batch: int = 10_000) -> list[float]:
    journal = Journal(path)
    costs = []
    for start in range(0, events, batch):
        evs = [_event(i) for i in range(start, start + batch)]
        t0 = time.perf_counter()
        for ev in evs:
            journal(ev)
        costs.append((time.perf_counter() - t0) / batch * 1e6)
    journal.close()
    return costs


def to_disk(path: Path, count: int) -> list[float]:
    journal = Journal(path)
    reader = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    delays = []
    for i in range(count):
        t0 = time.perf_counter()
        journal(Event(name="probe", data={"i": i}))
        while reader.execute("SELECT count(*) FROM events WHERE name='probe'").fetchone()[0] <= i:
            time.sleep(0.001)
        delays.append(time.perf_counter() - t0)
        time.sleep(0.1)  # then quiet: the next probe is the only event
    reader.close()
    journal.close()
    return delays


def _fmt(values: list[float], unit: str, scale: float = 1.0) -> str:
    med = statistics.median(values) * scale
    return f"{med:.3g} {unit} ({min(values) * scale:.3g}-{max(values) * scale:.3g})"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--latency", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        print("call:   ", _fmt(call_cost(Path(tmp) / "a.sqlite", args.events), "us/event"))
        print("to disk:", _fmt(to_disk(Path(tmp) / "b.sqlite", args.latency), "s"))


if __name__ == "__main__":
    main()
