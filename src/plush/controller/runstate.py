"""The run's hosts and outcome, and the narrow face the run engine shows its parts.

Role. :class:`~plush.controller.engine.RunEngine` is composed of parts that own their state (the
:class:`~plush.controller.mesh.Mesh` of agents and links, the :class:`~plush.controller.coordination.
Coordinator` of barriers and work queues, the :class:`~plush.controller.healing.Healer` of failures, the
:class:`~plush.controller.outputs.OutputSink`). What they share is the run's table of hosts
(:class:`RunHosts`: one :class:`HostSlot` per host) and what they may ask of the run (:class:`RunPort`).

A host's state is its lifecycle's (:mod:`~plush.controller.lifecycle`, kept by the mesh's
:class:`~plush.controller.hoststates.HostStates`): a slot reads it and never sets it. :class:`RunHosts`
counts its hosts per state -- a ``lost`` host as the state it resumes to -- from the moves the mesh reports
(:meth:`RunHosts.moved`), so that "has every live host installed / finished?" is O(1) per message.

Invariants: :attr:`RunHosts.counts` always holds how many of the run's hosts are in each (effective) state;
a host is *live* unless ``failed`` or ``replaced`` (a failed host being restarted is ``recovering`` or
``connecting`` again: live).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from plush.controller.lifecycle import DONE, FAILED, GONE, LOST, POOLED, REPLACED, HostLifecycle

if TYPE_CHECKING:
    from plush.config import Settings
    from plush.controller.events import EventBus
    from plush.controller.rundir import RunDir
    from plush.protocol.messages import Message
    from plush.spec.model import Project

__all__ = ["HostSlot", "OutputCallback", "RunHosts", "RunOutcome", "RunPort"]

#: ``on_output(host, process_path, instance, stream, data)``
OutputCallback = Callable[[str, str, int, str, bytes], None]

#: states in which a host of the run is no longer part of it
NOT_LIVE = (FAILED, REPLACED)


@dataclass(eq=False)
class HostSlot:
    """The run's view of one host: its component, its place in the run, and what it reported."""

    name: str
    component: str
    index: int
    ok: bool | None = None
    blocks: dict[str, str] = field(default_factory=dict)
    joined_at: float | None = None
    life: HostLifecycle | None = field(default=None, repr=False)  # the mesh's, once the host is a member
    counted: str = POOLED  # the state the run's counts hold it in

    @property
    def state(self) -> str:
        """Its lifecycle state (``pooled`` until it is a member of the mesh)."""
        return self.life.state if self.life is not None else POOLED

    @property
    def effective(self) -> str:
        """Its state for the run's counts: a ``lost`` host counts as the state it resumes to."""
        life = self.life
        if life is None:
            return POOLED
        return (life.resume_to or life.state) if life.state == LOST else life.state


@dataclass(frozen=True)
class RunOutcome:
    """How a run ended: ``ok``; otherwise ``reason`` names the root cause, with its host and block, or --
    ``stopped`` -- the run was stopped on request (its normal end for a service; not a failure)."""

    ok: bool
    reason: str = ""
    host: str | None = None
    block: str | None = None
    timings: dict[str, float] = field(default_factory=dict)
    stopped: bool = False


class RunHosts:
    """The hosts of one run by name, with a count per state (see the module docstring)."""

    def __init__(self) -> None:
        self._slots: dict[str, HostSlot] = {}
        self.counts: Counter[str] = Counter()
        self._per_component: Counter[str] = Counter()

    def add(self, name: str, component: str, life: HostLifecycle | None = None) -> HostSlot:
        index = self._per_component[component]
        self._per_component[component] += 1
        slot = self._slots[name] = HostSlot(name, component, index)
        self.counts[slot.counted] += 1
        if life is not None:
            self.bind(slot, life)
        return slot

    def bind(self, slot: HostSlot, life: HostLifecycle) -> None:
        """``slot``'s host is a member of the mesh: its state is ``life``'s from now on."""
        slot.life = life
        self.moved(slot.name)

    def moved(self, name: str) -> None:
        """The lifecycle of ``name`` moved (the mesh says so): keep the counts true."""
        slot = self._slots.get(name)
        if slot is None:
            return
        state = slot.effective
        if state != slot.counted:
            self.counts[slot.counted] -= 1
            self.counts[state] += 1
            slot.counted = state

    def get(self, name: str) -> HostSlot | None:
        return self._slots.get(name)

    def __getitem__(self, name: str) -> HostSlot:
        return self._slots[name]

    def __contains__(self, name: object) -> bool:
        return name in self._slots

    def __iter__(self) -> Iterator[str]:
        return iter(self._slots)

    def __len__(self) -> int:
        return len(self._slots)

    def values(self) -> list[HostSlot]:
        return list(self._slots.values())

    def names(self) -> list[str]:
        return list(self._slots)

    def is_live(self, slot: HostSlot) -> bool:
        return slot.counted not in NOT_LIVE

    def live(self) -> list[HostSlot]:
        """Hosts that are, or are about to be again, part of the run (failed ones being restarted count)."""
        return [s for s in self._slots.values() if self.is_live(s)]

    def live_count(self) -> int:
        """``len(live())`` in O(1)."""
        return len(self._slots) - sum(self.counts[s] for s in NOT_LIVE)

    def all_live_in(self, *states: str) -> bool:
        """Whether every live host is in one of ``states`` (and there is one), in O(1)."""
        live = self.live_count()
        return live > 0 and sum(self.counts[s] for s in states) == live

    def all_done(self) -> bool:
        """Whether every live host finished its part (``done``, or ``gone`` once done), in O(1)."""
        return self.all_live_in(DONE, GONE)

    def in_component(self, component: str) -> list[HostSlot]:
        return [s for s in self._slots.values() if s.component == component]

    def statistics(self) -> dict[str, int]:
        return {state: n for state, n in self.counts.items() if n}


class RunPort(Protocol):
    """What the parts of a run may ask of it (the run engine implements it)."""

    @property
    def project(self) -> Project: ...
    @property
    def settings(self) -> Settings: ...
    @property
    def rundir(self) -> RunDir: ...
    @property
    def bus(self) -> EventBus: ...
    @property
    def hosts(self) -> RunHosts: ...
    @property
    def finished(self) -> bool: ...

    def finish(self, outcome: RunOutcome) -> None:
        """Decide the run's end (the first decision wins)."""

    def abort_run(self, reason: str, host: str | None, block: str | None) -> None:
        """End the run as failed with ``app.aborted``."""

    def send(self, host: str, msg: Message) -> None:
        """Send ``msg`` to ``host``'s agent (kept and replayed if its link is down; see the mesh)."""

    def mark(self, name: str) -> None:
        """Note the time the run reached phase ``name`` (its first time only)."""

    def go_execute(self, slots: list[HostSlot]) -> None:
        """``go execute`` to ``slots`` (they run their component blocks)."""

    def maybe_release_start(self) -> None:
        """Release the start barrier if every live host has installed."""

    def check_complete(self) -> None:
        """End the run if every live host has finished."""
