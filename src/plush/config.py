"""Settings and their sources.

One frozen :class:`Settings`. Each value comes from the first layer that gives it, in this order:
command-line flag > ``PLUSH_<NAME>`` environment variable > user file (``$XDG_CONFIG_HOME/plush/config.toml``)
> system file (``/etc/plush/config.toml``) > default. :func:`load_settings` also returns where each value
came from, so ``plush config show`` can print it.

Every setting declares the values it accepts next to its default (:class:`Check`: bounds, finiteness, text
rules, choices). Invariants: a :class:`Settings` never holds a value its check refuses (NaN, infinities,
negative durations, a bool for a number, ...), however it was made; a refused value raises one
:class:`~plush.errors.ConfigError` whose one-line message names the setting and its source (the flag, the
``PLUSH_*`` variable, the file's path, or ``default``). The settings that travel to agents take their
defaults from :data:`plush.protocol.agentsettings.DEFAULTS` (defined once, for both sides), and
:meth:`Settings.agent_settings` is what ``prepare`` carries to them. Numbers from text (flags, environment) are parsed;
values in a TOML file must have the setting's type. A ``PLUSH_*`` variable that is neither a setting nor one
that Plush itself sets for processes is reported as a warning with the closest setting's name.

Size: about 420 lines, kept whole: the settings table with its checks, and the layered loader that reports
sources.
"""

from __future__ import annotations

import dataclasses
import difflib
import logging
import math
import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from plush.errors import ConfigError
from plush.protocol.agentsettings import DEFAULTS as AGENT
from plush.protocol.agentsettings import NAMES as AGENT_SETTINGS
from plush.protocol.agentsettings import AgentSettings

__all__ = [
    "NOT_GIVEN",
    "Check",
    "Settings",
    "check_setting",
    "env_warnings",
    "is_plush_variable",
    "load_settings",
    "state_dir",
    "system_config_path",
    "user_config_path",
]

log = logging.getLogger(__name__)
T = TypeVar("T")


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


def _number(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(x)


@dataclass(frozen=True)
class Check:
    """The values one setting accepts. Numbers lie within ``min``..``max`` (``min_open``: strictly above
    ``min``) and floats are finite; ``text`` asks for a non-empty string without NUL, matching ``pattern``
    (described by ``what``) when given; ``choices`` lists the only values allowed."""

    min: float | None = None
    max: float | None = None
    min_open: bool = False
    text: bool = False
    pattern: str | None = None
    what: str = ""
    choices: tuple[Any, ...] = ()
    unit: str = ""

    def expected(self, kind: type) -> str:
        """What the setting accepts, in words: ``a finite number > 0 and <= 31536000 (seconds)``."""
        if self.choices:
            return "one of " + ", ".join(str(c) for c in self.choices)
        if kind is bool:
            return "true or false"
        if kind is str:
            return self.what or "non-empty text"
        words = "a whole number" if kind is int else "a finite number"
        bounds = []
        if self.min is not None:
            bounds.append(("> " if self.min_open else ">= ") + _number(self.min))
        if self.max is not None:
            bounds.append("<= " + _number(self.max))
        text = words + (" " + " and ".join(bounds) if bounds else "")
        return text + (f" ({self.unit})" if self.unit else "")

    def accepts(self, value: Any) -> bool:
        if self.choices and value not in self.choices:
            return False
        if isinstance(value, str):
            ok = not self.text or (value != "" and "\0" not in value)
            return ok and (self.pattern is None or re.fullmatch(self.pattern, value) is not None)
        if isinstance(value, bool):
            return True
        if isinstance(value, float) and not math.isfinite(value):
            return False
        if self.min is not None and (value <= self.min if self.min_open else value < self.min):
            return False
        return self.max is None or value <= self.max


_YEAR = 365 * 86400
#: a duration that must be positive (an interval, a timeout) / that may be 0 (off, or at once)
POSITIVE_SECONDS = Check(min=0, min_open=True, max=_YEAR, unit="seconds")
SECONDS = Check(min=0, max=_YEAR, unit="seconds")


def setting(default: T, check: Check, *, kind: type | None = None) -> T:
    """A field of :class:`Settings`: its default and the values it accepts. ``kind``: the type of an
    optional setting whose default is None (not set: empty text in a flag or variable, absent from a file)."""
    return dataclasses.field(default=default, metadata={"check": check, "kind": kind})


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    """Every tunable of Plush, with its default and the values it accepts. Durations are seconds, sizes bytes."""

    #: where runs' results go: ``<runs_dir>/<run-id>/``
    runs_dir: str = setting("plush-runs", Check(text=True, what="a non-empty path"))
    #: who may read a run's results: ``private`` (directories 0700, files 0600) or ``shared`` (0755 / 0644)
    results_mode: str = setting("private", Check(choices=("private", "shared")))
    #: how many local sandbox hosts a run may start at most when no resource file is given
    max_local_hosts: int = setting(1000, Check(min=1, max=100_000))
    #: the controller's listening address for agents (loopback unless told otherwise)
    listen_host: str = setting(
        "127.0.0.1", Check(text=True, pattern=r"[A-Za-z0-9._:%-]+", what="a host name or an IP address")
    )
    #: seconds between heartbeats from an agent
    heartbeat_interval: float = setting(AGENT.heartbeat_interval, POSITIVE_SECONDS)
    #: seconds of silence after which the controller pings an agent (0: never)
    silence_timeout: float = setting(AGENT.silence_timeout, SECONDS)
    #: seconds to wait for a pong before declaring the host failed
    ping_timeout: float = setting(AGENT.ping_timeout, POSITIVE_SECONDS)
    #: seconds an agent may take to start and join
    join_timeout: float = setting(30.0, POSITIVE_SECONDS)
    #: seconds to wait for processes to stop after SIGTERM before SIGKILL (0: SIGKILL at once)
    stop_grace: float = setting(AGENT.stop_grace, SECONDS)
    #: bytes of process output an agent buffers (on disk) while its controller is away
    output_buffer_bytes: int = setting(AGENT.output_buffer_bytes, Check(min=0, max=2**50))
    #: seconds an agent keeps running without its controller before it stops its processes and exits
    agent_grace: float = setting(AGENT.agent_grace, SECONDS)
    #: seconds the controller waits for a host whose link broke (its agent still running) to reconnect (0: none)
    reconnect_window: float = setting(10.0, SECONDS)
    #: restart back-off: first delay, cap (seconds)
    restart_backoff_initial: float = setting(AGENT.restart_backoff_initial, POSITIVE_SECONDS)
    restart_backoff_max: float = setting(AGENT.restart_backoff_max, POSITIVE_SECONDS)
    #: how many times the whole application may restart before it aborts
    max_application_restarts: int = setting(3, Check(min=0, max=1_000_000))
    #: seconds between host monitor reports
    hostmon_interval: float = setting(AGENT.hostmon_interval, POSITIVE_SECONDS)
    #: how many times a failed host's agent is restarted in place before the host is replaced (rematch)
    host_restarts: int = setting(1, Check(min=0, max=1_000_000))
    #: consecutive host monitor samples over a component's max_load / min_free_mem that fail the host
    limit_samples: int = setting(3, Check(min=1, max=1_000_000))
    #: seconds a new agent connection has, from its TCP accept, to complete TLS and send a valid join
    handshake_timeout: float = setting(5.0, POSITIVE_SECONDS)
    #: unauthenticated connections the controller holds at most; beyond, the oldest are dropped
    preauth_limit: int = setting(512, Check(min=1, max=1_000_000))
    #: unauthenticated connections held at most from one source address; beyond, its oldest is dropped
    preauth_per_source: int = setting(128, Check(min=1, max=1_000_000))
    #: the pool file runs and plans take their hosts from (``-d``); empty: the local sandbox
    pool: str = setting("", Check(pattern=r"[^\x00\n]*", what="a pool file's path (empty: the local sandbox)"))
    #: a discovery command whose JSON host list fills the pool too (``--discover``; split as a shell would,
    #: run without one); empty: none
    discover: str = setting("", Check(pattern=r"[^\x00\n]*", what="a command line (empty: none)"))
    #: the seed of the shuffle of the pool before matching (``--seed``); None: pool order
    seed: int | None = setting(None, Check(), kind=int)
    #: the OpenSSH client config file SSH hosts are reached by (Host, HostName, User, Port, IdentityFile,
    #: ProxyJump, UserKnownHostsFile, ...); empty: none
    ssh_config: str = setting("~/.ssh/config", Check(pattern=r"[^\x00\n]*", what="a file's path (empty: none)"))
    #: how an SSH host's key is checked against known_hosts: ``accept-new`` (a host never seen is added, a
    #: changed key is refused), ``strict`` (only keys already known), ``off`` (no check: anyone on the path can
    #: pose as the host)
    ssh_known_hosts: str = setting("accept-new", Check(choices=("accept-new", "strict", "off")))
    #: seconds an SSH connection may take, DNS, TCP, jump hosts and handshake included
    ssh_connect_timeout: float = setting(15.0, POSITIVE_SECONDS)
    #: SSH handshakes in flight at most per sshd address (and per jump host): below sshd's MaxStartups
    ssh_handshakes: int = setting(10, Check(min=1, max=10_000))
    #: how an SSH host's agent is linked: ``channel`` (the protocol on its SSH session's stdin/stdout: no port
    #: on either side) or ``tcp`` (TCP+TLS through an SSH remote port forward)
    ssh_link: str = setting("channel", Check(choices=("channel", "tcp")))
    #: children per parent when a copy's hosts fetch from each other (hosts of one peer network: a ``plush
    #: cluster``, or the ``peer_network`` host property); 0: the controller sends the file to every host
    relay_fanout: int = setting(4, Check(min=0, max=1000))

    def agent_settings(self) -> AgentSettings:
        """The settings agents get in ``prepare`` (their fields of these settings)."""
        return AgentSettings(**{name: getattr(self, name) for name in AGENT_SETTINGS})

    def __post_init__(self) -> None:
        for name in _FIELD_NAMES:
            expected = check_setting(name, getattr(self, name))
            if expected is not None:
                value = _show(getattr(self, name))
                raise ConfigError(
                    f"setting {name!r}: {value} is not valid: expected {expected}", source="argument", setting=name
                )


_FIELDS = {f.name: f for f in dataclasses.fields(Settings)}
_FIELD_NAMES = tuple(_FIELDS)
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")

#: variables Plush sets for the processes it starts (and the agent's cache directory): not settings, not typos
PROCESS_VARIABLES = frozenset(
    {
        "PLUSH_ADDR",
        "PLUSH_AGENT_TAG",
        "PLUSH_BLOCK",
        "PLUSH_CACHE_DIR",
        "PLUSH_COMPONENT",
        "PLUSH_HOST",
        "PLUSH_HOST_INDEX",
        "PLUSH_INSTANCE",
        "PLUSH_INSTANCE_TAG",
        "PLUSH_RUN_DIR",
        "PLUSH_RUN_ID",
        "PLUSH_SANDBOX_RUN",
        "PLUSH_SSH_RUN",
        "PLUSH_VIP",
        "PLUSH_VN",
        "PLUSH_WORKDIR",
    }
)
#: ``PLUSH_HOSTS_<COMPONENT>``, one per component of a spec; ``PLUSH_PROP_<NAME>``, one per host property
PROCESS_VARIABLE_PREFIXES = ("PLUSH_HOSTS_", "PLUSH_PROP_")


def env_name(name: str) -> str:
    return "PLUSH_" + name.upper()


def is_plush_variable(var: str) -> bool:
    """True for a variable that Plush sets for processes (``PLUSH_HOST``, ``PLUSH_HOSTS_<C>``, ...)."""
    return var in PROCESS_VARIABLES or var.startswith(PROCESS_VARIABLE_PREFIXES)


def _kind(name: str) -> type[Any]:
    kind: type[Any] | None = _FIELDS[name].metadata.get("kind")
    default: Any = _FIELDS[name].default
    return kind if kind is not None else type(default)


def _optional(name: str) -> bool:
    """Whether setting ``name`` may be None (not set)."""
    return _FIELDS[name].metadata.get("kind") is not None


def _check(name: str) -> Check:
    check: Check = _FIELDS[name].metadata.get("check", Check(min=0))
    return check


def check_setting(name: str, value: Any) -> str | None:
    """None when ``value`` is acceptable for setting ``name``; otherwise what the setting expects."""
    kind, check = _kind(name), _check(name)
    if value is None and _optional(name):
        return None
    right_type = (
        isinstance(value, kind)
        if kind in (bool, str)
        else isinstance(value, (int, float) if kind is float else int) and not isinstance(value, bool)
    )
    return None if right_type and check.accepts(value) else _expected(name)


def _expected(name: str) -> str:
    """What setting ``name`` accepts, in words (``or empty`` for an optional one)."""
    text = _check(name).expected(_kind(name))
    return text + " or empty (not set)" if _optional(name) else text


def _show(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _parse(kind: type, value: Any, *, from_text: bool) -> Any:
    """``value`` as ``kind``; text is parsed only when ``from_text``. Raises ValueError when it is not one."""
    if kind is str and isinstance(value, os.PathLike):
        value = os.fspath(value)
    if isinstance(value, str) and kind is not str:
        if not from_text:
            raise ValueError
        text = value.strip().lower()
        if kind is bool:
            if text in _TRUE or text in _FALSE:
                return text in _TRUE
            raise ValueError
        return int(text) if kind is int else float(text)
    if kind is bool or kind is str:
        if isinstance(value, kind):
            return value
        raise ValueError
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (kind is int and isinstance(value, float)):
        raise ValueError
    return kind(value)


def _coerce(name: str, value: Any, source: str, *, from_text: bool) -> Any:
    kind = _kind(name)
    if _optional(name) and from_text and isinstance(value, str) and not value.strip():
        return None
    try:
        parsed = _parse(kind, value, from_text=from_text)
    except (ValueError, OverflowError):
        parsed = NOT_GIVEN
    if parsed is NOT_GIVEN or check_setting(name, parsed) is not None:
        raise ConfigError(
            f"setting {name!r} from {source}: {_show(value)} is not valid: expected {_expected(name)}",
            source=source,
            setting=name,
        )
    return parsed


def _closest(word: str, names: list[str]) -> str | None:
    found = difflib.get_close_matches(word, names, n=1, cutoff=0.6)
    return found[0] if found else None


def _read_toml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read settings file {path}: {exc}", source=str(path)) from None
    unknown = sorted(set(data) - set(_FIELDS))
    if unknown:
        near = _closest(unknown[0], list(_FIELDS))
        hint = f"did you mean {near!r}?" if near else "known: " + ", ".join(sorted(_FIELDS))
        raise ConfigError(f"{path}: unknown setting(s) {', '.join(unknown)}; {hint}", source=str(path))
    return data


def env_warnings(env: Mapping[str, str]) -> list[str]:
    """One warning per ``PLUSH_*`` variable in ``env`` that Plush does not know, with the closest setting."""
    settings = {env_name(n) for n in _FIELDS}
    warnings = []
    for var in sorted(v for v in env if v.startswith("PLUSH_")):
        if var in settings or is_plush_variable(var):
            continue
        near = _closest(var[len("PLUSH_") :].lower(), list(_FIELDS))
        hint = f"did you mean {env_name(near)}?" if near else "`plush config show` lists them"
        warnings.append(f"{var} is not a Plush setting (ignored); {hint}")
    return warnings


def _constant(text: str) -> Callable[[str], str]:
    return lambda _name: text


def load_settings(
    flags: Mapping[str, Any] | None = None,
    *,
    env: Mapping[str, str] | None = None,
    user_file: Path | None = None,
    system_file: Path | None = None,
    warn: Callable[[str], None] | None = None,
) -> tuple[Settings, dict[str, str]]:
    """Settings from every layer, and for each value the layer it came from (``flag --runs-dir``,
    ``env PLUSH_STOP_GRACE``, ``user file PATH``, ``system file PATH``, ``default``). Unknown ``PLUSH_*``
    variables go to ``warn`` (default: this module's logger). Raises ConfigError for a refused value."""
    env = os.environ if env is None else env
    for message in env_warnings(env):
        (warn or log.warning)(message)
    given = {k: v for k, v in (flags or {}).items() if v is not NOT_GIVEN and v is not None}
    # (layer label of each value, values, whether values are text to parse)
    layers: list[tuple[Callable[[str], str], Mapping[str, Any], bool]] = [
        (lambda n: "flag --" + n.replace("_", "-"), given, True),
        (lambda n: "env " + env_name(n), {n: env[env_name(n)] for n in _FIELDS if env_name(n) in env}, True),
    ]
    for label, path in (
        ("user file", user_file or user_config_path()),
        ("system file", system_file or system_config_path()),
    ):
        layers.append((_constant(f"{label} {path}"), _read_toml(path), False))
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for name in _FIELDS:
        for label_of, layer, from_text in layers:
            if name in layer:
                sources[name] = label_of(name)
                values[name] = _coerce(name, layer[name], sources[name], from_text=from_text)
                break
        else:
            sources[name] = "default"
    return Settings(**values), sources
