"""The run journal: every event of a run, with timestamps, in SQLite (``<run dir>/journal.sqlite``).

The journal is a reliable sink of the :class:`~plush.controller.events.EventBus`: it sees every event in
order. Writes are batched (one transaction per ``flush_every`` events, when an event comes ``flush_interval``
seconds after the last flush, or on :meth:`flush`), and
:meth:`close` flushes, so a run that ends, aborts or is interrupted keeps every event it published.
Reading back (:func:`read_events`) serves reports, the re-attach of a restarted controller and tests.
"""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Any

from plush.controller.events import Event

__all__ = ["Journal", "read_events"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER NOT NULL,
    at REAL NOT NULL,
    name TEXT NOT NULL,
    host TEXT,
    block TEXT,
    instance INTEGER,
    data TEXT
);
CREATE INDEX IF NOT EXISTS events_name ON events(name);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
"""


class Journal:
    """Appends events to a SQLite file."""

    def __init__(self, path: Path, *, flush_every: int = 200, flush_interval: float = 1.0) -> None:
        self.path = path
        self._db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        self._pending: list[tuple[Any, ...]] = []
        self._flush_every = flush_every
        #: a reader (``plush report`` during a run) sees events at most this many seconds late, while any come
        self._flush_interval = flush_interval
        self._flushed_at = time.time()
        self.count = 0

    def set_meta(self, key: str, value: Any) -> None:
        self._db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (key, json.dumps(value)))

    def __call__(self, event: Event) -> None:
        self._pending.append(
            (
                event.seq,
                event.at,
                event.name,
                event.host,
                event.block,
                event.instance,
                json.dumps(event.data, default=str) if event.data else None,
            )
        )
        self.count += 1
        if len(self._pending) >= self._flush_every or event.at - self._flushed_at >= self._flush_interval:
            self.flush()

    def flush(self) -> None:
        self._flushed_at = time.time()
        if not self._pending:
            return
        self._db.execute("BEGIN")
        self._db.executemany("INSERT INTO events VALUES (?, ?, ?, ?, ?, ?, ?)", self._pending)
        self._db.execute("COMMIT")
        self._pending.clear()

    def close(self) -> None:
        self.flush()
        self._db.close()


def read_events(path: Path, *, name: str | None = None) -> list[Event]:
    """Every event stored in the journal at ``path`` (those named ``name`` only, when given), in order."""
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        query = "SELECT seq, at, name, host, block, instance, data FROM events"
        args: tuple[Any, ...] = ()
        if name is not None:
            query += " WHERE name = ?"
            args = (name,)
        rows = db.execute(query + " ORDER BY rowid", args).fetchall()
    finally:
        db.close()
    return [
        Event(seq=s, at=at, name=n, host=h, block=b, instance=i, data=json.loads(d) if d else {})
        for s, at, n, h, b, i, d in rows
    ]
