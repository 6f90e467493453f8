"""The run ledger (plush.controller.runledger): failures, replacements and work queues folded from a run's events,
the part of ``GET /v1/application/states`` the web UI's resource and application views read (its store applies
the same rules to the events after the snapshot: tests/web/test_web_store.py)."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from plush.barriers import WorkQueue
from plush.controller.catalogue import (
    APP_RESTARTED,
    HOST_DROPPED,
    HOST_FAILED,
    HOST_REMATCHED,
    HOST_RESTARTED,
    RUN_STARTED,
    WORK_DONE,
    WORK_FAILED,
    WORK_TAKEN,
)
from plush.controller.events import Event
from plush.controller.runledger import RunLedger
from plush.controller.runstates import run_states

Q = "/app/workers/flow"


def fold(*events: Event) -> dict[str, Any]:
    ledger = RunLedger()
    for event in events:
        ledger(event)
    return ledger.to_dict()


def test_failures_replacements_drops_and_restarts_of_the_run_and_a_new_run_starts_empty() -> None:
    events = [
        Event(name=RUN_STARTED, data={"run": "r1", "hosts": 3}),
        Event(name=HOST_FAILED, host="h1", data={"reason": "its agent exited", "component": "c"}),
        Event(name=HOST_REMATCHED, host="h1", data={"replacement": "h4", "component": "c", "reason": "h1 failed"}),
        Event(name=HOST_FAILED, host="h2", data={"reason": "over its limits", "component": "c"}),
        Event(name=HOST_DROPPED, host="h2", data={"reason": "no spare left", "component": "c"}),
        Event(name=HOST_RESTARTED, host="h3", data={"reason": "restart", "component": "c"}),
        Event(name=HOST_RESTARTED, host="h3", data={"reason": "restart", "component": "c"}),
    ]
    got = fold(*events)
    assert got["replaced"] == [{"host": "h1", "replacement": "h4", "component": "c", "reason": "h1 failed"}]
    assert got["failures"] == {"h1": "its agent exited", "h2": "over its limits"}
    assert got["dropped"] == {"h2": "no spare left"}
    assert got["restarts"] == {"h3": 2}
    assert fold(*events, Event(name=RUN_STARTED, data={"run": "r2", "hosts": 3})) == fold()


def test_a_host_restarted_in_place_is_no_longer_failed_nor_dropped_and_fails_again_anew() -> None:
    failed = Event(name=HOST_FAILED, host="h1", data={"reason": "its agent exited", "component": "c"})
    restarted = Event(name=HOST_RESTARTED, host="h1", data={"reason": "restart", "component": "c"})
    dropped = Event(name=HOST_DROPPED, host="h2", data={"reason": "no spare left", "component": "c"})
    got = fold(failed, dropped, Event(name=HOST_FAILED, host="h2", data={"reason": "x"}), restarted)
    assert got["failures"] == {"h2": "x"}
    assert got["dropped"] == {"h2": "no spare left"}
    assert got["restarts"] == {"h1": 1}
    # the operator brings a dropped host back: in place again
    revived = fold(dropped, Event(name=HOST_RESTARTED, host="h2", data={}))
    assert (revived["dropped"], revived["failures"]) == ({}, {})
    again = fold(failed, restarted, Event(name=HOST_FAILED, host="h1", data={"reason": "silent"}))
    assert again["failures"] == {"h1": "silent"}


def test_a_work_queue_counts_accepted_reports_only_and_an_application_restart_empties_it() -> None:
    events = [
        Event(name=WORK_TAKEN, host="h1", block=Q, data={"item": "a"}),
        Event(name=WORK_TAKEN, host="h2", block=Q, data={"item": "b"}),
        Event(name=WORK_DONE, host="h1", block=Q, data={"item": "a", "accepted": True}),
        Event(name=WORK_DONE, host="h3", block=Q, data={"item": "b", "accepted": False}),  # stale: ignored
        Event(name=WORK_TAKEN, host="h1", block=Q, data={"item": "c"}),
        Event(name=WORK_FAILED, host="h1", block=Q, data={"item": "c", "accepted": True}),
    ]
    got = fold(*events)
    assert got["work"] == {Q: {"done": 1, "failed": 1, "in_flight": [{"item": "b", "host": "h2"}]}}
    assert fold(*events, Event(name=APP_RESTARTED, data={"count": 1, "reason": "x"}))["work"] == {}


def test_the_snapshot_carries_the_ledger_and_is_empty_before_any_run() -> None:
    assert run_states(None, []) == {
        "event": 0,
        "finished": False,
        "hosts": {},
        "replaced": [],
        "failures": {},
        "dropped": {},
        "restarts": {},
        "work": {},
    }


HOSTS = ("h1", "h2", "h3")
ITEMS = ("a", "b", "c", "d")
#: (what, host, item): a host takes, reports done or failed (maybe an item it does not hold), or fails
WHAT = st.sampled_from(["take", "done", "failed", "host_failed"])
OPS = st.lists(st.tuples(WHAT, st.sampled_from(HOSTS), st.sampled_from(ITEMS)), max_size=40)


@given(OPS)
def test_the_ledger_s_queue_is_the_work_queue_the_coordinator_drives_with_the_same_events(
    ops: list[tuple[str, str, str]],
) -> None:
    """The coordinator emits work.taken after take(), work.done/failed with take's verdict as ``accepted``,
    host.failed before host_failed(): the ledger then holds what the queue holds."""
    queue, ledger = WorkQueue(ITEMS), RunLedger()
    for what, host, item in ops:
        if what == "take":
            taken = queue.take(host)
            if taken is not None:
                ledger(Event(name=WORK_TAKEN, host=host, block=Q, data={"item": taken}))
        elif what == "host_failed":
            ledger(Event(name=HOST_FAILED, host=host, data={"reason": "x", "component": "c"}))
            queue.host_failed(host)
        else:
            accepted = queue.done(host, item) if what == "done" else queue.failed(host, item)
            ledger(Event(name=WORK_DONE if what == "done" else WORK_FAILED, host=host, block=Q,
                         data={"item": item, "accepted": accepted}))  # fmt: skip
    work = ledger.to_dict()["work"].get(Q, {"done": 0, "failed": 0, "in_flight": []})
    assert work["done"] == queue.statistics().done
    assert {(f["item"], f["host"]) for f in work["in_flight"]} == {
        (item, queue.holder(item)) for item in ITEMS if queue.holder(item) is not None
    }
