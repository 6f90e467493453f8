"""The workflow queue: exactly-once distribution of a workflow block's items over hosts (pure).

Role. For each ``workflow_block`` the run engine keeps one :class:`WorkQueue` of its data files (or
tasks). Each host repeatedly :meth:`~WorkQueue.take`\\ s the next item, runs the task on it, and reports
:meth:`~WorkQueue.done` or :meth:`~WorkQueue.failed`. When a host fails, :meth:`~WorkQueue.host_failed`
puts every item it held back in the queue.

Item states: ``pending`` (in the queue) → ``in_flight`` (held by one host) → ``done``; ``in_flight`` →
``pending`` again on ``failed`` (to the back of the queue, so that other items progress) or on
``host_failed`` (to the front, in the order they were taken: they were started first).

Invariants. Items are distinct. An item is in exactly one of pending, in flight and done, and held by
at most one host. An item is done exactly once: a ``done`` (or ``failed``) from a host that does not
hold the item — the item was re-queued after that host was declared failed, or another host holds it
now, or it is done already — is *ignored* and returns ``False`` (the failure already gave the item to
someone else; counting the stale report could complete it twice). ``finished`` is true when every item
is done; a host that finds the queue empty gets ``None`` even if items are in flight elsewhere (they
may come back: take again when :attr:`WorkQueue.pending` is non-zero, or when told ``host_failed``).
Identity is per host name: if a failed host is restarted under the same name and takes an item back,
a late ``done`` from its previous incarnation completes that item (it did complete it).
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Sequence
from dataclasses import dataclass

from plush.errors import PlushError

__all__ = ["WorkQueue", "WorkQueueError", "WorkQueueStatistics"]


class WorkQueueError(PlushError):
    """A workflow queue was misused: duplicate items, or a report about an item it never had."""

    def __init__(self, message: str, *, item: str | None = None, host: str | None = None) -> None:
        super().__init__(message)
        self.item = item
        self.host = host


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkQueueStatistics:
    total: int
    pending: int
    in_flight: int
    done: int
    requeued: int  # items put back by ``failed`` or ``host_failed``, counted each time
    ignored: int  # stale ``done``/``failed`` reports ignored
    done_by_host: dict[str, int]


class WorkQueue:
    """Exactly-once distribution of ``items`` over hosts, first come first served."""

    def __init__(self, items: Sequence[str]) -> None:
        dupes = sorted(item for item, n in Counter(items).items() if n > 1)
        if dupes:
            raise WorkQueueError(f"workflow items must be distinct; repeated: {', '.join(dupes)}", item=dupes[0])
        self._items: tuple[str, ...] = tuple(items)
        self._known = frozenset(self._items)
        self._pending: deque[str] = deque(self._items)
        self._holder: dict[str, str] = {}  # in-flight item -> host, in take order
        self._done: dict[str, str] = {}  # item -> the host that did it
        self._attempts: Counter[str] = Counter()
        self._requeued = 0
        self._ignored = 0

    @property
    def finished(self) -> bool:
        """Every item is done."""
        return len(self._done) == len(self._items)

    @property
    def pending(self) -> int:
        return len(self._pending)

    @property
    def items(self) -> tuple[str, ...]:
        return self._items

    def take(self, host: str) -> str | None:
        """The next item for ``host`` (now in flight, held by it), or ``None`` if the queue is empty."""
        if not self._pending:
            return None
        item = self._pending.popleft()
        self._holder[item] = host
        self._attempts[item] += 1
        return item

    def done(self, host: str, item: str) -> bool:
        """``host`` completed ``item``. ``False`` (ignored) unless ``host`` holds ``item`` now."""
        if not self._held_by(host, item):
            return False
        del self._holder[item]
        self._done[item] = host
        return True

    def failed(self, host: str, item: str) -> bool:
        """``host`` could not complete ``item``: it goes to the back of the queue. ``False`` if ignored."""
        if not self._held_by(host, item):
            return False
        del self._holder[item]
        self._pending.append(item)
        self._requeued += 1
        return True

    def host_failed(self, host: str) -> tuple[str, ...]:
        """``host`` failed: the items it held go to the front of the queue (in take order); returns them."""
        back = tuple(item for item, holder in self._holder.items() if holder == host)
        for item in back:
            del self._holder[item]
        self._pending.extendleft(reversed(back))
        self._requeued += len(back)
        return back

    def holder(self, item: str) -> str | None:
        """The host holding ``item`` now, if it is in flight."""
        self._check(item, None)
        return self._holder.get(item)

    def held_by(self, host: str) -> tuple[str, ...]:
        return tuple(item for item, holder in self._holder.items() if holder == host)

    def attempts(self, item: str) -> int:
        """How many times ``item`` was taken (so the engine can give up on an item that always fails)."""
        self._check(item, None)
        return self._attempts[item]

    def done_items(self) -> dict[str, str]:
        """Done items and the host that did each, in completion order."""
        return dict(self._done)

    def statistics(self) -> WorkQueueStatistics:
        return WorkQueueStatistics(
            total=len(self._items),
            pending=len(self._pending),
            in_flight=len(self._holder),
            done=len(self._done),
            requeued=self._requeued,
            ignored=self._ignored,
            done_by_host=dict(Counter(self._done.values())),
        )

    def _check(self, item: str, host: str | None) -> None:
        if item not in self._known:
            raise WorkQueueError(f"workflow item {item!r} is not in this queue", item=item, host=host)

    def _held_by(self, host: str, item: str) -> bool:
        self._check(item, host)
        if self._holder.get(item) == host:
            return True
        self._ignored += 1
        return False
