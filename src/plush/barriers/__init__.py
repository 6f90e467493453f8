"""The barrier manager: full, partial (max/threshold/timeout/adaptive) and semaphore barriers shared
by name across components, and the workflow item queue. Pure state machines driven with the current time.

- :mod:`plush.barriers.rules`: :class:`BarrierRule` (from a spec ``barrier_block``), the release
  conditions including the adaptive knee rule, the events and :class:`BarrierError`.
- :mod:`plush.barriers.gates`: the per-name state machines and their transition table.
- :mod:`plush.barriers.manager`: :class:`BarrierManager`, the run engine's entry point
  (``declare``/``arrive``/``leave``/``host_failed``/``force_release``/``get_timer``/``handle_timer``).
- :mod:`plush.barriers.workqueue`: :class:`WorkQueue`, exactly-once distribution of workflow items.

No asyncio, no I/O, no clock: every decision takes ``now``.
"""

from plush.barriers.manager import BarrierManager, BarrierSnapshot, BarrierStatistics
from plush.barriers.rules import (
    Admitted,
    BarrierError,
    BarrierEvent,
    BarrierRule,
    PassedLate,
    Released,
    ReleaseReason,
    Waiting,
)
from plush.barriers.workqueue import WorkQueue, WorkQueueError, WorkQueueStatistics

__all__ = [
    "Admitted",
    "BarrierError",
    "BarrierEvent",
    "BarrierManager",
    "BarrierRule",
    "BarrierSnapshot",
    "BarrierStatistics",
    "PassedLate",
    "ReleaseReason",
    "Released",
    "Waiting",
    "WorkQueue",
    "WorkQueueError",
    "WorkQueueStatistics",
]
