"""The commands of the host lifecycle, and how long its timers run.

Role. :class:`~plush.controller.lifecycle.HostLifecycle` answers every event with a list of these commands;
its owner (the engine, later the mesh) carries them out in order. Each names its ``host``. They are plain,
frozen values: comparing them is how tests check a transition. :class:`LifecycleTimeouts` holds the seconds
each lifecycle timer runs, validated once. Pure: no asyncio, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

__all__ = [
    "AbortRun",
    "ArmTimer",
    "AskHealer",
    "CancelTimer",
    "CloseLink",
    "Command",
    "KillLeftovers",
    "LaunchAgent",
    "LifecycleTimeouts",
    "ReportFailed",
    "SendGo",
    "SendPrepare",
    "SendReset",
    "SendStop",
    "StopAgent",
    "TimerKind",
]

TimerKind = Literal["join", "reconnect", "stop", "kill"]


class TimeoutSettings(Protocol):
    """What :meth:`LifecycleTimeouts.from_settings` reads (:class:`plush.config.Settings` has it)."""

    @property
    def join_timeout(self) -> float: ...
    @property
    def reconnect_window(self) -> float: ...
    @property
    def stop_grace(self) -> float: ...


@dataclass(frozen=True, slots=True)
class LaunchAgent:
    host: str


@dataclass(frozen=True, slots=True)
class SendPrepare:
    host: str


@dataclass(frozen=True, slots=True)
class SendGo:
    host: str
    stage: Literal["install", "execute"]


@dataclass(frozen=True, slots=True)
class SendReset:
    host: str
    reason: str


@dataclass(frozen=True, slots=True)
class SendStop:
    host: str


@dataclass(frozen=True, slots=True)
class CloseLink:
    host: str
    reason: str


@dataclass(frozen=True, slots=True)
class StopAgent:
    """End the host's agent: over its link if it is up, then the launcher terminates and reaps it."""

    host: str


@dataclass(frozen=True, slots=True)
class KillLeftovers:
    """SIGKILL the agent's process group and every process of the host in this run (the sweep)."""

    host: str


@dataclass(frozen=True, slots=True)
class ReportFailed:
    """Emit ``host.failed``; barriers stop expecting the host, its work items go back to their queues."""

    host: str
    reason: str


@dataclass(frozen=True, slots=True)
class AskHealer:
    """Ask the failure ladder; feed its step back: ``restart_requested``, ``rematched``, or nothing."""

    host: str
    reason: str
    restart: bool  # False: skip the restart rung (the host itself is bad: over its limits, failed by hand)


@dataclass(frozen=True, slots=True)
class AbortRun:
    host: str
    reason: str


@dataclass(frozen=True, slots=True)
class ArmTimer:
    host: str
    kind: TimerKind
    deadline: float


@dataclass(frozen=True, slots=True)
class CancelTimer:
    host: str
    kind: TimerKind


Command = (
    LaunchAgent
    | SendPrepare
    | SendGo
    | SendReset
    | SendStop
    | CloseLink
    | StopAgent
    | KillLeftovers
    | ReportFailed
    | AskHealer
    | AbortRun
    | ArmTimer
    | CancelTimer
)


@dataclass(frozen=True, slots=True)
class LifecycleTimeouts:
    """Seconds each timer runs: ``join`` (launch to join), ``reconnect`` (0: a broken link fails the host),
    ``stop`` (stop to stopped: ``stop_grace`` + a margin), ``kill`` (a failed agent's death before restart)."""

    join: float = 30.0
    reconnect: float = 10.0
    stop: float = 15.0
    kill: float = 5.0

    def __post_init__(self) -> None:
        for name in ("join", "stop", "kill"):
            if not getattr(self, name) > 0:
                raise ValueError(f"the {name} timeout must be positive, not {getattr(self, name)!r}")
        if not self.reconnect >= 0:
            raise ValueError(f"the reconnect window must be 0 or more, not {self.reconnect!r}")

    @classmethod
    def from_settings(
        cls, settings: TimeoutSettings, *, stop_margin: float = 10.0, kill: float = 5.0
    ) -> LifecycleTimeouts:
        return cls(settings.join_timeout, settings.reconnect_window, settings.stop_grace + stop_margin, kill)
