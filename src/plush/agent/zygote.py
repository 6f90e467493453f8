"""The agent fork server ("zygote"): one pre-imported interpreter that forks one local agent per request.

    python -m plush.agent.zygote [--grace SECONDS]

Role: starting a Python interpreter and importing the agent's closure (asyncio, ssl, the protocol, the
runtime) costs ~0.15 s of CPU per agent; 200 local agents on 2 cores pay seconds of wall time for it. The
zygote imports that closure ONCE, then serves requests from the controller's local launcher
(``plush.launch.zygote_client``) on a line protocol:

- stdin, one JSON object per line: ``{"id": N, "argv": [...], "cwd": DIR, "log": FILE}``;
- stdout, one line per event: ``ready`` (once, after the imports), ``started ID PID``, ``failed ID REASON``,
  and ``exited PID CODE`` when a child was reaped (CODE as ``subprocess``: negative for a signal).

Each child is a fresh agent in all that matters: it leads its own session and process group (before its
``started`` line is written, so the launcher can signal the group at once), has its own
``agent.log`` (stdout and stderr, stdin is /dev/null), its own working directory, default signal
dispositions, its end of a socket pair with the zygote's *keeper* (one guard for every agent, forked once
before the first request: :mod:`plush.agent.keeper`), and runs ``plush.agent.__main__.main(argv)``, which
reads the join token from the 0600 file
named in ``argv`` (the token is never on a command line, in the environment, or in a log; the request
holds only its path).

Invariants:

- no thread, ever (``fork`` in a multi-threaded process is unsafe): one loop ``select``s on stdin and on
  a self-pipe woken by SIGCHLD (``signal.set_wakeup_fd``), and reaps with ``waitpid(WNOHANG)``;
- nothing of the zygote leaks into a child: its pipes to the controller are replaced (fd 0, 1, 2) or
  closed (the self-pipe), its signal handlers reset; no event loop exists before a fork;
- end: when stdin closes (the launcher is done, or the controller died) or on SIGTERM/SIGHUP, the zygote
  SIGTERMs every remaining child's process group, waits up to ``--grace`` seconds, SIGKILLs the groups
  still there, reaps them all, closes the keeper's control socket, waits (bounded) for the keeper to exit,
  and exits. It never outlives its children's reaping, and none of them outlives it by more than the grace;
  the keeper outlives it only while an agent it forked still runs (the zygote was killed).

Ships to agents' side: standard library only, Python 3.8 syntax.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import select
import signal
import sys
import time
from typing import Dict, List, Optional, Tuple

from plush.agent.guard import Guard, start_guard
from plush.agent.keeper import Keeper, start_keeper

__all__ = ["exit_code", "main"]

_READ_CHUNK = 65536


def exit_code(status: int) -> int:
    """A ``waitpid`` status as ``subprocess`` reports it: the exit status, or minus the killing signal."""
    if os.WIFSIGNALED(status):
        return -os.WTERMSIG(status)
    if os.WIFEXITED(status):
        return os.WEXITSTATUS(status)
    return 255  # pragma: no cover (stopped/continued: not requested from waitpid)


def _emit(line: str) -> None:
    """Write one protocol line to the controller; a controller that went away is not an error."""
    data = (line + "\n").encode("utf-8")
    try:
        while data:
            data = data[os.write(1, data) :]
    except OSError:
        pass


def _note(text: str) -> None:
    """A diagnostic line on stderr (the zygote's log)."""
    with contextlib.suppress(OSError):
        os.write(2, ("plush zygote: " + text + "\n").encode("utf-8", "replace"))


class Zygote:
    """The request loop and the children it forked (pid -> request id)."""

    def __init__(self, grace: float, keeper: Optional[Keeper] = None) -> None:
        self.grace = grace
        self.keeper = keeper
        self.children: Dict[int, int] = {}
        self.closing = False
        self._buffer = b""
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        signal.set_wakeup_fd(self._wake_w)
        signal.signal(signal.SIGCHLD, self._on_signal)
        for sig in (signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, self._on_close_signal)
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a Ctrl-C of the controller: it closes us itself

    def _on_signal(self, signum: int, frame: object) -> None:
        pass  # the wakeup fd did the work: the loop wakes up and reaps

    def _on_close_signal(self, signum: int, frame: object) -> None:
        self.closing = True

    # -- the loop -----------------------------------------------------------------------------------------

    def serve(self) -> int:
        _emit("ready")
        stdin_open = True
        while stdin_open and not self.closing:
            try:
                readable, _, _ = select.select([0, self._wake_r], [], [])
            except InterruptedError:  # pragma: no cover (PEP 475 retries; kept for clarity)
                continue
            if self._wake_r in readable:
                self._drain_wakeup()
            self.reap()
            if 0 in readable:
                stdin_open = self._read_requests()
        self.shutdown()
        return 0

    def _drain_wakeup(self) -> None:
        try:
            while os.read(self._wake_r, 512):
                pass
        except (BlockingIOError, InterruptedError):
            pass

    def _read_requests(self) -> bool:
        """Read what stdin has; fork for every complete line. False once stdin is closed."""
        try:
            chunk = os.read(0, _READ_CHUNK)
        except InterruptedError:  # pragma: no cover
            return True
        except OSError as exc:
            _note("cannot read requests: {}".format(exc))
            return False
        if not chunk:
            return False
        self._buffer += chunk
        *lines, self._buffer = self._buffer.split(b"\n")
        forked: List[Tuple[str, int, int]] = []
        for line in lines:
            got = self._fork(line, [f[2] for f in forked]) if line.strip() else None
            if got is not None:
                forked.append(got)
        # "started" only once each child leads its own group (the launcher may signal the group at once);
        # the whole batch is forked first, so the children get there in parallel
        for ident, pid, ready in forked:
            try:
                os.read(ready, 1)  # a byte, or EOF if the child died first
            finally:
                os.close(ready)
            _emit("started {} {}".format(ident, pid))
        return True

    def _fork(self, line: bytes, siblings: List[int]) -> Optional[Tuple[str, int, int]]:
        """Fork the agent of one request: (request id, pid, the fd its readiness arrives on). ``siblings``
        are the readiness fds of the batch so far (the child closes them)."""
        ident = "?"
        try:
            request = json.loads(line.decode("utf-8"))
            ident = str(int(request["id"]))
            argv = [str(a) for a in request["argv"]]
            cwd = str(request["cwd"])
            log = str(request["log"])
        except (ValueError, KeyError, TypeError) as exc:
            _emit("failed {} bad request: {}".format(ident, exc))
            return None
        ready_r, ready_w = os.pipe()
        guard = self.keeper.watch() if self.keeper is not None else None
        try:
            pid = os.fork()
        except OSError as exc:
            os.close(ready_r)
            os.close(ready_w)
            if guard is not None:
                guard.close()
            _emit("failed {} fork: {}".format(ident, exc))
            return None
        if pid == 0:
            for fd in [ready_r, *siblings]:
                os.close(fd)
            if self.keeper is not None:
                self.keeper.control.close()
            self._child(argv, cwd, log, ready_w, guard)  # never returns
        os.close(ready_w)
        if guard is not None:
            guard.close()  # the agent holds its own end
        self.children[pid] = int(ident)
        return ident, pid, ready_r

    # -- children -----------------------------------------------------------------------------------------

    def _child(self, argv: List[str], cwd: str, log: str, ready: int, guard: Optional[Guard]) -> None:
        code = 1
        try:
            try:
                os.setsid()
            finally:
                os.write(ready, b"x")
                os.close(ready)
            signal.set_wakeup_fd(-1)
            for sig in (signal.SIGCHLD, signal.SIGTERM, signal.SIGHUP):
                signal.signal(sig, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.default_int_handler)
            os.close(self._wake_r)
            os.close(self._wake_w)
            fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)  # the launcher made it with its mode
            os.dup2(fd, 1)
            os.dup2(fd, 2)
            os.close(fd)
            null = os.open(os.devnull, os.O_RDONLY)
            os.dup2(null, 0)
            os.close(null)
            os.chdir(cwd)
            sys.stdin = open(0, closefd=False)  # noqa: SIM115 (the process's own streams, never closed)
            sys.stdout = open(1, "w", closefd=False, buffering=1)  # noqa: SIM115
            sys.stderr = open(2, "w", closefd=False, buffering=1)  # noqa: SIM115
            sys.argv = ["plush-agent", *argv]
            from plush.agent.__main__ import main

            code = main(argv, guard=start_guard(guard))  # the keeper's guard, or (keeper gone) a private one
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        except BaseException as exc:  # a child must never return into the zygote's loop
            _note("agent {} failed: {!r}".format(os.getpid(), exc))
        finally:
            try:
                sys.stdout.flush()
                sys.stderr.flush()
            finally:
                os._exit(code & 0xFF if code >= 0 else 1)

    def reap(self) -> None:
        """Collect every child that has exited and report its exit code."""
        while self.children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                self.children.clear()
                return
            if pid == 0:
                return
            if self.children.pop(pid, None) is not None:
                _emit("exited {} {}".format(pid, exit_code(status)))

    def _signal_all(self, sig: int) -> None:
        for pid in list(self.children):
            try:
                os.killpg(pid, sig)
            except ProcessLookupError:
                pass
            except PermissionError:  # pragma: no cover (not its group any more)
                pass

    def shutdown(self) -> None:
        """SIGTERM the children's groups, wait up to the grace, SIGKILL what is left, reap everything."""
        self.reap()
        if self.children:
            self._signal_all(signal.SIGTERM)
            deadline = time.monotonic() + self.grace
            while self.children:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                with contextlib.suppress(InterruptedError):
                    select.select([self._wake_r], [], [], left)
                self._drain_wakeup()
                self.reap()
        if self.children:
            _note("{} agent(s) ignored SIGTERM for {:g}s: SIGKILL".format(len(self.children), self.grace))
            self._signal_all(signal.SIGKILL)
        while self.children:
            try:
                pid, status = os.waitpid(-1, 0)
            except ChildProcessError:
                break
            except InterruptedError:  # pragma: no cover
                continue
            if self.children.pop(pid, None) is not None:
                _emit("exited {} {}".format(pid, exit_code(status)))
        if self.keeper is not None:
            self.keeper.close(self.grace + 2.0)  # at once when every agent said "done"


def _parse_grace(argv: List[str]) -> float:
    if len(argv) == 2 and argv[0] == "--grace":
        return float(argv[1])
    if argv:
        raise SystemExit("usage: python -m plush.agent.zygote [--grace SECONDS]")
    return 5.0


def main(argv: Optional[List[str]] = None) -> int:
    grace = _parse_grace(list(sys.argv[1:] if argv is None else argv))
    # the agent's whole closure, imported (and compiled into the bytecode cache) once for every child
    import plush.agent.__main__
    import plush.agent.runtime  # noqa: F401

    threading = sys.modules.get("threading")
    if threading is not None and threading.active_count() > 1:  # pragma: no cover (a regression guard)
        _note("threads exist before the first fork: {}".format(threading.enumerate()))
    try:
        keeper: Optional[Keeper] = start_keeper(grace)  # before our signal handlers: it gets none of them
    except OSError as exc:  # pragma: no cover (agents then start their own guards)
        _note("cannot start the keeper: {}".format(exc))
        keeper = None
    try:
        return Zygote(grace, keeper).serve()
    except OSError as exc:  # pragma: no cover
        if exc.errno != errno.EPIPE:
            raise
        return 0


if __name__ == "__main__":
    sys.exit(main())
