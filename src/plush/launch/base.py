"""The launcher interface: how the controller gets an agent running on a host.

A :class:`Launcher` starts agents (``start_agent``) and, when it can, copies files to a host
(``put_file``), runs a command there (``run``), and always releases what it holds (``close``). What a
launcher can do is declared in :attr:`Launcher.capabilities` (like Ansible's connection plugins declare
theirs), so the controller asks ``launcher.supports("put_file")`` instead of probing. Launchers never
decide anything about the run; they only start, copy, run and stop. Implementations: ``local`` (agents on
this machine); ``ssh`` and the zipapp ``bundle`` come later.

Every agent is told how to reach the controller by an :class:`AgentContact`; the join token travels in a
file (0600) or on stdin, never on a command line, in the environment or in a log.
"""

from __future__ import annotations

import abc
import asyncio
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Protocol

from plush.errors import LaunchError
from plush.protocol.secret import Secret

__all__ = ["CAPABILITIES", "AgentContact", "AgentHandle", "Launcher", "RunResult"]

#: every capability a launcher may declare
CAPABILITIES = frozenset({"start_agent", "put_file", "run", "close"})


@dataclass(frozen=True)
class AgentContact:
    """How an agent reaches its controller: address, the CA to trust, and the join token."""

    host: str
    port: int
    ca_pem: bytes
    token: Secret
    #: the name to check in the controller's certificate, when it differs from ``host``
    server_name: str | None = None


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

    async def wait(self) -> int: ...

    def stderr_tail(self, lines: int = 20) -> str: ...


class Launcher(abc.ABC):
    """Starts agents on hosts of one kind. Use as ``async with``; :meth:`close` stops what it started."""

    #: what this launcher can do (a subset of :data:`CAPABILITIES`)
    capabilities: ClassVar[frozenset[str]] = frozenset({"start_agent", "close"})

    def supports(self, capability: str) -> bool:
        if capability not in CAPABILITIES:
            raise ValueError(f"unknown launcher capability {capability!r}; known: {sorted(CAPABILITIES)}")
        return capability in self.capabilities

    @abc.abstractmethod
    async def start_agent(self, name: str) -> AgentHandle:
        """Start the agent of host ``name``; return once it is started (not once it joined)."""

    async def start_agents(self, names: Iterable[str]) -> Sequence[AgentHandle]:
        """Start many agents concurrently (launchers may do better than this default)."""
        return list(await asyncio.gather(*(self.start_agent(n) for n in names)))

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
