"""The run journal: every event of a run, with timestamps, in SQLite (``<run dir>/journal.sqlite``).

The journal is a reliable sink of the :class:`~plush.controller.events.EventBus`: it sees every event in
order. Calling it only serialises the event and queues the row (no file I/O on the event loop); a writer
thread commits what is queued at least every ``flush_interval`` seconds (sooner once ``flush_every`` rows
wait), so an event is on disk within about a second even when no other event follows, and survives a
kill -9 of the controller (WAL mode: a committed transaction is in the file system at once).
:meth:`Journal.flush` waits until everything queued is written; :meth:`Journal.close` flushes and stops the
writer.

A failed write (disk full, a read-only or vanished directory, any SQLite error) is not retried: the writer
records it (:attr:`Journal.error`), calls ``on_error`` once (from the writer thread), and writes nothing more;
what was committed before stays readable. The schema is a documented interface (docs/operations.md):
:data:`SCHEMA_VERSION` is stored as ``PRAGMA user_version`` and :func:`read_events` refuses a newer one, or a
file that is not a journal, with a :class:`JournalError` (one line for the CLI).
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from plush.controller.catalogue import journaled
from plush.controller.events import Event
from plush.errors import PlushError, StorageError

__all__ = ["SCHEMA_VERSION", "Journal", "JournalError", "read_events"]

#: the version of the journal's schema (``PRAGMA user_version``); 0 is a journal from before versioning
SCHEMA_VERSION = 1

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

_Row = tuple[Any, ...]


class JournalError(PlushError):
    """A journal cannot be read: not a journal, corrupt or truncated, or of a newer schema version."""

    exit_code = 2


class Journal:
    """Appends events to a SQLite file from a writer thread; see the module docstring."""

    def __init__(
        self,
        path: Path,
        *,
        flush_every: int = 500,
        flush_interval: float = 0.25,
        on_error: Callable[[StorageError], object] | None = None,
    ) -> None:
        self.path = path
        try:
            self._db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
            self._db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        except (sqlite3.Error, OSError) as exc:
            raise _storage_error(path, exc) from exc
        self._flush_every = flush_every
        #: a row waits at most this long (plus the write itself) before it is committed
        self._flush_interval = flush_interval
        self._on_error = on_error
        self._cond = threading.Condition()
        self._pending: list[_Row] = []
        self._meta: list[tuple[str, str]] = []
        self._queued = 0  # rows handed to the journal
        self._written = 0  # rows committed (or given up on after an error)
        self._closing = False
        self._urgent = False  # a flush() waits
        #: the write that failed, if one did; nothing is written after it
        self.error: StorageError | None = None
        self.count = 0
        self._thread = threading.Thread(target=self._writer, name="plush-journal", daemon=True)
        self._thread.start()

    def set_meta(self, key: str, value: Any) -> None:
        with self._cond:
            self._meta.append((key, json.dumps(value)))
            self._cond.notify()

    def __call__(self, event: Event) -> None:
        if not journaled(event.name):
            return  # process output: it is in the run's log files
        row = (
            event.seq,
            event.at,
            event.name,
            event.host,
            event.block,
            event.instance,
            json.dumps(event.data, default=str) if event.data else None,
        )
        with self._cond:
            self.count += 1
            if self.error is not None or self._closing:
                return
            self._pending.append(row)
            self._queued += 1
            if len(self._pending) >= self._flush_every:
                self._cond.notify()

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every row queued so far is written (or given up on); False on timeout."""
        with self._cond:
            target = self._queued
            self._urgent = True
            self._cond.notify()
            return self._cond.wait_for(lambda: self._written >= target and not self._meta, timeout)

    def close(self) -> StorageError | None:
        """Write what is queued, stop the writer, close the file; the error that stopped writing, if any."""
        with self._cond:
            self._closing = True
            self._cond.notify()
        self._thread.join()
        try:
            self._db.close()
        except sqlite3.Error as exc:  # the final checkpoint; what was committed stays in the WAL file
            if self.error is None:
                self.error = _storage_error(self.path, exc)
        return self.error

    # --- the writer thread ----------------------------------------------------------------------------

    def _writer(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(
                    lambda: self._closing or self._urgent or self._meta or len(self._pending) >= self._flush_every,
                    self._flush_interval,
                )
                rows, self._pending = self._pending, []
                meta, self._meta = self._meta, []
                closing, self._urgent = self._closing, False
            if rows or meta:
                self._write(rows, meta)
            with self._cond:
                self._written += len(rows)
                self._cond.notify_all()
            if closing:
                return

    def _write(self, rows: list[_Row], meta: list[tuple[str, str]]) -> None:
        if self.error is not None:
            return
        try:
            self._db.execute("BEGIN")
            self._db.executemany("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", meta)
            self._db.executemany("INSERT INTO events VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
            self._db.execute("COMMIT")
        except (sqlite3.Error, OSError) as exc:
            error = _storage_error(self.path, exc)
            with self._cond:
                self.error = error
                self._pending.clear()
            with contextlib.suppress(sqlite3.Error):  # no transaction left to roll back: nothing to do
                self._db.execute("ROLLBACK")
            if self._on_error is not None:
                self._on_error(error)


def _storage_error(path: Path, exc: BaseException) -> StorageError:
    return StorageError(f"cannot write the journal {path}: {exc}", path=str(path))


def read_events(path: Path, *, name: str | None = None) -> list[Event]:
    """Every event stored in the journal at ``path`` (those named ``name`` only, when given), in order.

    Raises :class:`JournalError` for a file that is not a readable journal of a known schema version."""
    if not path.is_file():
        raise JournalError(f"no journal at {path}")
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise JournalError(f"cannot open the journal {path}: {exc}") from None
    try:
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise JournalError(
                f"the journal {path} has schema version {version}; this plush reads versions up to "
                f"{SCHEMA_VERSION}: use a newer plush"
            )
        if db.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='events'").fetchone() is None:
            raise JournalError(f"{path} is not a Plush journal (it has no events table)")
        query = "SELECT seq, at, name, host, block, instance, data FROM events"
        args: tuple[Any, ...] = ()
        if name is not None:
            query += " WHERE name = ?"
            args = (name,)
        rows = db.execute(query + " ORDER BY rowid", args).fetchall()
        return [
            Event(seq=s, at=at, name=n, host=h, block=b, instance=i, data=json.loads(d) if d else {})
            for s, at, n, h, b, i, d in rows
        ]
    except sqlite3.Error as exc:
        raise JournalError(f"cannot read the journal {path}: {exc} (is it corrupt or truncated?)") from None
    except (ValueError, TypeError) as exc:  # a data column that is not JSON
        raise JournalError(f"cannot read the journal {path}: a malformed event ({exc})") from None
    finally:
        db.close()
