"""Processes on a host: exit policies (pure), the process runner (sessions, whole-tree kill, output
streaming with backpressure) and the liveness monitor. Standard library only, Python 3.8 syntax.

- :mod:`plush.processes.policy` -- :class:`ExitStatus`, :func:`decide`, :class:`Backoff` (pure, no asyncio)
- :mod:`plush.processes.tree` -- ``/proc`` walks: :func:`kill_tree`, :func:`descendants`, subreaper
- :mod:`plush.processes.runner` -- :func:`start_process`, :class:`RunningProcess`, :class:`ProcessRunner`
- :mod:`plush.processes.liveness` -- :func:`watch_liveness`

This package imports only the pure policy eagerly; import the asyncio modules by their names.
"""

from __future__ import annotations

from plush.processes.policy import Backoff, Decision, ExitStatus, decide

__all__ = ["Backoff", "Decision", "ExitStatus", "decide"]
