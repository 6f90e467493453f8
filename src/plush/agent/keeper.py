"""The fork server's keeper: one guard for every agent the zygote forks (see :mod:`plush.agent.guard`).

Role: an agent started on its own forks its own guard (two forks of a full interpreter, a few ms of CPU
each). The zygote forks hundreds of agents at once, so it starts one keeper, once, before it serves: a
guard that watches many agents. Per agent it costs one socket pair and one message.

- :func:`start_keeper` forks the keeper (its own session; stdio on ``/dev/null`` but fd 2, the zygote's
  log; every other fd closed) and keeps a ``SOCK_SEQPACKET`` control socket to it.
- :meth:`Keeper.watch` (in the zygote, before forking an agent): a new socket pair; one end goes to the
  keeper with the agent's tag (``SCM_RIGHTS``), the other becomes the agent's
  :class:`~plush.agent.guard.Guard` (same protocol as a private guard: ``grace X``, ``done``).
- The keeper waits on every agent's socket at once (``selectors``): ``done`` -> it closes that socket (the
  agent's ``release`` sees the end); end of file without ``done`` -> that agent died: the keeper ends the
  processes carrying its tag (every agent that died in the same moment in one batch).
- It exits once the zygote is gone (the control socket ended) and no agent is left to watch; the zygote
  waits for it at its own end (bounded), so a clean run leaves nothing behind.

Invariants: the control socket and the keeper's ends never reach an agent (the zygote closes them in
every child); the keeper never signals a process that does not carry a watched agent's tag. A keeper that
is killed or stopped ends nothing: the next ``plush`` command on this machine finds the leftovers.
Standard library only, Python 3.8 syntax.
"""

from __future__ import annotations

import array
import contextlib
import os
import re
import selectors
import socket
import time
from typing import Dict, List, Optional

from plush.agent.guard import Guard, Watched, detach_stdio, end_agents, new_agent_tag

__all__ = ["Keeper", "start_keeper"]

_MESSAGE = 256
_TAG = re.compile(r"[A-Za-z0-9_-]{1,64}")


class Keeper:
    """The zygote's end of its keeper."""

    def __init__(self, control: socket.socket, pid: int) -> None:
        self.control = control
        self.pid = pid

    def watch(self) -> Optional[Guard]:
        """A guard for the next agent (its tag fresh), or None when the keeper is gone."""
        tag = new_agent_tag()
        try:
            mine, theirs = socket.socketpair()
        except OSError:
            return None
        try:
            fds = array.array("i", [theirs.fileno()])
            self.control.sendmsg([tag.encode()], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, fds)])
        except OSError:
            mine.close()
            return None
        finally:
            theirs.close()
        return Guard(mine, self.pid, tag)

    def close(self, timeout: float) -> None:
        """Tell the keeper the zygote is done; wait up to ``timeout`` seconds for it to exit (it ends once its
        last agent is released or ended)."""
        self.control.close()
        deadline = time.monotonic() + timeout
        while True:
            try:
                pid, _ = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:
                return
            if pid or time.monotonic() >= deadline:
                return
            time.sleep(0.01)


def start_keeper(grace: float) -> Keeper:
    """Fork the keeper (call before any thread exists and before signal handlers are set). Raises OSError."""
    mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            mine.close()
            os.setsid()
            null = os.open(os.devnull, os.O_RDWR)
            os.dup2(null, 0)
            os.dup2(null, 1)
            detach_stdio([theirs.fileno()])
            _keep(theirs, grace)
            code = 0
        finally:
            os._exit(code)
    theirs.close()
    return Keeper(mine, pid)


def _keep(control: socket.socket, grace: float) -> None:
    """The keeper's loop (in the keeper process)."""
    selector = selectors.DefaultSelector()
    selector.register(control, selectors.EVENT_READ)
    watched: Dict[socket.socket, Watched] = {}
    serving = True
    while serving or watched:
        gone: List[Watched] = []
        for key, _ in selector.select():
            sock = key.fileobj
            assert isinstance(sock, socket.socket)
            if sock is control:
                data, ancillary, _, _ = control.recvmsg(_MESSAGE, socket.CMSG_SPACE(4))
                fds = array.array("i")
                for level, kind, payload in ancillary:
                    if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                        fds.frombytes(payload[: len(payload) - len(payload) % fds.itemsize])
                if not data and not fds:  # the zygote is gone
                    serving = False
                    selector.unregister(control)
                    control.close()
                    continue
                tag = data.decode("ascii", "replace")
                for fd in fds:
                    agent = socket.socket(fileno=fd)
                    if not _TAG.fullmatch(tag):  # never search for what is not a tag of ours
                        agent.close()
                        continue
                    watched[agent] = Watched(tag, grace)
                    selector.register(agent, selectors.EVENT_READ)
                continue
            state = watched[sock]
            try:
                chunk = sock.recv(4096)
            except OSError:
                chunk = b""
            if chunk:
                state.feed(chunk)
                if not state.done:
                    continue
            else:
                gone.append(state)
            selector.unregister(sock)
            del watched[sock]
            with contextlib.suppress(OSError):
                sock.close()  # after ``done``: the agent's release sees the end
        if gone:
            end_agents(gone)
