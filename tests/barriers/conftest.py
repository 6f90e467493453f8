"""Fixtures of the barrier tests."""

from __future__ import annotations

import pytest
from barrier_clock import FakeClock


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()
