"""The host monitor: load average, free memory, disk, and limits with hysteresis.

Standard library only, Python 3.8 syntax; no asyncio (the agent arms its own sampling timer).
"""

from __future__ import annotations

from plush.hostmon.limits import OK, OVER, LimitWatch
from plush.hostmon.sample import HostSample, read_disk, read_load, read_memory, sample

__all__ = ["OK", "OVER", "HostSample", "LimitWatch", "read_disk", "read_load", "read_memory", "sample"]
