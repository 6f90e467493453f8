"""What the mesh is made of and talks to: its members, the run attached to it, the idle default.

Role: the vocabulary of :mod:`plush.controller.mesh`. A :class:`Member` is one host of the mesh (its
:class:`~plush.resources.host.Host`, its lifecycle -- whose state is the member's state --, what its agent
said when it joined, its latest host monitor sample, and the waiter of a ``connect`` in progress);
:class:`MeshClient` is what the mesh asks of, and tells, the run attached to it. Pure data and protocols: no
I/O.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from plush.controller.lifecycle import HostLifecycle
from plush.controller.lifecycle_commands import Command
from plush.protocol.messages import Message
from plush.resources.host import Host

__all__ = ["Member", "MeshClient"]


class MeshClient(Protocol):
    """What the mesh tells, and asks of, the run attached to it."""

    @property
    def run_id(self) -> str: ...

    @property
    def finished(self) -> bool: ...

    def has(self, name: str) -> bool:
        """Whether ``name`` is a host of the run."""

    def host_moved(self, name: str, old: str, new: str) -> None:
        """The lifecycle of ``name`` (a host of the mesh, maybe of the run) moved from ``old`` to ``new``."""

    def carry_out(self, commands: Sequence[Command]) -> None:
        """The run's commands of a lifecycle batch (prepare, go, reset, report, ask the healer, abort)."""

    def message(self, name: str, msg: Message) -> None:
        """A message from ``name``'s agent, after reliable delivery."""

    def late(self, name: str, msg: Message) -> None:
        """A report (``mesh.LATE_KEPT``) that arrived after the run's end was decided."""

    def handling_failed(self, exc: Exception, host: str | None) -> None:
        """Handling a message from ``host`` raised ``exc`` (an OSError: a file could not be written)."""

    def task_failed(self, exc: BaseException) -> None:
        """A task of the mesh (an agent watch, a sweep) raised ``exc``."""


@dataclass(eq=False)
class Member:
    """One host of the mesh; its state is its lifecycle's."""

    host: Host
    life: HostLifecycle = field(repr=False)
    workdir: str | None = None  # the agent's working directory, from its join
    joined_at: float | None = None
    sample: dict[str, Any] | None = None  # the latest host monitor sample
    waiter: asyncio.Future[str | None] | None = field(default=None, repr=False)  # connect(): None or why not

    @property
    def state(self) -> str:
        return self.life.state

    @property
    def reason(self) -> str:
        """Why the host last failed, was lost or left."""
        return self.life.reason

    def settle(self, why: str | None) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(why)
