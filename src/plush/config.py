"""Settings and their sources.

One frozen :class:`Settings`. Each value comes from the first layer that gives it, in this order:
command-line flag > ``PLUSH_<NAME>`` environment variable > user file (``$XDG_CONFIG_HOME/plush/config.toml``)
> system file (``/etc/plush/config.toml``) > default. :func:`load_settings` also returns where each value
came from, so ``plush config show`` can print it. A bad value raises :class:`ConfigError` naming its source.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from plush.errors import ConfigError

__all__ = ["NOT_GIVEN", "Settings", "load_settings", "state_dir", "system_config_path", "user_config_path"]


class _NotGiven:
    """Sentinel for 'this layer does not set the value'."""

    def __repr__(self) -> str:
        return "NOT_GIVEN"


NOT_GIVEN: Any = _NotGiven()


def _xdg(var: str, fallback: str) -> Path:
    value = os.environ.get(var)
    return Path(value) if value else Path.home() / fallback


def user_config_path() -> Path:
    return _xdg("XDG_CONFIG_HOME", ".config") / "plush" / "config.toml"


def system_config_path() -> Path:
    return Path("/etc/plush/config.toml")


def state_dir() -> Path:
    return _xdg("XDG_STATE_HOME", ".local/state") / "plush"


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    """Every tunable of Plush, with its default. Durations are seconds, sizes bytes."""

    #: where runs' results go: ``<runs_dir>/<run-id>/``
    runs_dir: str = "plush-runs"
    #: how many local sandbox hosts a run may start at most when no resource file is given
    max_local_hosts: int = 1000
    #: the controller's listening address for agents (loopback unless told otherwise)
    listen_host: str = "127.0.0.1"
    #: seconds between heartbeats from an agent
    heartbeat_interval: float = 1.0
    #: seconds of silence after which the controller pings an agent
    silence_timeout: float = 1.25
    #: seconds to wait for a pong before declaring the host failed
    ping_timeout: float = 0.5
    #: seconds an agent may take to start and join
    join_timeout: float = 30.0
    #: seconds to wait for processes to stop after SIGTERM before SIGKILL
    stop_grace: float = 5.0
    #: bytes of process output an agent buffers (on disk) while its controller is away
    output_buffer_bytes: int = 256 * 1024 * 1024
    #: seconds an agent keeps running without its controller before it stops its processes and exits
    agent_grace: float = 60.0
    #: seconds the controller waits for a host whose link broke (its agent still running) to reconnect
    reconnect_window: float = 10.0
    #: restart back-off: first delay, cap (seconds)
    restart_backoff_initial: float = 0.5
    restart_backoff_max: float = 30.0
    #: how many times the whole application may restart before it aborts
    max_application_restarts: int = 3
    #: seconds between host monitor reports
    hostmon_interval: float = 5.0
    #: how many times a failed host's agent is restarted in place before the host is replaced (rematch)
    host_restarts: int = 1
    #: consecutive host monitor samples over a component's max_load / min_free_mem that fail the host
    limit_samples: int = 3


_FIELDS = {f.name: f for f in dataclasses.fields(Settings)}


def _coerce(name: str, value: Any, source: str) -> Any:
    default: Any = _FIELDS[name].default
    kind = type(default)
    try:
        if kind is bool:
            if isinstance(value, str):
                return value.strip().lower() in ("1", "true", "yes", "on")
            return bool(value)
        if kind is int and isinstance(value, float):
            raise ValueError("not a whole number")
        return kind(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(
            f"setting {name!r} from {source}: {value!r} is not a valid {kind.__name__} ({exc})", source=source
        ) from None


def _read_toml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read settings file {path}: {exc}", source=str(path)) from None
    unknown = sorted(set(data) - set(_FIELDS))
    if unknown:
        raise ConfigError(
            f"{path}: unknown setting(s) {', '.join(unknown)}; known: {', '.join(sorted(_FIELDS))}",
            source=str(path),
        )
    return data


def load_settings(
    flags: Mapping[str, Any] | None = None,
    *,
    env: Mapping[str, str] | None = None,
    user_file: Path | None = None,
    system_file: Path | None = None,
) -> tuple[Settings, dict[str, str]]:
    """Settings from every layer, and for each value the name of the layer it came from."""
    env = os.environ if env is None else env
    layers: list[tuple[str, Mapping[str, Any]]] = [
        ("flag", {k: v for k, v in (flags or {}).items() if v is not NOT_GIVEN and v is not None}),
        ("env", {n: env[f"PLUSH_{n.upper()}"] for n in _FIELDS if f"PLUSH_{n.upper()}" in env}),
    ]
    for label, path in (
        ("user file", user_file or user_config_path()),
        ("system file", system_file or system_config_path()),
    ):
        layers.append((f"{label} {path}", _read_toml(path)))
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for name in _FIELDS:
        for label, layer in layers:
            if name in layer:
                values[name] = _coerce(name, layer[name], label)
                sources[name] = label
                break
        else:
            sources[name] = "default"
    return Settings(**values), sources
