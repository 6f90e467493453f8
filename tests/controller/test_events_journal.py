import os
import sqlite3
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from plush.controller.events import Event, EventBus
from plush.controller.journal import SCHEMA_VERSION, Journal, JournalError, read_events
from plush.controller.runstatus import read_status
from plush.errors import StorageError


async def test_subscribers_see_events_in_order_and_lossy_ones_count_missed() -> None:
    bus = EventBus()
    seen: list[str] = []
    bus.add_sink(lambda e: seen.append(e.name))
    full = bus.subscribe()
    lossy = bus.subscribe(maxlen=2)
    for i in range(5):
        bus.emit(f"e.{i}", host="local-1")
    assert seen == [f"e.{i}" for i in range(5)]
    assert [e.name for e in full.drain_nowait()] == seen
    assert [e.name for e in lossy.drain_nowait()] == ["e.3", "e.4"]
    assert lossy.missed == 3
    full.close()
    assert await full.get() is None


def test_journal_keeps_every_event_after_close(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite"
    journal = Journal(path, flush_every=3)
    bus = EventBus()
    bus.add_sink(journal)
    for i in range(7):
        bus.emit("process.exited", host=f"local-{i}", block="/app/cb/p", instance=1, data={"code": i})
    journal.close()
    events = read_events(path)
    assert [e.host for e in events] == [f"local-{i}" for i in range(7)]
    assert events[3].data == {"code": 3} and events[3].block == "/app/cb/p"
    assert len(read_events(path, name="process.exited")) == 7
    assert read_events(path, name="other") == []


def test_event_describe() -> None:
    e = Event(name="process.exited", host="h", block="/a/b", instance=2, data={"code": 1})
    assert e.describe() == "process.exited h /a/b#2 code=1"
    assert e.to_dict()["instance"] == 2


def _wait_for(condition: Callable[[], Any], what: str, timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)
    return value


def test_an_event_reaches_disk_although_no_other_event_follows(tmp_path: Path) -> None:
    """Regression (issue 7, item 10): a quiet run's last events were written only when another one came."""
    path = tmp_path / "journal.sqlite"
    journal = Journal(path)
    journal(Event(name="process.started", host="local-1"))
    _wait_for(lambda: read_events(path), "the event on disk")  # no further event, no flush() call
    assert [e.name for e in read_events(path)] == ["process.started"]
    journal.close()


def test_flush_waits_for_what_was_queued(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite"
    journal = Journal(path, flush_interval=60.0)
    for i in range(3):
        journal(Event(name=f"e.{i}"))
    assert journal.flush(timeout=30.0)
    assert [e.name for e in read_events(path)] == ["e.0", "e.1", "e.2"]
    assert journal.close() is None


def test_the_schema_version_is_stored_and_checked(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite"
    Journal(path).close()
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    db.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    db.close()
    with pytest.raises(JournalError, match="schema version 2"):
        read_events(path)


@pytest.mark.parametrize(
    "content",
    [b"", b"not a database at all\n" * 100, b"SQLite format 3\x00" + b"\x00" * 50, "truncated"],
    ids=["empty", "text", "header-only", "truncated"],
)
def test_a_corrupt_or_truncated_journal_is_one_clear_error(tmp_path: Path, content: bytes | str) -> None:
    path = tmp_path / "journal.sqlite"
    if content == "truncated":
        journal = Journal(path)
        for i in range(2000):
            journal(Event(name="e", data={"i": i, "pad": "x" * 100}))
        journal.close()
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 3])
    else:
        path.write_bytes(content)  # type: ignore[arg-type]
    with pytest.raises(JournalError) as info:
        read_events(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_a_journal_from_before_versioning_is_read(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite"
    db = sqlite3.connect(path)
    db.execute(
        "CREATE TABLE events (seq INTEGER, at REAL, name TEXT, host TEXT, block TEXT, instance INTEGER, data TEXT)"
    )
    db.execute("INSERT INTO events VALUES (1, 2.0, 'run.started', NULL, NULL, NULL, '{\"run\": \"x\"}')")
    db.commit()
    db.close()
    assert [(e.name, e.data) for e in read_events(path)] == [("run.started", {"run": "x"})]


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs (root only)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    where = tmp_path / "small"
    where.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(where)], check=False, capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def test_a_failed_write_is_reported_at_once_and_the_journal_stays_readable(small_disk: Path) -> None:
    path = small_disk / "journal.sqlite"
    errors: list[StorageError] = []
    journal = Journal(path, on_error=errors.append)
    n = 0
    while not errors:
        journal(Event(name="e", data={"i": n, "pad": "x" * 1000}))
        n += 1
        if n % 100 == 0:
            journal.flush(timeout=30.0)
        assert n < 100_000, "the disk never filled"
    assert "disk is full" in str(errors[0]) or "No space" in str(errors[0])
    journal(Event(name="after"))  # dropped: nothing is written after a failure
    assert journal.close() is errors[0]
    kept = read_events(path)
    assert 0 < len(kept) < n
    assert [e.data["i"] for e in kept] == list(range(len(kept)))  # a prefix, in order, nothing torn


@pytest.fixture(scope="module")
def good_journal(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    path = tmp_path_factory.mktemp("good") / "journal.sqlite"
    journal = Journal(path)
    for i in range(300):
        journal(Event(name="e", host="local-1", data={"i": i, "pad": "y" * 50}))
    journal.close()
    return path.read_bytes()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    cut=st.integers(min_value=0, max_value=1 << 20),
    flips=st.lists(st.tuples(st.integers(min_value=0, max_value=1 << 20), st.integers(0, 255)), max_size=8),
)
def test_any_damaged_journal_reads_or_is_one_journal_error(
    tmp_path: Path, good_journal: bytes, cut: int, flips: list[tuple[int, int]]
) -> None:
    """Boundary: whatever the bytes of a journal file, reading it gives events or a JournalError, nothing else."""
    data = bytearray(good_journal[: cut % (len(good_journal) + 1)])
    for where, value in flips:
        if data:
            data[where % len(data)] = value
    path = tmp_path / f"damaged-{cut}-{len(flips)}.sqlite"
    path.write_bytes(bytes(data))
    try:
        events = read_events(path)
    except JournalError as exc:
        assert "\n" not in str(exc)
    else:
        assert all(isinstance(e, Event) for e in events)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=st.binary(max_size=5000))
def test_any_status_file_reads_without_error(tmp_path: Path, raw: bytes) -> None:
    (tmp_path / "status.json").write_bytes(raw)
    state = read_status(tmp_path)
    assert isinstance(state.state, str) and state.held is False


def test_the_journal_keeps_no_process_output(tmp_path: Path) -> None:
    """Process output is an event on the bus for every face, but the run's log files hold it: not journaled."""
    path = tmp_path / "j.sqlite"
    journal = Journal(path)
    journal(Event(name="process.output", host="h", data={"stream": "stdout", "data": b"x"}))
    journal(Event(name="process.exited", host="h", data={"code": 0}))
    assert journal.close() is None
    assert [e.name for e in read_events(path)] == ["process.exited"]
