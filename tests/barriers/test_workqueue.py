"""Unit tests of the workflow queue: exactly-once items, requeue on failure, stale reports ignored."""

from __future__ import annotations

import pytest

from plush.barriers import WorkQueue, WorkQueueError


def test_items_go_out_in_order_and_finish() -> None:
    q = WorkQueue(["p1", "p2", "p3"])
    assert not q.finished
    assert q.take("a") == "p1"
    assert q.take("b") == "p2"
    assert q.take("a") == "p3"
    assert q.take("c") is None
    assert q.done("a", "p1")
    assert q.done("b", "p2")
    assert not q.finished
    assert q.done("a", "p3")
    assert q.finished
    assert q.done_items() == {"p1": "a", "p2": "b", "p3": "a"}
    assert q.statistics().done_by_host == {"a": 2, "b": 1}


def test_empty_queue_is_finished() -> None:
    q = WorkQueue([])
    assert q.finished
    assert q.take("a") is None


def test_failed_item_goes_to_the_back() -> None:
    q = WorkQueue(["p1", "p2", "p3"])
    assert q.take("a") == "p1"
    assert q.failed("a", "p1")
    assert q.take("b") == "p2"
    assert q.take("b") == "p3"
    assert q.take("c") == "p1"
    assert q.attempts("p1") == 2
    assert q.statistics().requeued == 1


def test_host_failure_puts_its_items_back_at_the_front() -> None:
    q = WorkQueue(["p1", "p2", "p3", "p4"])
    q.take("a")
    q.take("b")
    q.take("a")  # a holds p1 and p3
    assert q.held_by("a") == ("p1", "p3")
    assert q.host_failed("a") == ("p1", "p3")
    assert q.holder("p1") is None
    assert q.take("c") == "p1"
    assert q.take("c") == "p3"
    assert q.take("c") == "p4"


def test_stale_done_after_host_failure_is_ignored() -> None:
    q = WorkQueue(["p1"])
    q.take("a")
    q.host_failed("a")
    assert q.take("b") == "p1"
    assert not q.done("a", "p1")  # a was declared failed: its report is stale
    assert q.holder("p1") == "b"
    assert not q.finished
    assert q.done("b", "p1")
    assert q.finished
    assert not q.done("b", "p1")  # twice: ignored, still done once
    assert q.done_items() == {"p1": "b"}
    assert q.statistics().ignored == 2


def test_stale_done_while_the_item_is_back_in_the_queue_is_ignored() -> None:
    q = WorkQueue(["p1"])
    q.take("a")
    q.host_failed("a")
    assert not q.done("a", "p1")
    assert q.pending == 1
    assert not q.failed("a", "p1")


def test_duplicate_and_unknown_items_are_errors() -> None:
    with pytest.raises(WorkQueueError, match="distinct; repeated: x"):
        WorkQueue(["x", "y", "x"])
    q = WorkQueue(["x"])
    with pytest.raises(WorkQueueError, match="'z' is not in this queue") as info:
        q.done("a", "z")
    assert info.value.item == "z"
    assert info.value.host == "a"
