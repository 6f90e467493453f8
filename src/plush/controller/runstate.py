"""The run engine's shared state: host slots, the run's outcome, and what every part of the engine may use.

Role. :class:`~plush.controller.engine.RunEngine` is assembled from one class per concern (the lifecycle in
:mod:`~plush.controller.engine`, barriers and workflows in :mod:`~plush.controller.coordination`, sessions
and reconnection in :mod:`~plush.controller.links`, failure handling in :mod:`~plush.controller.healing`,
process output and uploads in :mod:`~plush.controller.outputs`). Each of those mixins derives from
:class:`EngineState`, which *declares* (for the type checker only) the attributes that ``RunEngine.__init__``
sets and the few methods one part calls in another.

Invariants: :class:`EngineState` defines nothing at run time (its attributes are bare annotations and its
method declarations sit under ``TYPE_CHECKING``), so the method resolution order of ``RunEngine`` can never
pick a placeholder over a real method; every attribute is set by ``RunEngine.__init__``.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING

from plush.barriers.manager import BarrierManager
from plush.barriers.workqueue import WorkQueue
from plush.config import Settings
from plush.controller.events import EventBus
from plush.controller.failures import FailureLadder
from plush.controller.recovery import HostLimits
from plush.controller.rundir import RunDir
from plush.controller.sessions import SessionTable
from plush.fabric.listener import ControllerListener, Peer
from plush.files.catalog import FileCatalog
from plush.launch.base import Launcher
from plush.resources.host import Host
from plush.spec.model import Project

if TYPE_CHECKING:
    from plush.barriers.rules import BarrierEvent
    from plush.controller.outputs import _Upload
    from plush.protocol.messages import Message

__all__ = ["EngineState", "HostSlot", "OutputCallback", "RunOutcome"]

#: ``on_output(host, process_path, instance, stream, data)``
OutputCallback = Callable[[str, str, int, str, bytes], None]


@dataclass
class HostSlot:
    """The controller's view of one host of the run."""

    name: str
    component: str
    index: int
    state: str = "starting"  # starting joined prepared installing installed running finished failed stopped
    peer: Peer | None = None
    ok: bool | None = None
    blocks: dict[str, str] = field(default_factory=dict)
    joined_at: float | None = None
    #: the link broke while the agent still runs: the engine waits ``reconnect_window`` for it to resume
    disconnected: bool = False
    disconnected_at: float | None = None
    reconnect_timer: asyncio.TimerHandle | None = None
    #: the agent's process id, from its join (its launcher tells a broken link from a dead agent by it)
    agent_pid: int | None = None


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


class EngineState:
    """What the parts of the run engine share (declarations only; ``RunEngine.__init__`` sets them)."""

    project: Project
    settings: Settings
    rundir: RunDir
    bus: EventBus
    on_output: OutputCallback | None
    slots: dict[str, HostSlot]
    pool_size: dict[str, int]
    barriers: BarrierManager
    queues: dict[str, WorkQueue]
    sessions: SessionTable
    timings: dict[str, float]
    ladder: FailureLadder
    app_restarts: int
    _parked: dict[str, deque[str]]
    _logs: dict[tuple[str, str, int, str], IO[bytes]]
    _uploads: dict[tuple[str, str, str], _Upload]
    _outcome: asyncio.Future[RunOutcome] | None
    _timer: asyncio.TimerHandle | None
    _catalog: FileCatalog | None
    _listener: ControllerListener | None
    _t0: float
    _launcher: Launcher | None
    _new_host_source: Callable[[str], Host | None]
    _replaced: dict[str, int]
    _recovering: set[str]
    _recovery_tasks: set[asyncio.Task[None]]
    _limits: HostLimits
    _started: bool
    _resetting: set[str]
    _instances: dict[tuple[str, str], int]
    _refresh_timer: asyncio.TimerHandle | None
    _rejoining: set[str]
    _join_timers: list[asyncio.TimerHandle]
    _sweep_hosts: set[str]
    _sweep_pass: asyncio.Task[None] | None

    if TYPE_CHECKING:  # defined by one part, called by another (see each for its contract)

        @property
        def finished(self) -> bool: ...  # engine
        def _finish(self, outcome: RunOutcome) -> None: ...  # engine
        def _mark(self, name: str) -> None: ...  # engine
        def _declare_barriers_and_queues(self) -> None: ...  # engine
        def _maybe_release_start(self) -> None: ...  # engine
        def _go_execute(self, slots: list[HostSlot]) -> None: ...  # engine
        def _check_complete(self) -> None: ...  # engine
        def _apply_barrier_events(self, events: list[BarrierEvent]) -> None: ...  # coordination
        def _serve_parked(self, path: str) -> None: ...  # coordination
        def _send(self, host: str, msg: Message) -> None: ...  # links
        def _host_failed(self, slot: HostSlot, reason: str, *, restart: bool = True) -> None: ...  # healing
