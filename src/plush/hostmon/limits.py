"""Live host limits with hysteresis: is a host over its component's ``max_load`` / ``min_free_mem``?

Load spikes for a second are normal; a host must not flap between "ok" and "over". :class:`LimitWatch`
reports ``"over"`` only after the limits were exceeded *continuously* for ``window`` seconds, and returns to
``"ok"`` only after every limit was respected continuously for ``window`` seconds. Pure: the caller passes
the current time (a monotonic clock, or a fake one in tests); no I/O, no asyncio.

Invariants: the state changes at most once per ``window`` of consistent samples; a sample that agrees with
the current state resets the pending change; an unset limit (``None``) is never exceeded.
Standard library only, Python 3.8 syntax.
"""

from __future__ import annotations

from typing import List, Optional

from plush.hostmon.sample import HostSample

__all__ = ["OK", "OVER", "LimitWatch"]

OK = "ok"
OVER = "over"


class LimitWatch:
    """Hysteresis over host samples: ``observe(sample, now) -> "ok" | "over"``."""

    def __init__(
        self,
        max_load: Optional[float] = None,
        min_free_mem: Optional[int] = None,
        window: float = 30.0,
        now: float = 0.0,
    ) -> None:
        if window < 0:
            raise ValueError("window must be >= 0")
        self.max_load = max_load
        self.min_free_mem = min_free_mem
        self.window = window
        self.state = OK
        self.since = now  # when the current state began
        self._pending: Optional[float] = None  # when samples started to disagree with the state
        self.reasons: List[str] = []  # why the last sample exceeded (empty when it did not)

    def violations(self, sample: HostSample) -> List[str]:
        """Which limits ``sample`` exceeds, as readable phrases."""
        out = []
        if self.max_load is not None and sample.load1 > self.max_load:
            out.append("load {:.2f} > max_load {}".format(sample.load1, self.max_load))
        if self.min_free_mem is not None and sample.mem_available_mb < self.min_free_mem:
            out.append("free memory {} MB < min_free_mem {} MB".format(sample.mem_available_mb, self.min_free_mem))
        return out

    def observe(self, sample: HostSample, now: float) -> str:
        """Feed one sample taken at ``now``; the (possibly new) state."""
        self.reasons = self.violations(sample)
        wanted = OVER if self.reasons else OK
        if wanted == self.state:
            self._pending = None
            return self.state
        if self._pending is None:
            self._pending = now
        if now - self._pending >= self.window:
            self.state = wanted
            self.since = now
            self._pending = None
        return self.state

    @property
    def changing_since(self) -> Optional[float]:
        """When samples began to disagree with the state (``None`` when they agree)."""
        return self._pending
