"""The process runner: start a command on this host, stream its output, wait for it, stop its whole tree.

This is the asyncio adapter of the ``processes`` room; decisions about exits live in ``policy``.

- A command is an argv, never a shell string (a shell runs only when the argv says ``['sh', '-c', ...]``).
  Its environment is ``base_env`` (default: this process's) updated with ``env``, plus
  ``PLUSH_INSTANCE_TAG=<tag>``; it leads its own session, so its process group id is its pid.
- stdin is a file or ``/dev/null``. stdout and stderr go to files when named, else, when a ``sink`` is
  given, through pipes read in chunks of at most ``chunk_size`` bytes: each chunk is handed to
  ``await sink(stream_name, data)`` and the next read starts only after the sink returned. A slow sink
  therefore stalls the process on a full pipe: memory stays bounded (one chunk per stream plus the pipe)
  and nothing is lost. Without a sink, unnamed streams go to ``/dev/null``.
- :meth:`RunningProcess.wait` returns the :class:`ExitStatus` once the process exited *and* both pipes
  reached end of file. A descendant that outlives the process may hold a pipe open: when, after the exit,
  the pipes stay silent for ``eof_grace`` seconds (and the sink is not busy), the runner stops reading,
  closes its ends and sets ``output_detached``. ``eof_grace=None`` waits for end of file forever.
- If the sink raises, the runner stops reading that stream (the writer then gets ``EPIPE``) and
  :meth:`RunningProcess.wait` raises the sink's exception once the process has ended.
- :meth:`RunningProcess.stop` sends SIGTERM to the whole tree (group and tagged escapees), waits up to
  ``grace`` seconds for every member to go, then SIGKILLs what is left until nothing carries the tag.

Every background task belongs to its :class:`RunningProcess` and ends with it. Standard library only,
Python 3.8 syntax (no TaskGroup, no asyncio.timeout).

Size: about 470 lines, kept whole: starting, reading, signalling and reaping one process tree share its
state (the pipes, the group, the exit) and read together.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import signal
import time
from typing import Any, Awaitable, Callable, Dict, List, Mapping, Optional, Sequence, Set

from plush.errors import PlushError
from plush.processes.policy import ExitStatus
from plush.processes.tree import TAG_VARIABLE, kill_tree, reap_zombies, tree_members
from plush.spec.model import Process

__all__ = [
    "CHUNK_SIZE",
    "ProcessRunner",
    "ProcessStartError",
    "RunningProcess",
    "Sink",
    "new_tag",
    "reap_orphans",
    "run_process",
    "start_process",
]

log = logging.getLogger(__name__)

#: receives each chunk of output: ``await sink("stdout" | "stderr", data)``
Sink = Callable[[str, bytes], Awaitable[None]]
CHUNK_SIZE = 64 * 1024
STDERR_TAIL = 4096
_POLL = 0.05  # seconds between /proc scans while waiting for a tree to go
#: pids started here whose exit status asyncio has not collected yet: never reap them behind its back
_UNWAITED: Set[int] = set()


class ProcessStartError(PlushError):
    """A command could not be started (missing program, bad cwd, unreadable stdin, ...)."""

    def __init__(self, argv: Sequence[str], reason: str, *, cwd: Optional[str] = None) -> None:
        where = " in {}".format(cwd) if cwd else ""
        super().__init__("could not start {!r}{}: {}".format(list(argv), where, reason))
        self.argv = tuple(argv)
        self.reason = reason
        self.cwd = cwd


def new_tag() -> str:
    """A fresh instance tag (unique per started process)."""
    return "plush-" + secrets.token_hex(8)


async def _wait_readable(loop: asyncio.AbstractEventLoop, fd: int) -> None:
    fut: asyncio.Future[None] = loop.create_future()

    def ready() -> None:
        if not fut.done():
            fut.set_result(None)

    loop.add_reader(fd, ready)
    try:
        await fut
    finally:
        loop.remove_reader(fd)


class RunningProcess:
    """A started process: ``pid``, ``pgid``, ``tag``, ``started_at``; :meth:`wait`, :meth:`stop`."""

    def __init__(
        self,
        proc: asyncio.subprocess.Process,
        *,
        argv: Sequence[str],
        tag: str,
        cwd: Optional[str],
        env: Mapping[str, str],
        sink: Optional[Sink],
        pipes: Mapping[str, int],
        chunk_size: int,
        eof_grace: Optional[float],
    ) -> None:
        self._proc = proc
        self.pid: int = proc.pid
        self.pgid: int = proc.pid  # it leads its own session
        self.argv = tuple(argv)
        self.tag = tag
        self.cwd = cwd
        self.env = dict(env)  # without the tag, for checks that run "in the same environment"
        self.started_at = time.time()
        self.exited_at: Optional[float] = None
        self.status: Optional[ExitStatus] = None
        self.kill_reason: Optional[str] = None  # set when Plush killed the tree (stop, liveness, ...)
        self.output_detached = False
        self.bytes_out: Dict[str, int] = dict.fromkeys(pipes, 0)
        self._stderr_tail = bytearray()
        self._sink = sink
        self._chunk = chunk_size
        self._eof_grace = eof_grace
        self._progress = 0
        self._sink_busy = 0
        self._sink_error: Optional[BaseException] = None
        self._exited = asyncio.Event()
        self._pumps = [asyncio.ensure_future(self._pump(name, fd)) for name, fd in pipes.items()]
        self._task = asyncio.ensure_future(self._supervise())

    def __repr__(self) -> str:
        state = str(self.status) if self.status else "running"
        return "<RunningProcess pid={} tag={} {} {}>".format(self.pid, self.tag, list(self.argv), state)

    # --- state ------------------------------------------------------------------------------------

    @property
    def exited(self) -> bool:
        """True once the main process has exited (its output may still be draining)."""
        return self._exited.is_set()

    @property
    def done(self) -> bool:
        """True once :meth:`wait` would return at once."""
        return self._task.done()

    @property
    def stderr_tail(self) -> str:
        """The last few KiB of streamed stderr (empty when stderr went to a file)."""
        return self._stderr_tail.decode("utf-8", "replace")

    def members(self) -> List[int]:
        """Live processes of this instance: the group and every tagged descendant."""
        return tree_members(self.tag, self.pgid)

    def statistics(self) -> Dict[str, Any]:
        return {
            "pid": self.pid,
            "tag": self.tag,
            "started_at": self.started_at,
            "exited_at": self.exited_at,
            "status": self.status.to_dict() if self.status else None,
            "bytes_out": dict(self.bytes_out),
            "output_detached": self.output_detached,
            "kill_reason": self.kill_reason,
        }

    # --- waiting ----------------------------------------------------------------------------------

    async def wait(self) -> ExitStatus:
        """The exit status, once the process exited and its output was delivered (cancel-safe)."""
        status = await asyncio.shield(self._task)
        if self._sink_error is not None:
            raise self._sink_error
        return status

    def add_done_callback(self, callback: Callable[[RunningProcess], object]) -> None:
        """Call ``callback(self)`` once :meth:`wait` would return (at once if it already would)."""
        self._task.add_done_callback(lambda _task: callback(self))

    async def wait_exited(self) -> None:
        """Until the main process has exited (output may still be draining)."""
        await self._exited.wait()

    # --- killing ----------------------------------------------------------------------------------

    def signal_tree(self, sig: int) -> List[int]:
        """Send ``sig`` to the group and every tagged process; returns the pids signalled one by one."""
        return kill_tree(self.tag, self.pgid, sig)

    def kill(self, reason: str = "killed") -> None:
        """SIGKILL the whole tree now; the exit then counts as a signal exit."""
        if self.kill_reason is None and not self.exited:
            self.kill_reason = reason
        self.signal_tree(signal.SIGKILL)

    async def stop(self, grace: float = 5.0, kill_timeout: float = 5.0) -> ExitStatus:
        """SIGTERM the tree, wait up to ``grace`` s, then SIGKILL until no member is left; the status."""
        if self.kill_reason is None and not self.exited:
            self.kill_reason = "stopped"
        self.signal_tree(signal.SIGTERM)
        self.signal_tree(signal.SIGCONT)  # a stopped process cannot act on SIGTERM
        if not await self._wait_gone(grace):
            loop = asyncio.get_running_loop()
            deadline = loop.time() + kill_timeout
            while True:
                self.signal_tree(signal.SIGKILL)
                if await self._wait_gone(min(0.2, max(0.0, deadline - loop.time()))):
                    break
                if loop.time() >= deadline:
                    log.warning("process.unkillable tag=%s members=%s", self.tag, self.members())
                    break
        return await self.wait()

    async def _wait_gone(self, within: float) -> bool:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while True:
            if self._exited.is_set() and not self.members():
                return True
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            step = min(_POLL, remaining)
            if self._exited.is_set():
                await asyncio.sleep(step)
            else:
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._exited.wait(), step)

    # --- background tasks -------------------------------------------------------------------------

    async def _pump(self, name: str, fd: int) -> None:
        loop = asyncio.get_running_loop()
        try:
            os.set_blocking(fd, False)
            while True:
                try:
                    data = os.read(fd, self._chunk)
                except BlockingIOError:
                    await _wait_readable(loop, fd)
                    continue
                if not data:
                    return
                self._progress += 1
                self.bytes_out[name] += len(data)
                if name == "stderr":
                    self._stderr_tail += data
                    del self._stderr_tail[:-STDERR_TAIL]
                if self._sink is not None:
                    self._sink_busy += 1
                    try:
                        await self._sink(name, data)
                    finally:
                        self._sink_busy -= 1
                self._progress += 1
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the sink (or the pipe) failed: stop reading, the writer gets EPIPE
            log.warning("process.output_failed tag=%s stream=%s error=%r", self.tag, name, exc)
            if self._sink_error is None:
                self._sink_error = exc
        finally:
            os.close(fd)

    async def _supervise(self) -> ExitStatus:
        try:
            rc = await self._proc.wait()
            _UNWAITED.discard(self.pid)
            self.exited_at = time.time()
            self._exited.set()
            pending = set(self._pumps)
            while pending:
                mark = self._progress
                _, pending = await asyncio.wait(pending, timeout=self._eof_grace)
                if pending and mark == self._progress and not self._sink_busy:
                    # a descendant outlived the process and holds a pipe open, silent: stop reading
                    log.info("process.output_detached tag=%s", self.tag)
                    self.output_detached = True
                    for task in pending:
                        task.cancel()
                    await asyncio.wait(pending)
                    break
            self.status = ExitStatus.from_returncode(rc)
            return self.status
        finally:
            for task in self._pumps:
                task.cancel()


def _resolve(path: Optional[str], cwd: Optional[str]) -> Optional[str]:
    if path is None or cwd is None or os.path.isabs(path):
        return path
    return os.path.join(cwd, path)


async def start_process(
    argv: Sequence[str],
    *,
    env: Optional[Mapping[str, str]] = None,
    base_env: Optional[Mapping[str, str]] = None,
    cwd: Optional[str] = None,
    stdin: Optional[str] = None,
    stdout: Optional[str] = None,
    stderr: Optional[str] = None,
    sink: Optional[Sink] = None,
    append: bool = False,
    chunk_size: int = CHUNK_SIZE,
    eof_grace: Optional[float] = 2.0,
    tag: Optional[str] = None,
) -> RunningProcess:
    """Start ``argv``; see the module docstring. File names are relative to ``cwd``.

    Raises :class:`ProcessStartError` when the program, the cwd or a redirection cannot be used.
    """
    if not argv:
        raise ValueError("an empty argv cannot be started")
    if chunk_size <= 0:
        raise ValueError("chunk_size must be positive")
    tag = tag or new_tag()
    plain_env = dict(os.environ if base_env is None else base_env)
    plain_env.update(env or {})
    plain_env.pop(TAG_VARIABLE, None)
    child_env = dict(plain_env)
    child_env[TAG_VARIABLE] = tag
    child_fds: List[int] = []
    pipes: Dict[str, int] = {}
    try:
        try:
            child_fds.append(os.open(_resolve(stdin, cwd) or os.devnull, os.O_RDONLY))
            for name, path in (("stdout", stdout), ("stderr", stderr)):
                if path is not None:
                    flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if append else os.O_TRUNC)
                    child_fds.append(os.open(_resolve(path, cwd) or path, flags, 0o644))
                elif sink is not None:
                    read_end, write_end = os.pipe()
                    pipes[name] = read_end
                    child_fds.append(write_end)
                else:
                    child_fds.append(os.open(os.devnull, os.O_WRONLY))
            proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=child_fds[0],
                stdout=child_fds[1],
                stderr=child_fds[2],
                cwd=cwd,
                env=child_env,
                start_new_session=True,
            )
        finally:
            for fd in child_fds:
                os.close(fd)
    except OSError as exc:
        for fd in pipes.values():
            os.close(fd)
        raise ProcessStartError(argv, exc.strerror or str(exc), cwd=cwd) from exc
    except BaseException:
        for fd in pipes.values():
            os.close(fd)
        raise
    _UNWAITED.add(proc.pid)
    log.debug("process.started pid=%s tag=%s argv=%r", proc.pid, tag, list(argv))
    return RunningProcess(
        proc,
        argv=argv,
        tag=tag,
        cwd=cwd,
        env=plain_env,
        sink=sink,
        pipes=pipes,
        chunk_size=chunk_size,
        eof_grace=eof_grace,
    )


async def run_process(argv: Sequence[str], **options: Any) -> ExitStatus:
    """Start ``argv`` (options as :func:`start_process`) and wait for it; if cancelled, kill its tree."""
    handle = await start_process(argv, **options)
    try:
        return await handle.wait()
    except asyncio.CancelledError:
        handle.kill("cancelled")
        raise


def reap_orphans() -> List[int]:
    """Reap zombie children of this process that no one waits for: orphans adopted as subreaper.

    Children started by :func:`start_process` are left to asyncio until it collected them. Children
    started by other means (``subprocess.run`` in another thread) are not known here: an agent that
    enables the subreaper starts its processes through this module only.
    """
    return reap_zombies(exclude=set(_UNWAITED))


class ProcessRunner:
    """The processes of one agent: starts them with shared defaults, stops them all, reaps orphans."""

    def __init__(
        self,
        base_env: Optional[Mapping[str, str]] = None,
        *,
        chunk_size: int = CHUNK_SIZE,
        eof_grace: Optional[float] = 2.0,
    ) -> None:
        self.base_env: Dict[str, str] = dict(os.environ if base_env is None else base_env)
        self.chunk_size = chunk_size
        self.eof_grace = eof_grace
        self._running: Dict[str, RunningProcess] = {}
        self._started = 0

    @property
    def running(self) -> List[RunningProcess]:
        """Processes not finished yet, in start order."""
        return [h for h in self._running.values() if not h.done]

    async def start(self, argv: Sequence[str], **options: Any) -> RunningProcess:
        """Start ``argv`` (options as :func:`start_process`) with this runner's defaults."""
        options.setdefault("base_env", self.base_env)
        options.setdefault("chunk_size", self.chunk_size)
        options.setdefault("eof_grace", self.eof_grace)
        handle = await start_process(argv, **options)
        self._started += 1
        self._running[handle.tag] = handle
        handle.add_done_callback(lambda h: self._running.pop(h.tag, None))
        return handle

    async def start_model(
        self,
        process: Process,
        workdir: str,
        *,
        sink: Optional[Sink] = None,
        extra_env: Optional[Mapping[str, str]] = None,
        append: bool = False,
    ) -> RunningProcess:
        """Start a spec :class:`Process`: cwd relative to ``workdir``, redirections relative to the cwd."""
        cwd = os.path.join(workdir, process.cwd) if process.cwd else workdir
        env = dict(extra_env or {})
        env.update(process.env)
        return await self.start(
            process.argv,
            env=env,
            cwd=cwd,
            stdin=process.stdin,
            stdout=process.stdout,
            stderr=process.stderr,
            sink=sink,
            append=append,
        )

    async def stop_all(self, grace: float = 5.0) -> Dict[str, ExitStatus]:
        """Stop every running process (in parallel); their statuses by tag."""
        handles = self.running
        statuses = await asyncio.gather(*(h.stop(grace) for h in handles), return_exceptions=True)
        out: Dict[str, ExitStatus] = {}
        for handle, status in zip(handles, statuses):  # noqa: B905 (strict= is Python 3.10)
            if isinstance(status, ExitStatus):
                out[handle.tag] = status
            elif handle.status is not None:
                out[handle.tag] = handle.status
        return out

    def reap_orphans(self) -> List[int]:
        """Reap zombie orphans adopted as subreaper (see :func:`reap_orphans`)."""
        return reap_orphans()

    def statistics(self) -> Dict[str, Any]:
        return {"started": self._started, "running": len(self.running)}
