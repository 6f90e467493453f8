"""Local agent processes as the launcher sees them: spawned children, or agents forked by the zygote.

Role: the controller-side halves of the two ways :class:`~plush.launch.local.LocalLauncher` starts an
agent, behind one small interface (:class:`AgentProcess`: ``pid``, ``poll()``, ``await wait()``):

- :class:`SpawnedProcess` wraps a ``subprocess.Popen`` child (one interpreter per agent): its exit is
  awaited through a pidfd on the event loop (no thread, no polling) where the OS has them;
- :class:`ZygoteClient` runs ``python -m plush.agent.zygote`` (a pre-imported fork server), writes fork
  requests to its stdin through asyncio (the event loop never blocks on a spawn) and reads its reports
  with one reader task: ``started ID PID`` resolves the request, ``exited PID CODE`` the agent's
  :class:`ForkedProcess`. An agent forked by the zygote is not our child; its exit code comes from the
  zygote, which reaps it.

Invariants: every :class:`ForkedProcess` gets an exit code exactly once. If the zygote goes away while
agents it forked still run (it crashed or was killed), their exit is detected by watching the pid (a pidfd
on Linux >= 5.3, else polling ``/proc``) and reported as :data:`UNKNOWN_EXIT`. :meth:`ZygoteClient.close`
closes the zygote's stdin; the zygote then ends its remaining children (SIGTERM, grace, SIGKILL), reaps
them and exits, and ``close`` returns once it did. The zygote also does that when the controller dies
(its stdin closes with the controller), so it never outlives its controller.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, NamedTuple, Protocol

from plush.errors import LaunchError

__all__ = [
    "UNKNOWN_EXIT",
    "AgentProcess",
    "ForkRequest",
    "ForkedProcess",
    "SpawnedProcess",
    "ZygoteClient",
    "wait_pid_gone",
]

#: the exit code reported for a forked agent whose real code was lost with its zygote
UNKNOWN_EXIT = 255
_POLL_INTERVAL = 0.05  # seconds between /proc checks when there is no pidfd


class AgentProcess(Protocol):
    """What the launcher needs of an agent's process."""

    @property
    def pid(self) -> int: ...

    #: ``time.monotonic()`` when the process was started (forked, spawned)
    started_at: float

    def poll(self) -> int | None: ...

    async def wait(self) -> int: ...


def _exited(pid: int) -> bool:
    """Whether ``pid`` is gone or a zombie (for a process that is not our child)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            state = fh.read().rpartition(b")")[2].split()[0]
    except (OSError, IndexError):
        return True
    return state in (b"Z", b"X")


async def wait_pid_gone(pid: int) -> None:
    """Wait until process ``pid`` has exited: a pidfd on the event loop, else polling ``/proc``."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    except (AttributeError, OSError):  # no pidfd (old kernel or not Linux): poll
        while not _exited(pid):  # noqa: ASYNC110 (nothing to wait on but time: there is no pidfd)
            await asyncio.sleep(_POLL_INTERVAL)
        return
    loop = asyncio.get_running_loop()
    exited: asyncio.Future[None] = loop.create_future()

    def readable() -> None:
        if not exited.done():
            exited.set_result(None)

    loop.add_reader(fd, readable)
    try:
        await exited
    finally:
        loop.remove_reader(fd)
        os.close(fd)


class SpawnedProcess:
    """An agent that is our child (``subprocess.Popen``)."""

    def __init__(self, popen: subprocess.Popen[bytes]) -> None:
        self.popen = popen
        self.started_at = time.monotonic()

    @property
    def pid(self) -> int:
        return self.popen.pid

    def poll(self) -> int | None:
        return self.popen.poll()

    async def wait(self) -> int:
        if self.popen.poll() is not None:
            return self.popen.returncode
        try:
            fd = os.pidfd_open(self.popen.pid)
        except (AttributeError, OSError):  # no pidfd: a thread waits
            return await asyncio.to_thread(self.popen.wait)
        os.close(fd)
        await wait_pid_gone(self.popen.pid)  # our child: the pid cannot be reused before we reap it
        return self.popen.wait()


class ForkedProcess:
    """An agent forked by the zygote; its exit code arrives from the zygote's reports."""

    def __init__(self, pid: int) -> None:
        self._pid = pid
        self.started_at = time.monotonic()
        self._code: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    def __repr__(self) -> str:
        return f"<ForkedProcess {self._pid} rc={self.poll()}>"

    @property
    def pid(self) -> int:
        return self._pid

    def poll(self) -> int | None:
        return self._code.result() if self._code.done() else None

    async def wait(self) -> int:
        return await asyncio.shield(self._code)

    def set_exit(self, code: int) -> None:
        if not self._code.done():
            self._code.set_result(code)

    async def watch_without_zygote(self) -> None:
        """The zygote is gone: learn the exit from the pid itself (the code is lost)."""
        await wait_pid_gone(self._pid)
        self.set_exit(UNKNOWN_EXIT)


class ForkRequest(NamedTuple):
    """One agent to fork: its arguments (after ``python -m plush.agent``), directory and log file."""

    argv: Sequence[str]
    cwd: Path
    log: Path


class ZygoteClient:
    """The controller's end of one zygote process (see the module docstring)."""

    def __init__(self, python: str, env: Mapping[str, str], *, grace: float, log_path: Path) -> None:
        self.python = python
        self.env = dict(env)
        self.grace = grace
        self.log_path = log_path
        self.process: asyncio.subprocess.Process | None = None
        self.forked: dict[int, ForkedProcess] = {}
        self._pending: dict[int, asyncio.Future[ForkedProcess]] = {}
        self._next_id = 1
        self._ready: asyncio.Future[None] | None = None
        self._reader: asyncio.Task[None] | None = None
        self._watchers: set[asyncio.Task[None]] = set()
        self._gone_reason: str | None = None

    @property
    def running(self) -> bool:
        return self.process is not None and self._gone_reason is None

    async def start(self) -> None:
        """Start the zygote and wait until it has imported the agent (its ``ready``)."""
        loop = asyncio.get_running_loop()
        self._ready = loop.create_future()
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log: IO[bytes]
        with open(self.log_path, "ab") as log:
            try:
                self.process = await asyncio.create_subprocess_exec(
                    self.python,
                    "-m",
                    "plush.agent.zygote",
                    "--grace",
                    repr(float(self.grace)),
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=log,
                    env=self.env,
                )
            except OSError as exc:
                raise LaunchError("zygote", f"cannot start {self.python}: {exc}") from exc
        self._reader = loop.create_task(self._read_reports())
        await asyncio.shield(self._ready)

    def _tail(self) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-10:])
        return ""

    async def fork(self, requests: Sequence[ForkRequest]) -> list[ForkedProcess]:
        """Fork one agent per request; their processes, in order, once the zygote forked them all."""
        if not self.running or self.process is None or self.process.stdin is None:
            raise LaunchError("zygote", f"the agent fork server is not running: {self._gone_reason}")
        loop = asyncio.get_running_loop()
        ids: list[int] = []
        lines: list[bytes] = []
        for req in requests:
            ident, self._next_id = self._next_id, self._next_id + 1
            self._pending[ident] = loop.create_future()
            ids.append(ident)
            line = {"id": ident, "argv": list(req.argv), "cwd": str(req.cwd), "log": str(req.log)}
            lines.append(json.dumps(line).encode("utf-8") + b"\n")
        try:
            self.process.stdin.writelines(lines)
            await self.process.stdin.drain()
        except (ConnectionError, OSError) as exc:
            for ident in ids:
                self._pending.pop(ident, None)
            raise LaunchError("zygote", f"cannot reach the agent fork server: {exc}") from exc
        got = await asyncio.gather(*(self._pending[i] for i in ids), return_exceptions=True)
        for ident in ids:
            self._pending.pop(ident, None)
        forked: list[ForkedProcess] = []
        for item in got:
            if isinstance(item, BaseException):
                raise item
            forked.append(item)
        return forked

    async def _read_reports(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        stdout = self.process.stdout
        reason = "the agent fork server exited"
        try:
            while line := await stdout.readline():
                self._report(line.decode("utf-8", "replace").split())
        except (OSError, ValueError) as exc:  # pragma: no cover (a broken pipe or an absurd line)
            reason = f"lost the agent fork server: {exc}"
        finally:
            self._gone(reason)

    def _report(self, words: list[str]) -> None:
        if not words:
            return
        kind = words[0]
        if kind == "ready" and self._ready is not None and not self._ready.done():
            self._ready.set_result(None)
        elif kind == "started" and len(words) == 3:
            ident, pid = int(words[1]), int(words[2])
            proc = self.forked[pid] = ForkedProcess(pid)
            fut = self._pending.get(ident)
            if fut is not None and not fut.done():
                fut.set_result(proc)
        elif kind == "failed" and len(words) >= 2:
            fut = self._pending.get(int(words[1])) if words[1].isdigit() else None
            if fut is not None and not fut.done():
                fut.set_exception(LaunchError("zygote", "cannot fork an agent: " + " ".join(words[2:])))
        elif kind == "exited" and len(words) == 3:
            exited = self.forked.pop(int(words[1]), None)
            if exited is not None:
                exited.set_exit(int(words[2]))

    def _gone(self, reason: str) -> None:
        """The zygote's stdout ended: fail what waits on it; watch its orphans by pid."""
        self._gone_reason = reason
        error = LaunchError("zygote", f"{reason}; its log: {self.log_path}\n{self._tail()}")
        if self._ready is not None and not self._ready.done():
            self._ready.set_exception(error)
        for fut in self._pending.values():
            if not fut.done():
                fut.set_exception(error)
        loop = asyncio.get_running_loop()
        for proc in self.forked.values():
            task = loop.create_task(proc.watch_without_zygote())
            self._watchers.add(task)
            task.add_done_callback(self._watchers.discard)
        self.forked.clear()

    async def close(self) -> None:
        """Close the zygote's stdin and wait until it ended its children and exited (idempotent)."""
        proc = self.process
        if proc is None:
            return
        if proc.stdin is not None and not proc.stdin.is_closing():
            proc.stdin.close()
            with contextlib.suppress(ConnectionError, OSError):
                await proc.stdin.wait_closed()
        await proc.wait()
        if self._reader is not None:
            await self._reader
        if self._watchers:
            await asyncio.gather(*self._watchers)
