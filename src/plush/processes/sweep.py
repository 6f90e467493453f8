"""What a launcher reads of a machine's processes: a host's processes, an agent's state.

Role: the ``/proc`` knowledge behind the launchers' answers to ``agent_state`` (is an agent that lost its
link dead, stopped, or still there?) and ``kill_leftovers`` (every process of one host of one run, found by
its environment: each process a host starts carries ``PLUSH_RUN_ID`` and ``PLUSH_HOST``, and the launcher's
own mark). The local launcher calls it in the controller; on an SSH host it runs there, from the agent
zipapp: ``python3 agent-<hash>.pyz --sweep RUN_ID MARK [HOST ...]`` (:func:`main`) kills what it finds and
prints the pids. Nothing above the launchers reads ``/proc``: the run engine asks its launcher.

Invariants: never signals the calling process; never raises for a process that vanished or belongs to
someone else; a system without ``/proc`` finds nothing and cannot tell (None), it does not guess.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from collections.abc import Collection
from pathlib import Path
from typing import List, Optional

__all__ = ["host_processes", "kill_host_processes", "main", "process_state"]


def process_state(pid: int) -> str | None:
    """Why local process ``pid`` cannot go on -- ``"exited"`` or ``"is stopped"`` (SIGSTOP, traced) -- or
    None when it runs (or when this system has no ``/proc`` to tell)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
    except FileNotFoundError:
        return "exited" if Path("/proc/self/stat").exists() else None
    except OSError:
        return None
    state = stat[stat.rfind(b")") + 2 :][:1]
    if state in (b"Z", b"X", b"x"):
        return "exited"
    if state in (b"T", b"t"):
        return "is stopped"
    return None


def _environ(pid: int) -> list[bytes]:
    try:
        with open(f"/proc/{pid}/environ", "rb") as fh:
            return fh.read().split(b"\0")
    except OSError:  # gone, or another user's process
        return []


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            data = fh.read()
    except OSError:
        return False
    return data[data.rfind(b")") + 2 :][:1] not in (b"Z", b"X", b"x", b"")


def host_processes(run_id: str, hosts: Collection[str] | None, *, mark: str | None = None) -> list[int]:
    """Live processes (not this one) whose environment holds ``PLUSH_RUN_ID=run_id`` and ``PLUSH_HOST=h`` for
    an ``h`` of ``hosts`` (any host of the run when ``hosts`` is None), and ``mark`` (``NAME=value``) when
    given: run ids are unique within a runs directory only, so a launcher also names its own mark (the
    sandbox token) lest it kill another controller's run of the same id. One pass over ``/proc``."""
    run = f"PLUSH_RUN_ID={run_id}".encode()
    marked = mark.encode() if mark is not None else None
    wanted = None if hosts is None else {f"PLUSH_HOST={h}".encode() for h in hosts}
    me = os.getpid()
    found = []
    try:
        names = os.listdir("/proc")
    except OSError:
        return []
    for name in names:
        if not name.isdigit() or int(name) == me:
            continue
        pid = int(name)
        env = _environ(pid)
        if (
            run in env
            and (marked is None or marked in env)
            and (wanted is None or not wanted.isdisjoint(env))
            and _alive(pid)
        ):
            found.append(pid)
    return sorted(found)


def kill_host_processes(run_id: str, hosts: Collection[str] | None, *, mark: str | None = None) -> list[int]:
    """SIGKILL every process of ``hosts`` (of every host when None) in run ``run_id`` that carries ``mark``
    (see :func:`host_processes`; a stopped one dies too); the pids signalled."""
    pids = host_processes(run_id, hosts, mark=mark)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    return pids


def main(argv: Optional[List[str]] = None) -> int:
    """``--sweep RUN_ID MARK [HOST ...]``: SIGKILL the processes of run ``RUN_ID`` carrying ``MARK``
    (``NAME=value``) of those hosts (every host without one), print their pids on one line."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) < 3 or args[0] != "--sweep":
        sys.stderr.write("usage: python3 agent.pyz --sweep RUN_ID MARK [HOST ...]\n")
        return 2
    pids = kill_host_processes(args[1], args[3:] or None, mark=args[2])
    sys.stdout.write(" ".join(str(p) for p in pids) + "\n")
    return 0
