"""The launcher interface: how the controller gets an agent running on a host.

A :class:`Launcher` starts agents (``start_agent``), knows the agents it started (``agent``, ``alive``),
says where a host is for its processes (``address``), tells a dead or stopped agent from a broken link
(``agent_state``), stops its agents (``stop_all``) and always releases what it holds (``close``). When it
can, it also signals an agent (``signal_agent``), kills what a host's processes left of a run
(``kill_leftovers``), copies files to a host (``put_file``) and runs a command there (``run``). What a
launcher can do beyond the required is declared in :attr:`Launcher.capabilities` (like Ansible's connection
plugins declare theirs), so the controller asks ``launcher.supports("signal")`` instead of probing; a
method whose capability is not declared is a no-op or a :class:`~plush.errors.LaunchError`, as each says.
Launchers never decide anything about the run; they only start, copy, run, signal and stop. This is the
only layer that knows where a host is: the run engine names hosts, the launcher reaches them.
Implementations: ``local`` (agents on this machine) and ``ssh`` (agents on hosts reached by SSH, shipped as
the zipapp of ``bundle``).

Every agent is told how to reach the controller by an :class:`AgentContact` (its listener's address, or
``adopt``: a stream the launcher opened, such as an SSH session, handed to the listener as a Peer); the join
token travels in a file (0600) or on stdin, never on a command line, in the environment or in a log.
"""

from __future__ import annotations

import abc
import asyncio
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Protocol

from plush.errors import LaunchError
from plush.protocol.secret import Secret

__all__ = ["CAPABILITIES", "AgentContact", "AgentHandle", "LaunchErrors", "Launcher", "RunResult"]

#: every capability a launcher may declare: ``signal`` (:meth:`Launcher.signal_agent`), ``kill_leftovers``
#: (:meth:`Launcher.kill_leftovers`), ``put_file``, ``run``; ``start_agent`` and ``close`` every launcher has
CAPABILITIES = frozenset({"start_agent", "put_file", "run", "close", "signal", "kill_leftovers"})


@dataclass(frozen=True)
class AgentContact:
    """How an agent reaches its controller: address, the CA to trust, and the join token."""

    host: str
    port: int
    ca_pem: bytes
    token: Secret
    #: the name to check in the controller's certificate, when it differs from ``host``
    server_name: str | None = None
    #: a Peer of the controller's listener for a stream the launcher opened itself (an SSH session's stdio):
    #: ``adopt(address)``; None where the listener takes none
    adopt: Callable[[str], asyncio.Protocol] | None = None


@dataclass(frozen=True)
class RunResult:
    """What a command run through a launcher returned."""

    exit_status: int
    stdout: bytes
    stderr: bytes


class AgentHandle(Protocol):
    """A started agent, as the controller sees it before (and besides) its connection."""

    name: str

    @property
    def pid(self) -> int | None: ...

    @property
    def returncode(self) -> int | None: ...

    @property
    def started_at(self) -> float:
        """When the agent was started (``time.monotonic()``): its join timeout counts from there."""
        ...

    async def wait(self) -> int: ...

    def stderr_tail(self, lines: int = 20) -> str: ...


class LaunchErrors(LaunchError):
    """Some hosts of a batch could not be started (``failed``: host -> why, in words); ``started``: the agents
    that did start (they run and are the caller's to watch)."""

    def __init__(self, started: Sequence[AgentHandle], failed: dict[str, str]) -> None:
        first = next(iter(failed))
        super().__init__(first, failed[first] + (f" (and {len(failed) - 1} more)" if len(failed) > 1 else ""))
        self.started = list(started)
        self.failed = dict(failed)


class Launcher(abc.ABC):
    """Starts agents on hosts of one kind. Use as ``async with``; :meth:`close` stops what it started."""

    #: what this launcher can do (a subset of :data:`CAPABILITIES`)
    capabilities: ClassVar[frozenset[str]] = frozenset({"start_agent", "close"})
    #: whether :meth:`kill_leftovers` over every host costs about what it costs over a few (the local launcher:
    #: one pass over this machine's ``/proc``); when not (one remote command per host), a run's end sweeps only
    #: the hosts whose agents did not end it cleanly (their agents kill their own processes)
    sweep_all_is_cheap: ClassVar[bool] = False

    def supports(self, capability: str) -> bool:
        if capability not in CAPABILITIES:
            raise ValueError(f"unknown launcher capability {capability!r}; known: {sorted(CAPABILITIES)}")
        return capability in self.capabilities

    @abc.abstractmethod
    async def start_agent(self, name: str) -> AgentHandle:
        """Start the agent of host ``name``; return once it is started (not once it joined)."""

    async def start_agents(self, names: Iterable[str]) -> Sequence[AgentHandle]:
        """Start many agents concurrently (launchers may do better than this default). A launcher that starts
        some and not others raises :class:`LaunchErrors` (which hosts failed and why, which agents started)."""
        return list(await asyncio.gather(*(self.start_agent(n) for n in names)))

    @abc.abstractmethod
    def agent(self, name: str) -> AgentHandle | None:
        """The agent last started for host ``name`` (running or not), or None."""

    @abc.abstractmethod
    def alive(self) -> Sequence[AgentHandle]:
        """Every agent this launcher started that has not exited."""

    def address(self, name: str) -> str:
        """The address of host ``name`` as its processes tell others (``PLUSH_ADDR``)."""
        return name

    def agent_state(self, name: str, pid: int | None) -> str | None:
        """Why the agent ``pid`` of host ``name`` can no longer resume a broken link (``"exited (1)"``, ``"is
        stopped"``), or None when it runs or the launcher cannot tell (a broken link then gets its window)."""
        return None

    def signal_agent(self, name: str, sig: int) -> bool:
        """Send ``sig`` to the agent of host ``name`` and everything in its process group (capability
        ``signal``); whether an agent was there to get it. Without the capability: False."""
        return False

    async def kill_leftovers(self, run_id: str, hosts: Collection[str] | None) -> list[int]:
        """SIGKILL every process that hosts ``hosts`` (every host when None) still run for run ``run_id``:
        what a killed or hung agent left behind (capability ``kill_leftovers``); what was killed. Without
        the capability: nothing."""
        return []

    @abc.abstractmethod
    async def stop_agent(self, name: str, grace: float | None = None) -> None:
        """Make sure the agent of host ``name`` is gone: after asking it over its link to stop (the caller's
        part), end it (SIGTERM, ``grace`` seconds, SIGKILL, or what the host's kind offers) and wait for it."""

    @abc.abstractmethod
    async def stop_all(self, grace: float | None = None) -> None:
        """Stop every agent this launcher started (SIGTERM, ``grace`` seconds, SIGKILL) and wait for them."""

    async def put_file(self, name: str, source: Path, dest: str) -> None:
        """Copy ``source`` to ``dest`` (relative to the host's working directory) on host ``name``."""
        raise LaunchError(name, f"{type(self).__name__} cannot copy files")

    async def run(self, name: str, argv: Sequence[str]) -> RunResult:
        """Run ``argv`` on host ``name`` (in its working directory) and return what it printed."""
        raise LaunchError(name, f"{type(self).__name__} cannot run commands")

    @abc.abstractmethod
    async def close(self) -> None:
        """Stop every agent this launcher started and release its resources (idempotent)."""

    async def __aenter__(self) -> Launcher:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
