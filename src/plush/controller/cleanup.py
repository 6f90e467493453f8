"""Clean-up after dead runs on this machine, for the front ends.

Role: the controller API's face of :mod:`plush.launch.leftovers`. A front end calls
:func:`clean_up_dead_runs` when it starts (``plush run``, ``plush report``): every run whose controller
died is found, what it left running is ended and its record removed, and one line per such run says what
was found and removed. Cheap when nothing is stale (one directory listing). Synchronous; never raises for a
run it cannot clean (that run's line is simply missing, and a log line says why).
"""

from __future__ import annotations

from plush.launch.leftovers import sweep

__all__ = ["clean_up_dead_runs"]


def clean_up_dead_runs() -> list[str]:
    """End what dead runs left on this machine; one line per dead run (what was found and removed)."""
    return [cleanup.describe() for cleanup in sweep()]
