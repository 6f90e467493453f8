from pathlib import Path

from plush.controller.events import Event, EventBus
from plush.controller.journal import Journal, read_events


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


def test_journal_flushes_by_time_so_readers_see_a_running_run(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite"
    journal = Journal(path, flush_every=1000, flush_interval=1.0)
    journal(Event(name="a", at=journal._flushed_at))
    assert read_events(path) == []  # batched
    journal(Event(name="b", at=journal._flushed_at + 2.0))  # comes 2 s later: flushed with it
    assert [e.name for e in read_events(path)] == ["a", "b"]
    journal.close()
