"""The settings that travel to agents: one frozen :class:`AgentSettings`, their defaults defined once.

Role. A handful of the controller's settings are the agent's business: its heartbeat, how long it keeps
running without its controller, how it stops processes, how often it samples its host, how much output it
keeps while its controller is away. They are the fields of :class:`AgentSettings`, and nowhere else do
their defaults appear:

- the controller's :class:`plush.config.Settings` takes its defaults for these fields from
  :data:`DEFAULTS` (and adds its user-facing checks and sources); ``Settings.agent_settings()`` builds the
  :class:`AgentSettings` of a run;
- ``prepare`` carries :meth:`AgentSettings.to_dict` in its field ``settings`` (kind ``settings`` in
  :data:`plush.protocol.messages.SCHEMA`: the decoder checks it with :func:`settings_problem`);
- the agent builds its :class:`AgentSettings` with :meth:`AgentSettings.from_dict`: a setting the message
  does not carry takes the default from here, the same value the controller would have sent;
- :class:`~plush.protocol.connection.Connection` takes its liveness defaults from here too.

Invariants: an :class:`AgentSettings` holds only values of its fields' kinds (a number, never a bool; an
``int`` where the default is an ``int``), finite and not negative, strictly positive for intervals and the
ping timeout (``_POSITIVE``); an object with an unknown setting or a wrong value is refused, naming it.

Pure: standard library only, Python 3.8 syntax, no asyncio (ships to agents).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Dict, Mapping, Optional, Tuple

from plush.errors import ProtocolError

__all__ = ["DEFAULTS", "NAMES", "AgentSettings", "settings_problem"]


@dataclass(frozen=True)
class AgentSettings:
    """What an agent needs to know of the controller's settings. Durations are seconds, sizes bytes."""

    #: seconds of silence after which the agent sends a heartbeat
    heartbeat_interval: float = 1.0
    #: seconds of silence after which the controller pings an agent (0: never); the agent pings a
    #: controller it has not heard for max(10, 2 x this)
    silence_timeout: float = 1.25
    #: seconds to wait for an answer to a ping before declaring the peer dead (the agent: max(10, 2 x this))
    ping_timeout: float = 0.5
    #: seconds between SIGTERM and SIGKILL when processes are stopped (0: SIGKILL at once)
    stop_grace: float = 5.0
    #: seconds an agent keeps running without its controller before it stops its processes and exits
    agent_grace: float = 60.0
    #: seconds between host monitor samples
    hostmon_interval: float = 5.0
    #: restart back-off of a process: first delay, cap
    restart_backoff_initial: float = 0.5
    restart_backoff_max: float = 30.0
    #: bytes of process output an agent keeps while its controller is away
    output_buffer_bytes: int = 256 * 1024 * 1024

    def __post_init__(self) -> None:
        for name in NAMES:
            problem = _value_problem(name, getattr(self, name))
            if problem is not None:
                raise ValueError(problem)

    def to_dict(self) -> Dict[str, Any]:
        """The ``settings`` object of a ``prepare`` message."""
        return {name: getattr(self, name) for name in NAMES}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AgentSettings:
        """The settings a ``prepare`` carried; the default for each one it does not carry. Raises
        :class:`~plush.errors.ProtocolError` for an unknown setting or a wrong value (the decoder has
        refused such a message already)."""
        problem = settings_problem(data)
        if problem is not None:
            raise ProtocolError("prepare: " + problem)
        return cls(**{name: _KINDS[name](data[name]) for name in NAMES if name in data})


NAMES: Tuple[str, ...] = tuple(f.name for f in dataclasses.fields(AgentSettings))
_DEFAULT_VALUES: Dict[str, Any] = {f.name: f.default for f in dataclasses.fields(AgentSettings)}
_KINDS: Dict[str, Any] = {name: type(value) for name, value in _DEFAULT_VALUES.items()}
#: settings that must be strictly positive (an interval of 0 would spin; a ping timeout of 0 kills at once)
_POSITIVE = frozenset(
    {"heartbeat_interval", "ping_timeout", "hostmon_interval", "restart_backoff_initial", "restart_backoff_max"}
)


def _value_problem(name: str, value: Any) -> Optional[str]:
    kind = _KINDS[name]
    if isinstance(value, bool) or not isinstance(value, (int, float) if kind is float else int):
        return "setting {!r} must be {}, got {!r}".format(name, "a number" if kind is float else "an int", value)
    if not math.isfinite(value) or value < 0 or (value == 0 and name in _POSITIVE):
        return "setting {!r} must be {} 0, got {!r}".format(name, "over" if name in _POSITIVE else "at least", value)
    return None


def settings_problem(data: Mapping[str, Any]) -> Optional[str]:
    """What is wrong with ``data`` as the ``settings`` of a ``prepare`` (an unknown setting, a wrong value),
    or None when it is acceptable. Absent settings are fine: they take their defaults."""
    for name, value in data.items():
        if name not in _KINDS:
            return "unknown setting {!r}".format(name)
        problem = _value_problem(name, value)
        if problem is not None:
            return problem
    return None


#: the defaults, once: the controller's Settings and the agent's fallback both read them here
DEFAULTS = AgentSettings()
