"""Providers: what fills a pool with hosts, and may be asked again (a refresh).

Role: the controller holds a :class:`~plush.resources.host.Pool`; each :class:`Provider` offers the hosts it
knows *now* through ``await provider.hosts()``. Asking again re-reads the source, so a pool file edited
during a service run, or a discovery command that sees other hosts, changes what the next refresh returns.
The providers of today:

- :class:`LocalSandbox`: N hosts on this machine, named ``local-1`` … ``local-N``, with this machine's
  properties (:func:`~plush.resources.sandbox.local_properties`). The default pool.
- :class:`PoolFile`: a pool file of any kind (:mod:`~plush.resources.poolfile`: Plush directory, YAML
  inventory, JSON host list), told by its content, re-read on every refresh.
- :class:`DiscoveryCommand`: a command (an argv list, never a shell string: give ``["sh", "-c", "…"]`` to
  use a shell) that prints a JSON host list; re-run on every refresh, with a deadline. A non-zero exit, a
  timeout or output that is not a JSON host list is a :class:`DiscoveryError` or a
  :class:`~plush.resources.poolentry.PoolFileError` naming the command (and its stderr's last lines).

Invariants: a provider's ``hosts()`` returns a fresh list (names unique) or raises a
:class:`~plush.errors.PlushError`; no file or process I/O runs on the event loop's thread (files are read
in a worker thread); a discovery command and everything it started is killed when it overruns its deadline,
floods its output or its caller is cancelled: nothing it started outlives ``hosts()`` unless it detached
itself (closed its output and left).
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import os
import shlex
import signal
from collections.abc import Mapping, Sequence
from pathlib import Path

from plush.errors import ResourceError, SpecProblem
from plush.resources.host import Host, Pool, PropertyValue
from plush.resources.inventory import parse_host_json
from plush.resources.poolentry import LOCAL_ADDRESS, PoolFileError
from plush.resources.poolfile import PoolKind, read_pool, sniff_file
from plush.resources.sandbox import local_properties

__all__ = ["DiscoveryCommand", "DiscoveryError", "LocalSandbox", "PoolFile", "Provider", "fill_pool"]

#: the most bytes a discovery command may print
MAX_DISCOVERY_OUTPUT = 32 * 1024 * 1024
_STDERR_TAIL = 2000


class DiscoveryError(ResourceError):
    """A discovery command could not be run, failed or overran its deadline (``.command``, ``.exit_status``,
    ``.stderr_tail``)."""

    exit_code = 2

    def __init__(self, command: str, what: str, *, exit_status: int | None = None, stderr_tail: str = "") -> None:
        text = f"discovery command {command}: {what}"
        if stderr_tail:
            text += "\n" + stderr_tail
        super().__init__(text)
        self.command = command
        self.exit_status = exit_status
        self.stderr_tail = stderr_tail


class Provider(abc.ABC):
    """A source of hosts. ``name`` says which (a path, a command), ``kind`` what sort (``local``,
    ``directory``, ``inventory``, ``json``, ``command``)."""

    @property
    @abc.abstractmethod
    def name(self) -> str: ...

    @property
    @abc.abstractmethod
    def kind(self) -> str: ...

    @abc.abstractmethod
    async def hosts(self) -> list[Host]:
        """The hosts this provider offers now; called again to refresh."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"


class LocalSandbox(Provider):
    """``count`` sandbox hosts on this machine: ``local-1`` … ``local-N``, with this machine's properties."""

    def __init__(self, count: int, *, properties: Mapping[str, PropertyValue] | None = None) -> None:
        if count < 0:
            raise ValueError("a sandbox has no fewer than 0 hosts")
        self.count = count
        self._properties = properties

    @property
    def name(self) -> str:
        return "local sandbox"

    @property
    def kind(self) -> str:
        return "local"

    async def hosts(self) -> list[Host]:
        props = self._properties
        if props is None:
            props = await asyncio.to_thread(local_properties)
        return [Host(f"local-{k}", LOCAL_ADDRESS, "local", properties=props) for k in range(1, self.count + 1)]


class PoolFile(Provider):
    """The hosts of a pool file, re-read on every call. Constructing one checks that the file is a pool
    file (:class:`PoolFileError` otherwise), so a wrong ``-d`` fails before anything starts."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        kind = sniff_file(self.path)
        if kind is None:
            kind, _ = read_pool(self.path)  # raises why: unreadable, or not a pool file
        self._kind: PoolKind = kind

    @property
    def name(self) -> str:
        return str(self.path)

    @property
    def kind(self) -> str:
        return self._kind

    async def hosts(self) -> list[Host]:
        kind, hosts = await asyncio.to_thread(read_pool, self.path)
        self._kind = kind
        return hosts


class DiscoveryCommand(Provider):
    """The hosts a command prints as a JSON host list (``docs/pools.md``), run again on every call."""

    def __init__(
        self, argv: Sequence[str], *, timeout: float = 30.0, cwd: str | os.PathLike[str] | None = None
    ) -> None:
        if isinstance(argv, str) or not argv:
            raise TypeError("a discovery command is a non-empty argv list (use ['sh', '-c', TEXT] for a shell)")
        if not timeout > 0:
            raise ValueError("a discovery command needs a positive timeout")
        self.argv = tuple(argv)
        self.timeout = timeout
        self.cwd = cwd

    @property
    def name(self) -> str:
        text = shlex.join(self.argv)  # long ones keep both ends: the program and its arguments
        return text if len(text) <= 80 else text[:30] + "…" + text[-49:]

    @property
    def kind(self) -> str:
        return "command"

    async def hosts(self) -> list[Host]:
        output = await self._run()
        label = f"{self.name} (output)"
        try:
            text = output.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            line = output.count(b"\n", 0, exc.start) + 1
            raise PoolFileError([SpecProblem("the output is not UTF-8 text", file=label, line=line)]) from None
        return parse_host_json(text, file=label, allow_empty=True)

    async def _run(self) -> bytes:
        try:
            proc = await asyncio.create_subprocess_exec(
                *self.argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                cwd=self.cwd,
                start_new_session=True,  # its own process group: a timeout kills what it started too
            )
        except OSError as exc:
            raise DiscoveryError(self.name, f"cannot start it: {exc.strerror or exc}") from None
        assert proc.stdout is not None and proc.stderr is not None
        done = False
        try:
            async with asyncio.timeout(self.timeout):
                output, tail = await asyncio.gather(self._stdout(proc), _tail(proc.stderr))
                status = await proc.wait()
            done = True
        except TimeoutError:
            raise DiscoveryError(self.name, f"did not finish within {self.timeout:g}s") from None
        finally:
            if not done:
                _kill_group(proc.pid)
                with contextlib.suppress(ProcessLookupError):
                    await proc.wait()
        if output is None:
            raise DiscoveryError(self.name, f"printed more than {MAX_DISCOVERY_OUTPUT} bytes", stderr_tail=tail)
        if status != 0:
            what = f"was killed by signal {-status}" if status < 0 else f"exited with status {status}"
            raise DiscoveryError(self.name, what, exit_status=status, stderr_tail=tail)
        return output

    async def _stdout(self, proc: asyncio.subprocess.Process) -> bytes | None:
        """Everything the command prints, or None (and the command killed) past the limit."""
        assert proc.stdout is not None
        chunks: list[bytes] = []
        size = 0
        while chunk := await proc.stdout.read(65536):
            size += len(chunk)
            if size > MAX_DISCOVERY_OUTPUT:
                _kill_group(proc.pid)
                return None
            chunks.append(chunk)
        return b"".join(chunks)


async def _tail(stream: asyncio.StreamReader) -> str:
    """The last lines of a stream, read to its end."""
    tail = b""
    while chunk := await stream.read(65536):
        tail = (tail + chunk)[-_STDERR_TAIL:]
    text = tail.decode("utf-8", errors="replace").strip()
    return "\n".join(line.rstrip() for line in text.splitlines()[-10:])


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


async def fill_pool(providers: Sequence[Provider], pool: Pool | None = None) -> Pool:
    """A pool (``pool``, or a new one) with the hosts of every provider, asked in order; a host named by two
    providers is the later one's."""
    pool = Pool() if pool is None else pool
    for provider in providers:
        for host in await provider.hosts():
            pool.add(host)
    return pool
