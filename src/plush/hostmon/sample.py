"""Host samples: load average, memory and disk of this host, read cheaply and often.

The agent samples its host every few seconds and sends :class:`HostSample` (``to_dict``) to the
controller, whose matcher and failure manager compare it with a component's ``max_load`` and
``min_free_mem`` (through :class:`plush.hostmon.limits.LimitWatch`). Sources: ``/proc/loadavg`` and
``/proc/meminfo`` on Linux, ``os.getloadavg`` and ``sysconf`` elsewhere, ``shutil.disk_usage`` for disks.

Invariants: memory and disk are whole megabytes (MiB); readers never raise for a missing source, they fall
back or report 0 (a host that cannot tell is not treated as full). Standard library only, Python 3.8.
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import asdict, dataclass
from typing import Any, Dict, Optional, Tuple

__all__ = ["HostSample", "read_disk", "read_load", "read_memory", "sample"]

_MB = 1024 * 1024
LOADAVG = "/proc/loadavg"
MEMINFO = "/proc/meminfo"


def read_load(path: str = LOADAVG) -> Tuple[float, float, float]:
    """The 1, 5 and 15 minute load averages."""
    try:
        with open(path) as f:
            fields = f.read().split()
        return float(fields[0]), float(fields[1]), float(fields[2])
    except (OSError, IndexError, ValueError):
        pass
    try:
        return os.getloadavg()
    except OSError:
        return 0.0, 0.0, 0.0


def _parse_meminfo(text: str) -> Dict[str, int]:
    """``/proc/meminfo`` as kB values by field name."""
    out: Dict[str, int] = {}
    for line in text.splitlines():
        name, _, rest = line.partition(":")
        parts = rest.split()
        if parts and parts[0].isdigit():
            out[name.strip()] = int(parts[0])
    return out


def read_memory(path: str = MEMINFO) -> Tuple[int, int]:
    """``(total_mb, available_mb)``: memory, and what new processes could use without swapping."""
    try:
        with open(path) as f:
            info = _parse_meminfo(f.read())
    except OSError:
        info = {}
    if "MemTotal" in info:
        total = info["MemTotal"]
        if "MemAvailable" in info:
            available = info["MemAvailable"]
        else:  # kernels before 3.14
            available = info.get("MemFree", 0) + info.get("Buffers", 0) + info.get("Cached", 0)
        return total // 1024, available // 1024
    try:
        page = os.sysconf("SC_PAGE_SIZE")
        total_b = os.sysconf("SC_PHYS_PAGES") * page
        avail_pages = os.sysconf("SC_AVPHYS_PAGES") if "SC_AVPHYS_PAGES" in os.sysconf_names else 0
        return total_b // _MB, avail_pages * page // _MB
    except (OSError, ValueError):
        return 0, 0


def read_disk(path: str = ".") -> Tuple[int, int]:
    """``(total_mb, free_mb)`` of the file system holding ``path`` (free to unprivileged users)."""
    try:
        usage = shutil.disk_usage(path)
    except OSError:
        return 0, 0
    return usage.total // _MB, usage.free // _MB


@dataclass(frozen=True)
class HostSample:
    """One reading of a host's load, memory and disk; ``time`` is wall-clock seconds."""

    time: float
    load1: float
    load5: float
    load15: float
    mem_total_mb: int
    mem_available_mb: int
    disk_total_mb: int
    disk_free_mb: int
    cpus: int = 1

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> HostSample:
        return cls(**data)


def sample(disk_path: str = ".", now: Optional[float] = None) -> HostSample:
    """Read everything once (about 0.1 ms on Linux)."""
    load1, load5, load15 = read_load()
    mem_total, mem_available = read_memory()
    disk_total, disk_free = read_disk(disk_path)
    return HostSample(
        time=time.time() if now is None else now,
        load1=load1,
        load5=load5,
        load15=load15,
        mem_total_mb=mem_total,
        mem_available_mb=mem_available,
        disk_total_mb=disk_total,
        disk_free_mb=disk_free,
        cpus=os.cpu_count() or 1,
    )
