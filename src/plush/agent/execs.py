"""The agent's side of the distributed shell (``plush exec``): run one command on this host, outside any
application, and answer with one message.

Theory of operation. An ``exec`` request (docs/protocol.md: ``req``, ``argv``, ``timeout``, ``limit``) is served
by :class:`Execs`, one task per request, in every state of the connection: on an idle agent (joined, before
its first ``prepare`` or between applications) and beside a running application. The command

- starts through the process runner (:func:`plush.processes.runner.start_process`): ``argv`` as is, never
  through a shell (the controller sends ``sh -c STRING`` for ``--shell``), in its own session, so its process
  group is its own; its environment is the agent's plus ``PLUSH_HOST`` (this host's name);
- runs in the host's **exec directory**, ``exec`` next to the agent's working directory (``<workdir>/../exec``;
  on a local sandbox host ``plush-runs/mesh-.../hosts/<host>/exec``), made on first use and kept while the
  host is connected: the application's working directory is not touched;
- has its stdout and stderr read to their end; the first ``limit`` bytes of each are kept, the rest is read
  and dropped (``truncated``), so a chatty command never blocks on its pipe nor fills the agent's memory;
- is killed at ``timeout`` seconds: SIGKILL to its process group and every process carrying its tag
  (``timed_out``, ``signal`` 9).

Then one binary ``exec.result`` goes back: ``code`` or ``signal``, ``out`` (the length of stdout in the
payload; stderr follows it), ``truncated``, ``timed_out``, ``duration`` (seconds from start to reply). A
command that cannot start answers ``code`` 127 when its program is missing, else 126, with the reason as its
stderr (what a shell does). Nothing is written but what the command writes; nothing is journaled.

:class:`ExecChannel` wraps the channel a runtime reads: ``exec`` requests are served here (and ``copy`` and
``gather``, by :mod:`plush.agent.filecopy`), every other message passes on unchanged, so the runtimes know
nothing of the shell. A reply goes to the channel current when the command ends; on a broken link it is
dropped (not numbered: the controller counts the host unreachable).

Invariants: every task belongs to :class:`Execs` and ends with :meth:`Execs.close` (its command killed);
requests are independent (several may run at once). Standard library only, Python 3.8 syntax.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import subprocess
import time
from typing import TYPE_CHECKING, Dict, List, Optional, Set, Tuple

from plush.agent.link import Channel, LinkClosed
from plush.processes.policy import ExitStatus
from plush.processes.runner import ProcessStartError, new_tag, start_process
from plush.processes.tree import TAG_VARIABLE, kill_tree
from plush.protocol.messages import Message

if TYPE_CHECKING:
    from plush.agent.filecopy import FileRequests

__all__ = ["EOF_GRACE", "EXEC_DIR", "SERVED", "ExecChannel", "Execs", "exec_dir"]

log = logging.getLogger(__name__)

#: the name of the exec directory, next to the agent's working directory
EXEC_DIR = "exec"
#: the messages :class:`ExecChannel` hands to :class:`Execs`: the shell's request and the file transfers'
SERVED = frozenset({"exec", "copy", "copy.data", "copy.end", "copy.peers", "gather"})
#: seconds the pipes of an exited command may stay open (held by a descendant) before they are let go
EOF_GRACE = 0.5


def _pidfd_works() -> bool:
    """Whether the fast path (:meth:`Execs._spawn`) is available: process file descriptors (Linux 5.3+,
    Python 3.9+)."""
    try:
        os.close(os.pidfd_open(os.getpid()))
    except (AttributeError, OSError):
        return False
    return True


_PIDFD = _pidfd_works()


def exec_dir(workdir: str) -> str:
    """The exec directory of the host whose agent works in ``workdir``."""
    return os.path.join(os.path.dirname(os.path.abspath(workdir)), EXEC_DIR)


class Execs:
    """The exec requests of one agent (see the module docstring). ``channel``: where replies go."""

    def __init__(self, host: str, directory: str, channel: Optional[Channel] = None) -> None:
        self.host = host
        self.directory = directory
        self._files: Optional["FileRequests"] = None
        self._channel = channel
        self._tasks: Set["asyncio.Future[None]"] = set()
        self.served = 0

    @property
    def files(self) -> "FileRequests":
        """``copy`` and ``gather`` (:mod:`plush.agent.filecopy`), in the same exec directory; imported at the
        first file request (an agent that never copies does not pay for the content cache's imports)."""
        if self._files is None:
            from plush.agent.filecopy import FileRequests

            self._files = FileRequests(self.directory, self._channel, self.host)
        return self._files

    @property
    def channel(self) -> Optional[Channel]:
        return self._channel

    @channel.setter
    def channel(self, channel: Optional[Channel]) -> None:
        self._channel = channel
        if self._files is not None:
            self._files.channel = channel

    def serve(self, msg: Message) -> None:
        """Start serving the request ``msg`` (an ``exec``: its reply goes out when its command ends; the file
        transfers' messages go to :attr:`files`)."""
        if msg.type != "exec":
            self.files.serve(msg)
            return
        task = asyncio.ensure_future(self._serve(msg))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        """End every request in progress (its command killed, no reply)."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)
        if self._files is not None:
            await self._files.close()

    async def _serve(self, msg: Message) -> None:
        started = time.monotonic()
        kept = _Kept(max(0, int(msg["limit"])))
        argv = [str(a) for a in msg["argv"]]
        timeout = max(float(msg["timeout"]), 0.0)
        try:
            os.makedirs(self.directory, exist_ok=True)
            if _PIDFD:
                status, timed_out = await self._spawn(argv, timeout, kept)
            else:
                status, timed_out = await self._run(argv, timeout, kept)
        except (ProcessStartError, OSError) as exc:
            cause = exc.__cause__ if isinstance(exc, ProcessStartError) else exc
            why = exc.reason if isinstance(exc, ProcessStartError) else (exc.strerror or str(exc))
            kept.stderr += "plush exec: {}: {}\n".format(argv[0], why).encode("utf-8", "replace")
            status, timed_out = ExitStatus(code=127 if isinstance(cause, FileNotFoundError) else 126), False
        self.served += 1
        out = bytes(kept.stdout)
        reply = Message.binary(
            "exec.result",
            out + bytes(kept.stderr),
            req=msg["req"],
            code=status.code,
            signal=status.signal,
            out=len(out),
            truncated=kept.truncated,
            timed_out=timed_out,
            duration=round(time.monotonic() - started, 6),
        )
        channel = self.channel
        if channel is not None:
            with contextlib.suppress(LinkClosed, ConnectionError):
                await channel.send_binary(reply)

    def _env(self, tag: Optional[str] = None) -> Dict[str, str]:
        env = dict(os.environ)
        env["PLUSH_HOST"] = self.host
        if tag is not None:
            env[TAG_VARIABLE] = tag
        return env

    async def _spawn(self, argv: List[str], timeout: float, kept: "_Kept") -> Tuple[ExitStatus, bool]:
        """The fast path (Linux, Python 3.9+): the command forked by ``subprocess`` (vfork), its exit and its
        pipes watched by the event loop (a pidfd, no thread): what the process runner does, at half the cost
        on the agent (a warm ``plush exec`` is mostly the agents' CPU)."""
        loop = asyncio.get_running_loop()
        tag = new_tag()
        r_out, w_out = os.pipe()
        r_err, w_err = os.pipe()
        try:
            proc = subprocess.Popen(  # noqa: ASYNC220 (vfork + exec: no wait for the command itself)
                argv,
                stdin=subprocess.DEVNULL,
                stdout=w_out,
                stderr=w_err,
                cwd=self.directory,
                env=self._env(tag),
                start_new_session=True,  # its own process group: what the timeout kills
            )
        except BaseException:
            os.close(r_out)
            os.close(r_err)
            raise
        finally:
            os.close(w_out)
            os.close(w_err)
        pidfd = os.pidfd_open(proc.pid)  # (Python 3.9+: _PIDFD)
        exited = loop.create_future()  # type: asyncio.Future[None]
        drained = loop.create_future()  # type: asyncio.Future[None]
        pipes = {r_out: kept.stdout, r_err: kept.stderr}

        def close_pipe(fd: int) -> None:
            loop.remove_reader(fd)
            os.close(fd)
            del pipes[fd]
            if not pipes and not drained.done():
                drained.set_result(None)

        def readable(fd: int) -> None:
            try:
                data = os.read(fd, 65536)
            except BlockingIOError:
                return
            except OSError:
                data = b""
            if data:
                kept.add(pipes[fd], data)
            else:
                close_pipe(fd)

        def gone() -> None:
            loop.remove_reader(pidfd)
            if not exited.done():
                exited.set_result(None)

        for fd in pipes:
            os.set_blocking(fd, False)
            loop.add_reader(fd, readable, fd)
        loop.add_reader(pidfd, gone)
        timed_out = False
        try:
            try:
                await asyncio.wait_for(asyncio.shield(exited), timeout)
            except asyncio.TimeoutError:
                timed_out = True
                kill_tree(tag, proc.pid, signal.SIGKILL)
                await exited
            with contextlib.suppress(asyncio.TimeoutError):  # a descendant may hold a pipe open: let it go
                await asyncio.wait_for(asyncio.shield(drained), EOF_GRACE)
            return ExitStatus.from_returncode(proc.wait()), timed_out
        except asyncio.CancelledError:
            kill_tree(tag, proc.pid, signal.SIGKILL)
            raise
        finally:
            for fd in list(pipes):
                close_pipe(fd)
            loop.remove_reader(pidfd)
            os.close(pidfd)
            if proc.returncode is None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(0.5)  # killed a moment ago: reap it

    async def _run(self, argv: List[str], timeout: float, kept: "_Kept") -> Tuple[ExitStatus, bool]:
        """The portable path: the process runner (:func:`~plush.processes.runner.start_process`)."""

        async def sink(stream: str, data: bytes) -> None:
            kept.add(kept.stdout if stream == "stdout" else kept.stderr, data)

        handle = await start_process(
            argv, env={"PLUSH_HOST": self.host}, cwd=self.directory, sink=sink, eof_grace=EOF_GRACE
        )
        try:
            return await asyncio.wait_for(handle.wait(), timeout), False
        except asyncio.TimeoutError:
            handle.kill("timed out")
            return await handle.wait(), True
        except asyncio.CancelledError:
            handle.kill("the agent stops")
            raise


class _Kept:
    """The first ``limit`` bytes of each stream; whether more came (``truncated``)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.stdout = bytearray()
        self.stderr = bytearray()
        self.truncated = False

    def add(self, buf: bytearray, data: bytes) -> None:
        room = self.limit - len(buf)
        if len(data) > room:
            self.truncated = True
            data = data[: max(room, 0)]
        buf += data


class ExecChannel:
    """``channel`` as a runtime sees it, less the ``exec`` requests and the file transfers' messages
    (:data:`SERVED`), which ``execs`` serves."""

    def __init__(self, channel: Channel, execs: Execs) -> None:
        self._channel = channel
        self.execs = execs
        execs.channel = channel

    def send(self, msg: Message) -> None:
        self._channel.send(msg)

    async def drain(self) -> None:
        await self._channel.drain()

    async def send_binary(self, msg: Message) -> None:
        await self._channel.send_binary(msg)

    async def recv(self) -> Message:
        while True:
            msg = await self._channel.recv()
            if msg.type not in SERVED:
                return msg
            self.execs.serve(msg)

    def __aiter__(self) -> "ExecChannel":
        return self

    async def __anext__(self) -> Message:
        try:
            return await self.recv()
        except LinkClosed:
            raise StopAsyncIteration from None
