"""The one error tree of Plush.

Every error Plush raises on purpose derives from :class:`PlushError`. Errors carry fields (the file, line,
block path, host, exit status, ...) so that front ends can render them, and a message that says what
happened, where, and what to do next. The CLI turns each into one line and an exit code.

    PlushError
    ├── ConfigError              a setting has a bad value or a settings file is malformed
    ├── SpecError                a spec was rejected; ``.problems`` lists every problem found in the file
    ├── ResourceError            the pool cannot satisfy the application
    │   ├── MatchError           a component's requirements cannot be met (names the component, numbers)
    │   └── HostUnreachable      a host could not be reached or bootstrapped (``.host``, ``.reason``)
    ├── ProtocolError            a peer broke the wire protocol (``.peer``)
    │   └── AuthenticationError  a peer did not authenticate; nothing it sent was acted on
    ├── LaunchError              an agent could not be started (``.host``, ``.stderr_tail``)
    ├── RunError                 the run itself failed
    │   ├── ApplicationAborted   the application aborted (``.reason``, ``.host``, ``.block``, ``.exit_status``)
    │   └── StorageError         the run directory could not be written: disk full, read-only (``.path``)
    │
    │   defined beside the code that raises them:
    ├── barriers.BarrierError    an illegal barrier transition (``.event``, ``.barrier``, ``.host``, ``.state``)
    ├── barriers.WorkQueueError  a workflow item unknown or reported twice (``.item``, ``.host``)
    ├── controller.LifecycleError  an event a host's state does not allow (``.event``, ``.host``, ``.state``)
    ├── controller.execs.ExecError  ``plush exec`` cannot be carried out as asked (no host, an unknown host)
    ├── processes.ProcessStartError  a command could not be started (``.argv``, ``.reason``, ``.cwd``)
    ├── resources.poolentry.PoolFileError  (a SpecError) a pool file was rejected: ``.problems``, file:line each
    ├── resources.providers.DiscoveryError  (a ResourceError) a discovery command failed (``.command``,
    │                                       ``.exit_status``, ``.stderr_tail``)
    └── agent.InstallError       a software bundle could not be installed on a host (``.software``)

This module ships to agents: standard library only, Python 3.8 syntax.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence, Tuple

__all__ = [
    "ApplicationAborted",
    "AuthenticationError",
    "ConfigError",
    "HostUnreachable",
    "LaunchError",
    "MatchError",
    "PlushError",
    "ProtocolError",
    "ResourceError",
    "RunError",
    "SpecError",
    "SpecProblem",
    "StorageError",
]


class PlushError(Exception):
    """Root of every error Plush raises on purpose."""

    #: process exit code the CLI uses for this kind of error
    exit_code = 1


class ConfigError(PlushError):
    """A setting has a bad value, or a settings file cannot be read."""

    exit_code = 2

    def __init__(self, message: str, *, source: Optional[str] = None, setting: Optional[str] = None) -> None:
        super().__init__(message)
        self.source = source
        self.setting = setting


@dataclass(frozen=True)
class SpecProblem:
    """One problem found in a spec: where it is, what is wrong, how to fix it."""

    message: str
    file: Optional[str] = None
    line: Optional[int] = None
    column: Optional[int] = None
    block: Optional[str] = None  # block path, e.g. /app/senders/join
    element: Optional[str] = None  # XML element or YAML key
    hint: Optional[str] = None

    def location(self) -> str:
        """``file:line:column`` with the parts that are known."""
        parts = [self.file or "<spec>"]
        if self.line is not None:
            parts.append(str(self.line))
            if self.column is not None:
                parts.append(str(self.column))
        return ":".join(parts)

    def __str__(self) -> str:
        where = self.location()
        text = where + ": " + self.message
        if self.element:
            text += " (in <" + self.element + ">)"
        if self.block:
            text += " [" + self.block + "]"
        if self.hint:
            text += "; " + self.hint
        return text


class SpecError(PlushError):
    """A spec was rejected. ``problems`` holds every problem found, in file order."""

    exit_code = 2

    def __init__(self, problems: Sequence[SpecProblem]) -> None:
        self.problems: Tuple[SpecProblem, ...] = tuple(problems)
        if not self.problems:
            raise ValueError("SpecError needs at least one problem")
        first = self.problems[0]
        more = len(self.problems) - 1
        suffix = " (and {} more problem{})".format(more, "" if more == 1 else "s") if more else ""
        super().__init__(str(first) + suffix)

    @property
    def file(self) -> Optional[str]:
        return self.problems[0].file

    @property
    def line(self) -> Optional[int]:
        return self.problems[0].line

    @property
    def path(self) -> Optional[str]:
        return self.problems[0].block


class ResourceError(PlushError):
    """The pool of hosts cannot satisfy the application."""


class MatchError(ResourceError):
    """A component's requirements cannot be met by the pool: the run is refused before it starts."""

    exit_code = 2

    def __init__(self, message: str, *, component: str, wanted: int, available: int) -> None:
        super().__init__(message)
        self.component = component
        self.wanted = wanted
        self.available = available


class HostUnreachable(ResourceError):
    """A host could not be reached or its agent could not be bootstrapped."""

    def __init__(self, host: str, reason: str) -> None:
        super().__init__("host {} is unreachable: {}".format(host, reason))
        self.host = host
        self.reason = reason


class ProtocolError(PlushError):
    """A peer sent bytes or messages that break the wire protocol."""

    def __init__(self, message: str, *, peer: Optional[str] = None) -> None:
        super().__init__(message)
        self.peer = peer


class AuthenticationError(ProtocolError):
    """A peer did not authenticate. Nothing it sent was acted on."""


class LaunchError(PlushError):
    """An agent could not be started on a host."""

    def __init__(self, host: str, message: str, *, stderr_tail: str = "") -> None:
        text = "could not start the agent on {}: {}".format(host, message)
        if stderr_tail:
            text += "\n" + stderr_tail
        super().__init__(text)
        self.host = host
        self.stderr_tail = stderr_tail


class RunError(PlushError):
    """The run failed."""


class ApplicationAborted(RunError):
    """The application aborted. The message names the root cause first."""

    def __init__(
        self,
        reason: str,
        *,
        host: Optional[str] = None,
        block: Optional[str] = None,
        exit_status: Optional[int] = None,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.host = host
        self.block = block
        self.exit_status = exit_status


class StorageError(RunError):
    """The run directory could not be written (disk full, read-only, gone): the run stops; what was written
    before stays readable. ``.path`` names the file."""

    def __init__(self, message: str, *, path: Optional[str] = None) -> None:
        super().__init__(message)
        self.path = path
