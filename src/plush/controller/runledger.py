"""What the run in progress (or the last one) did to its hosts and work queues, folded from its events: each failed
host's reason, the replacements (who took whose place), the hosts dropped and restarted, and each work queue's
items done, failed and in flight (``Controller.states()``, ``GET /v1/application/states``).

Role: the part of the web UI's snapshot that no table of the run engine keeps in this shape. The Controller
adds a :class:`RunLedger` as a sink of its event bus, so it sees every event, in order, as it is published
(after the bus's history took it): read on the event loop, it holds exactly the events up to the latest
journaled one, the ``event`` of the snapshot. The web UI's store (js/store.js) applies the same rules to the
events after the snapshot, so a page opened at any time ends where a page open since the start is.

The rules (one per event): ``run.started`` empties it; ``host.failed`` keeps the host's reason (its latest) and
takes back the work items it held (the work queue puts them back, :meth:`plush.barriers.WorkQueue.host_failed`);
``host.rematched`` adds a replacement; ``host.dropped`` keeps its reason; ``host.restarted`` counts and brings
the host back in place (it is no longer failed nor dropped: its failure and drop are forgotten); a
``work.taken`` item is in flight on its host until an accepted ``work.done`` (done) or ``work.failed`` (a
failed attempt; the item goes back to the queue); a report not accepted changes nothing (the queue ignored
it); ``app.restarted`` empties the work queues (the application starts over with fresh ones). Items are keyed
by their JSON text, as the store keys them. Pure: no I/O.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

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

if TYPE_CHECKING:
    from plush.controller.events import Event

__all__ = ["RunLedger"]


class _Queue:
    __slots__ = ("done", "failed", "in_flight")

    def __init__(self) -> None:
        self.done = 0
        self.failed = 0
        self.in_flight: dict[str, tuple[Any, str]] = {}  # item's JSON -> (item, host), in take order


class RunLedger:
    """The run's failures, replacements and work queues, folded from its events (a bus sink: call it with each)."""

    def __init__(self) -> None:
        self.failures: dict[str, str] = {}
        self.replaced: list[dict[str, str]] = []
        self.dropped: dict[str, str] = {}
        self.restarts: dict[str, int] = {}
        self.work: dict[str, _Queue] = {}

    def __call__(self, event: Event) -> None:
        name, host, data = event.name, event.host, event.data or {}
        if name == RUN_STARTED:
            for table in (self.failures, self.replaced, self.dropped, self.restarts, self.work):
                table.clear()
        elif name == APP_RESTARTED:
            self.work.clear()
        elif host is None:
            return
        elif name == HOST_FAILED:
            self.failures[host] = str(data.get("reason", ""))
            for queue in self.work.values():
                queue.in_flight = {k: v for k, v in queue.in_flight.items() if v[1] != host}
        elif name == HOST_REMATCHED:
            self.replaced.append(
                {
                    "host": host,
                    "replacement": str(data.get("replacement", "")),
                    "component": str(data.get("component", "")),
                    "reason": str(data.get("reason", "")),
                }
            )
        elif name == HOST_DROPPED:
            self.dropped[host] = str(data.get("reason", ""))
        elif name == HOST_RESTARTED:
            self.restarts[host] = self.restarts.get(host, 0) + 1
            self.failures.pop(host, None)  # back in place: no longer failed (nor dropped)
            self.dropped.pop(host, None)
        elif name in (WORK_TAKEN, WORK_DONE, WORK_FAILED) and event.block is not None:
            queue = self.work.setdefault(event.block, _Queue())
            item = data.get("item")
            key = json.dumps(item, separators=(",", ":"))
            if name == WORK_TAKEN:
                queue.in_flight[key] = (item, host)
            elif data.get("accepted", True) is not False:
                queue.in_flight.pop(key, None)
                if name == WORK_DONE:
                    queue.done += 1
                else:
                    queue.failed += 1

    def to_dict(self) -> dict[str, Any]:
        """``replaced``: [{host, replacement, component, reason}] in order; ``failures``, ``dropped``: host ->
        reason; ``restarts``: host -> count; ``work``: block path -> {done, failed (attempts), in_flight:
        [{item, host}]}."""
        return {
            "replaced": [dict(r) for r in self.replaced],
            "failures": dict(self.failures),
            "dropped": dict(self.dropped),
            "restarts": dict(self.restarts),
            "work": {
                path: {
                    "done": q.done,
                    "failed": q.failed,
                    "in_flight": [{"item": item, "host": host} for item, host in q.in_flight.values()],
                }
                for path, q in self.work.items()
            },
        }
