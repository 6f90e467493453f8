"""FakeClock for the barrier tests: the shared one (tests/fake_clock.py)."""

from __future__ import annotations

from fake_clock import FakeClock

__all__ = ["FakeClock"]
