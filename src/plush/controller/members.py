"""What the mesh is made of and talks to: its members, the run attached to it, the idle default.

Role: the vocabulary of :mod:`plush.controller.mesh`. A :class:`Member` is one host of the mesh (its
:class:`~plush.resources.host.Host`, its state, what its agent said when it joined, its latest host monitor
sample, and the waiter of a ``connect`` in progress); :class:`MeshClient` is what the mesh asks of, and
tells, the run attached to it; :class:`NoRun` stands in for the run while none is attached. Pure data and
protocols: no I/O.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any, Protocol

from plush.controller.links import LinkClient
from plush.protocol.messages import Message
from plush.resources.host import Host

__all__ = ["MEMBER_STATES", "Member", "MeshClient", "NoRun"]

#: member states: ``connecting`` (agent started, not joined), ``joined`` (connected: idle or in a run),
#: ``failed`` (its agent did not join, exited, or the run failed it), ``gone`` (disconnected)
MEMBER_STATES = ("connecting", "joined", "failed", "gone")


class MeshClient(LinkClient, Protocol):
    """What the mesh tells, and asks of, the run attached to it."""

    @property
    def run_id(self) -> str: ...

    def host_component(self, name: str) -> str | None:
        """The component the run gave ``name`` (None: not a host of the run)."""

    def joined(self, name: str) -> None:
        """A fresh agent of ``name`` (a host of the run) joined and was welcomed: prepare it."""

    def message(self, name: str, msg: Message) -> None:
        """A message from ``name``'s agent, after reliable delivery."""

    def late(self, name: str, msg: Message) -> None:
        """A report (``mesh.LATE_KEPT``) that arrived after the run's end was decided."""

    def agent_exited(self, name: str, code: int) -> None:
        """The current agent process of ``name`` exited with ``code`` (negative: the signal)."""

    def join_expired(self, names: list[str]) -> None:
        """The agents of ``names`` did not join within ``join_timeout`` of their start."""

    def handling_failed(self, exc: Exception, host: str | None) -> None:
        """Handling a message from ``host`` raised ``exc`` (an OSError: a file could not be written)."""

    def task_failed(self, exc: BaseException) -> None:
        """A task of the mesh (an agent watch, a sweep) raised ``exc``."""


class NoRun:
    """The links' client while no run is attached: no host is in a run."""

    finished = True
    run_id = ""

    def host_state(self, name: str) -> str | None:
        return None

    def link_ended(self, name: str) -> None:
        pass

    def link_failed(self, name: str, reason: str) -> None:
        pass


@dataclass(eq=False)
class Member:
    """One host of the mesh."""

    host: Host
    state: str = "connecting"  # one of MEMBER_STATES
    reason: str = ""
    workdir: str | None = None  # the agent's working directory, from its join
    joined_at: float | None = None
    sample: dict[str, Any] | None = None  # the latest host monitor sample
    waiter: asyncio.Future[str | None] | None = field(default=None, repr=False)  # connect(): None or why not

    def settle(self, why: str | None) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(why)
