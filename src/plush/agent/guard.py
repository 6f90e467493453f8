"""The agent's guard: a small process that ends the agent's processes when the agent dies without doing it.

Role: an agent ends every process it started (the runtime stops each tree, the subreaper sweep ends the
daemons) -- unless it is killed outright (SIGKILL, the OOM killer). Its processes then lose their owner:
they re-parent to init and would run for ever. The guard is their owner of last resort.

Agents forked by the zygote share one guard, its *keeper* (:mod:`plush.agent.keeper`: same protocol, one
process for all); an agent started on its own starts a private guard. Shape of a private guard:
:meth:`Guard.start` is called once, first thing in the agent, before any thread or event loop exists. It
forks twice, so the guard

- leads its own session: no signal to the agent's process group (the launcher's SIGTERM/SIGKILL, a
  Ctrl-C) reaches it;
- is not the agent's child (the agent's cheap "no child, no ``/proc`` walk" test at stop stays true; init
  or the nearest subreaper reaps the guard);
- keeps only stdio (fd 2 is the agent's log, where it says what it did) and its end of a socket pair with
  the agent, and works in ``/``.

Every process the agent starts carries ``PLUSH_AGENT_TAG=<tag>`` in its environment (the agent sets it in
its own environment, which its process runner passes on). The guard blocks reading the socket:

- ``grace SECONDS`` (sent by the agent once it knows its ``stop_grace``): what SIGTERM gives before SIGKILL;
- ``done`` (the agent ended every process and exits): the guard exits at once, with no ``/proc`` pass;
- end of file without ``done``: the agent is gone. The guard finds every live process carrying the tag,
  sends SIGTERM (and SIGCONT), waits up to the grace, SIGKILLs what is left, says so in the log, exits.

Cost: two forks of the agent (copy on write: no new interpreter), one sleeping process per agent, nothing
while the agent lives. Limits: a process that both left the agent's tree and dropped its environment
(double fork + ``setsid`` + empty environment) is ended by the agent's subreaper sweep while the agent lives,
but the guard cannot find it; a guard that is itself killed or stopped ends nothing (the next ``plush``
command on a local machine then finds the leftovers, see :mod:`plush.launch.leftovers`).

Standard library only, Python 3.8 syntax.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
from typing import List, Optional

from plush.processes.tree import find_with_env, terminate

__all__ = [
    "AGENT_TAG_VARIABLE",
    "DEFAULT_GRACE",
    "Guard",
    "Watched",
    "detach_stdio",
    "end_agents",
    "new_agent_tag",
    "start_guard",
]

#: the environment variable that marks every process of one agent
AGENT_TAG_VARIABLE = "PLUSH_AGENT_TAG"
#: seconds between SIGTERM and SIGKILL until the agent says otherwise
DEFAULT_GRACE = 5.0
_START_TIMEOUT = 10.0


def new_agent_tag() -> str:
    return "agent-" + secrets.token_hex(8)


def _note(text: str) -> None:
    with contextlib.suppress(OSError):
        os.write(2, ("plush guard {}: {}\n".format(os.getpid(), text)).encode("utf-8", "replace"))


def _open_fds() -> List[int]:
    try:
        return [int(name) for name in os.listdir("/proc/self/fd")]
    except OSError:  # no /proc: the usual small range
        return list(range(256))


class Guard:
    """The agent's end of its guard (see the module docstring)."""

    def __init__(self, sock: socket.socket, pid: int, tag: str) -> None:
        self._sock = sock
        self.pid = pid
        self.tag = tag

    @classmethod
    def start(cls, tag: str, grace: float = DEFAULT_GRACE) -> Guard:
        """Fork the guard of this process's processes (tag ``tag``); returns once it runs. Raises OSError."""
        mine, theirs = socket.socketpair()
        try:
            pid = os.fork()
        except OSError:
            mine.close()
            theirs.close()
            raise
        if pid == 0:  # the intermediate: a new session, the guard in it, and gone
            code = 1
            try:
                mine.close()
                os.setsid()
                if os.fork() == 0:
                    _serve(theirs, tag, grace)  # never returns
                code = 0
            finally:
                os._exit(code)
        theirs.close()
        os.waitpid(pid, 0)
        mine.settimeout(_START_TIMEOUT)
        line = b""
        try:
            while not line.endswith(b"\n"):
                chunk = mine.recv(64)
                if not chunk:
                    raise OSError("the guard ended before it started")
                line += chunk
            words = line.split()
            if len(words) != 2 or words[0] != b"pid":
                raise OSError("the guard said {!r}".format(line))
        except OSError:
            mine.close()
            raise
        mine.settimeout(None)
        return cls(mine, int(words[1]), tag)

    def close(self) -> None:
        """Drop this end without a word (the zygote, once the agent it forked holds its own copy)."""
        self._sock.close()

    def set_grace(self, seconds: float) -> None:
        """From now on the guard gives ``seconds`` between SIGTERM and SIGKILL."""
        with contextlib.suppress(OSError):
            self._sock.sendall("grace {!r}\n".format(float(seconds)).encode())

    def release(self, timeout: float = 2.0) -> None:
        """The agent ended all its processes and exits: let the guard go, and wait (bounded) until it went."""
        if self._sock.fileno() < 0:
            return
        try:
            self._sock.sendall(b"done\n")
            self._sock.shutdown(socket.SHUT_WR)
            self._sock.settimeout(timeout)
            while self._sock.recv(64):
                pass
        except OSError:  # gone already, or slow: it exits on its own
            pass
        finally:
            self._sock.close()


class Watched:
    """What a guard knows of one agent: its tag, its grace, and the lines it sent (``grace X``, ``done``)."""

    def __init__(self, tag: str, grace: float = DEFAULT_GRACE) -> None:
        self.tag = tag
        self.grace = grace
        self.done = False
        self._buffer = b""

    def feed(self, data: bytes) -> None:
        """Take what the agent sent; sets :attr:`done` once it said ``done``."""
        self._buffer += data
        *lines, self._buffer = self._buffer.split(b"\n")
        for line in lines:
            words = line.split()
            if words == [b"done"]:
                self.done = True
            elif len(words) == 2 and words[0] == b"grace":
                with contextlib.suppress(ValueError):
                    self.grace = min(max(0.0, float(words[1])), 3600.0)


def end_agents(gone: List[Watched]) -> List[int]:
    """End every live process carrying the tag of an agent of ``gone`` (SIGTERM, the longest of their
    graces, SIGKILL); the pids signalled, also noted on stderr (the log)."""
    tags = [w.tag for w in gone]

    def find() -> List[int]:
        return sorted({pid for tag in tags for pid in find_with_env(AGENT_TAG_VARIABLE, tag)})

    ended = terminate(find, max(w.grace for w in gone))
    if ended:
        _note("{} agent(s) died; ended {} process(es) they left: {}".format(len(gone), len(ended), ended))
    return ended


def detach_stdio(keep: List[int]) -> None:
    """In a freshly forked guard: default signals, work in ``/``, close every fd but stdio and ``keep``."""
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGCHLD, signal.SIGPIPE):
        signal.signal(sig, signal.SIG_IGN if sig == signal.SIGPIPE else signal.SIG_DFL)
    with contextlib.suppress(ValueError, OSError):
        signal.set_wakeup_fd(-1)
    with contextlib.suppress(OSError):
        os.chdir("/")
    kept = {0, 1, 2, *keep}
    for fd in _open_fds():
        if fd not in kept:
            with contextlib.suppress(OSError):
                os.close(fd)


def _serve(sock: socket.socket, tag: str, grace: float) -> None:
    """The guard's whole life (in the forked guard process; never returns)."""
    code = 0
    try:
        detach_stdio([sock.fileno()])
        sock.sendall("pid {}\n".format(os.getpid()).encode())
        watched = Watched(tag, grace)
        while not watched.done:
            data = sock.recv(4096)
            if not data:
                end_agents([watched])
                break
            watched.feed(data)
    except BaseException as exc:  # never return into the agent's code
        code = 1
        _note("failed: {!r}".format(exc))
    finally:
        os._exit(code)


def start_guard(given: Optional[Guard] = None) -> Optional[Guard]:
    """This process's guard: ``given`` (a keeper's, see :mod:`plush.agent.keeper`) or a new private one; its
    tag goes into this process's environment (what its children inherit). None (and a note in the log)
    when no guard can be started."""
    if given is not None:
        os.environ[AGENT_TAG_VARIABLE] = given.tag
        return given
    tag = new_agent_tag()
    os.environ[AGENT_TAG_VARIABLE] = tag
    try:
        return Guard.start(tag)
    except OSError as exc:
        _note("cannot start: {}".format(exc))
        return None
