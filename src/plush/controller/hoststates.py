"""The host lifecycles at work: the asyncio adapter that feeds them events and carries out their commands.

Role. :class:`HostStates` is the only keeper of host state in the controller. It holds the pure
:class:`~plush.controller.lifecycle.Lifecycles` of the mesh's hosts (one per host, across runs); its owner
(the :class:`~plush.controller.mesh.Mesh`) and the run's parts feed it what happened -- an event from
:data:`~plush.controller.lifecycle.EVENTS` -- with :meth:`HostStates.handle`; the commands the lifecycle
returns go, in order and one batch per call, to the :class:`CommandSink` (the mesh, which passes the run's
own commands to the run attached to it). Timers are the one thing done here: the deadlines the lifecycles
return are kept by one loop timer, armed at the earliest, whose firing feeds the ``*_timeout`` events. The
timer measures how late it fired (the loop's own lateness) and hands it to the table, which forgives it once
per timeout (:data:`~plush.controller.lifecycle.LATE`); that is logged.

Facts reported by agents go through :meth:`HostStates.offer`: a report the host's state does not expect (a
second ``installed``, a report that crossed a failure) is logged and dropped, never a crash of the run.
Requests of the controller go through :meth:`HostStates.handle`, which raises
:class:`~plush.controller.lifecycle.LifecycleError` for a request its state refuses: that is a bug here.

Invariants: a host's state changes nowhere else; at most one loop timer is armed, at the earliest deadline
of the table (a stale one is harmless: the lifecycle ignores a timeout that is not due); no timer after
:meth:`HostStates.close`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol

from plush.controller.lifecycle import LOST, HostLifecycle, Lifecycles
from plush.controller.lifecycle_commands import ArmTimer, CancelTimer, Command, LifecycleTimeouts, TimerKind

__all__ = ["CommandSink", "HostStates"]

log = logging.getLogger(__name__)

_LATE_NOTICE_EVERY = 60.0  # seconds between info lines that the loop was late for host timeouts


class CommandSink(Protocol):
    """Who carries out the lifecycles' commands (timers aside)."""

    def carry_out(self, commands: Sequence[Command]) -> None: ...


class HostStates:
    """The mesh's host lifecycles, driven (see the module docstring)."""

    def __init__(
        self, timeouts: LifecycleTimeouts, sink: CommandSink, on_move: Callable[[str, str, str], None]
    ) -> None:
        self.table = Lifecycles(timeouts, on_move=on_move)
        self._sink = sink
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._armed_on = 0.0  # when the loop timer was armed
        self._said_late: float | None = None
        self._closed = False

    # --- reading --------------------------------------------------------------------------------------------

    def get(self, name: str) -> HostLifecycle | None:
        return self.table.get(name)

    def state(self, name: str) -> str | None:
        """``name``'s lifecycle state (None: not a host of the mesh)."""
        life = self.table.get(name)
        return life.state if life is not None else None

    def effective(self, name: str) -> str | None:
        """The state a host counts as in its run: a ``lost`` host (its link broke, its agent may resume) as
        the state it was in when its link broke."""
        life = self.get(name)
        if life is None:
            return None
        return (life.resume_to or life.state) if life.state == LOST else life.state

    def __contains__(self, name: object) -> bool:
        return name in self.table

    # --- feeding --------------------------------------------------------------------------------------------

    def add(self, name: str) -> HostLifecycle:
        """A new lifecycle for ``name`` (``pooled``); a gone one starts anew."""
        return self.table.add(name, time.monotonic())

    def handle(self, name: str, event: str, *, now: float | None = None, **details: Any) -> None:
        """Feed a request (or a fact the caller knows the state takes) and carry out its commands."""
        commands = self.table.handle(name, event, time.monotonic() if now is None else now, **details)
        self._after(commands)

    def offer(self, name: str, event: str, **details: Any) -> bool:
        """Feed a fact if ``name``'s state takes it (True); else log and drop it (False)."""
        life = self.get(name)
        if life is None or not life.accepts(event):
            log.info("%s: %s ignored in state %s", name, event, life.state if life is not None else "unknown")
            return False
        self.handle(name, event, **details)
        return True

    def handle_many(self, items: Iterable[tuple[str, str, dict[str, Any]]]) -> None:
        """Feed several events (one per host, as :meth:`offer`), their commands carried out as one batch (agents
        launched together, failures reported together)."""
        now = time.monotonic()
        commands: list[Command] = []
        for name, event, details in items:
            life = self.get(name)
            if life is not None and life.accepts(event):
                commands += self.table.handle(name, event, now, **details)
        self._after(commands)

    def postpone(self, name: str, kind: TimerKind, deadline: float) -> None:
        """Move ``name``'s armed timer ``kind`` to a later ``deadline`` (no-op when it is not armed)."""
        if name in self.table:
            self._after(self.table.postpone(name, kind, deadline))

    # --- commands and timers ---------------------------------------------------------------------------------

    def _after(self, commands: list[Command]) -> None:
        rest = [c for c in commands if not isinstance(c, (ArmTimer, CancelTimer))]
        armed = [c.deadline for c in commands if isinstance(c, ArmTimer)]
        if armed and (self._timer_at is None or min(armed) < self._timer_at):
            self._arm()
        if rest:
            self._sink.carry_out(rest)

    def _arm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = self._timer_at = None
        deadline = self.table.next_deadline()
        if deadline is None or self._closed:
            return
        self._timer_at, self._armed_on = deadline, time.monotonic()
        self._timer = asyncio.get_running_loop().call_later(max(0.0, deadline - time.monotonic()), self._fire)

    def _fire(self) -> None:
        now, due = time.monotonic(), max(self._timer_at or 0.0, self._armed_on)
        self._timer = self._timer_at = None
        late = max(0.0, now - due)  # the loop's own lateness (not a deadline already past when armed)
        commands = self.table.handle_timers(now, late)
        if self.table.postponed:
            self._was_late(late, self.table.postponed)
        self._arm()
        rest = [c for c in commands if not isinstance(c, (ArmTimer, CancelTimer))]
        if rest:
            self._sink.carry_out(rest)

    def _was_late(self, late: float, postponed: int) -> None:
        """Say (info at most once a minute, debug otherwise) that timeouts moved on because the loop was late."""
        level = logging.DEBUG
        if self._said_late is None or time.monotonic() - self._said_late > _LATE_NOTICE_EVERY:
            self._said_late, level = time.monotonic(), logging.INFO
        log.log(
            level,
            "the controller was %.2fs late for %d host timeout(s): each moved on by its lateness, once "
            "(a loaded machine or a blocked event loop)",
            late,
            postponed,
        )

    def close(self) -> None:
        """No timer fires any more."""
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = self._timer_at = None

    def statistics(self) -> dict[str, Any]:
        return self.table.statistics()
