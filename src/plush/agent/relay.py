"""The relay of an SSH session to a running agent: ``python3 agent-<hash>.pyz --relay agent.sock``.

Role: how a NEW SSH session reaches an agent that outlived the session it was started in (docs/ssh.md, "The
agent's link"). An agent started with ``--stdio`` speaks the protocol on its first session's stdin/stdout and
listens on a Unix socket in its host directory (0600, its directory 0700: only its own user can connect;
it also checks the peer's uid). When that session is gone, the controller opens another session on the host
running this relay, which connects to the socket and copies bytes both ways, untouched (the protocol, the
join with its token and the resume, is between the controller and the agent), until either side ends.

Exit status: :data:`NO_AGENT` (3) when the agent is gone -- nothing listens on the socket (absent, or
refusing), or the agent closed the connection and exited within :data:`EXIT_WAIT` seconds (the relay knows
its pid from ``SO_PEERCRED``) --, 0 when the agent closed the connection and lives on (it waits for another
session) or the session's pipes broke, 2 for a usage error. So the controller learns an agent's exit from its
relay at once, as it does from the agent's own first session.

Standard library only, Python 3.8; imports nothing of asyncio (the relay starts in a few milliseconds).
"""

import os
import select
import socket
import struct
import sys
import time
from typing import List, Optional

__all__ = ["EXIT_WAIT", "NO_AGENT", "main", "relay"]

#: the relay's exit status when the agent is gone
NO_AGENT = 3
#: seconds the relay waits for the agent to exit after it closed the connection
EXIT_WAIT = 2.0
_CHUNK = 64 * 1024


def _peer_pid(sock: socket.socket) -> Optional[int]:
    option = getattr(socket, "SO_PEERCRED", None)
    if option is None:
        return None
    try:
        pid = int(struct.unpack("3i", sock.getsockopt(socket.SOL_SOCKET, option, struct.calcsize("3i")))[0])
    except OSError:
        return None
    return pid if pid > 0 else None


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:  # someone else's: not ours to judge
        return False
    try:
        with open("/proc/{}/stat".format(pid), "rb") as fh:
            stat = fh.read()
    except OSError:
        return False
    return stat[stat.rfind(b")") + 2 :][:1] in (b"Z", b"X")


def _agent_exited(pid: Optional[int], wait: float) -> bool:
    """Whether agent ``pid`` exits within ``wait`` seconds (polled; False when the pid is unknown)."""
    if pid is None:
        return False
    deadline = time.monotonic() + wait
    while not _gone(pid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.02)
    return True


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def relay(path: str, stdin: int = 0, stdout: int = 1, exit_wait: float = EXIT_WAIT) -> int:
    """Copy ``stdin`` to the agent's socket at ``path`` and the socket to ``stdout`` until the agent closes
    it; the exit status (see the module docstring)."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(path)
    except OSError as exc:
        sock.close()
        sys.stderr.write("plush relay: no agent listens at {}: {}\n".format(path, exc.strerror or exc))
        return NO_AGENT
    pid = _peer_pid(sock)
    reading_stdin = True
    try:
        while True:
            watched = [sock.fileno(), stdin] if reading_stdin else [sock.fileno()]
            ready, _, _ = select.select(watched, [], [])
            if sock.fileno() in ready:
                data = sock.recv(_CHUNK)
                if not data:
                    return NO_AGENT if _agent_exited(pid, exit_wait) else 0
                _write_all(stdout, data)
            if reading_stdin and stdin in ready:
                data = os.read(stdin, _CHUNK)
                if data:
                    sock.sendall(data)
                else:  # the controller closed its side: the agent sees the end, and closes its own
                    reading_stdin = False
                    sock.shutdown(socket.SHUT_WR)
    except OSError:  # the session's pipes or the socket broke: the relay's part is over
        return 0
    finally:
        sock.close()


def main(argv: Optional[List[str]] = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2 or args[0] != "--relay":
        sys.stderr.write("usage: python3 agent.pyz --relay SOCKET\n")
        return 2
    return relay(args[1])


if __name__ == "__main__":
    sys.exit(main())
