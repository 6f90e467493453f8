"""Process trees on a host: find every process of an instance, kill them all, leave no orphan behind.

Each process the runner starts leads its own session (so its process group id is its pid) and carries
``PLUSH_INSTANCE_TAG=<token>`` in its environment. Descendants inherit both, except that a daemon which
calls ``setsid`` leaves the group; it still carries the tag, so :func:`kill_tree` finds it by reading
``/proc/<pid>/environ``. A program that scrubs its environment *and* leaves the session escapes the tag
scan; for those the agent enables :func:`enable_subreaper`, so orphans reparent to the agent, and
:func:`reap_all_descendants` walks ``/proc`` ppid links at shutdown.

A process group id is the pid of its (possibly dead) leader; the kernel does not hand that number to a
new process while any member of the group lives, so signalling a group only misfires after the whole group
is gone and the pid was reused by a new session leader -- a window the callers keep short by killing a
tree promptly after its leader exited.

Invariants: these functions never signal the calling process itself, never raise for a process that
vanished or belongs to someone else (races are normal here), and ignore zombies (already dead, nothing
to kill; their environ reads empty). Without ``/proc`` (not Linux) only the process group is handled.
:func:`find_with_env` and :func:`terminate` serve the watchers that outlive an agent (its guard, the next
``plush`` command): they find processes by any ``NAME=value`` of their environment and end them.
Standard library only, Python 3.8 syntax; synchronous (a ``/proc`` scan takes about a millisecond).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
import time
from dataclasses import dataclass
from typing import Callable, Collection, Dict, Iterator, List, Optional, Set

__all__ = [
    "PROC",
    "TAG_VARIABLE",
    "ProcInfo",
    "descendants",
    "enable_subreaper",
    "find_tagged",
    "find_with_env",
    "has_children",
    "kill_tree",
    "proc_available",
    "reap_all_descendants",
    "reap_zombies",
    "scan",
    "terminate",
    "tree_members",
]

#: the environment variable that marks every process of one instance
TAG_VARIABLE = "PLUSH_INSTANCE_TAG"
PROC = "/proc"
_PR_SET_CHILD_SUBREAPER = 36


@dataclass(frozen=True)
class ProcInfo:
    """One line of ``/proc/<pid>/stat``: what a tree walk needs."""

    pid: int
    ppid: int
    pgid: int
    state: str  # R, S, D, Z, T, ... (see proc(5))

    @property
    def alive(self) -> bool:
        return self.state not in ("Z", "X", "x")


def proc_available() -> bool:
    return os.path.isfile(os.path.join(PROC, "self", "stat"))


def _read_stat(pid: int) -> Optional[ProcInfo]:
    try:
        with open(os.path.join(PROC, str(pid), "stat"), "rb") as f:
            data = f.read()
    except OSError:
        return None
    # the command name may hold spaces and parentheses: the fields start after the last ')'
    rest = data[data.rfind(b")") + 2 :].split()
    try:
        return ProcInfo(pid=pid, ppid=int(rest[1]), pgid=int(rest[2]), state=rest[0].decode("ascii", "replace"))
    except (IndexError, ValueError):
        return None


def scan() -> Iterator[ProcInfo]:
    """Every process visible in ``/proc`` (nothing without ``/proc``)."""
    try:
        names = os.listdir(PROC)
    except OSError:
        return
    for name in names:
        if name.isdigit():
            info = _read_stat(int(name))
            if info is not None:
                yield info


def _has_tag(pid: int, needle: bytes) -> bool:
    try:
        with open(os.path.join(PROC, str(pid), "environ"), "rb") as f:
            environ = f.read()
    except OSError:  # gone, or another user's process
        return False
    return needle in environ and needle in environ.split(b"\0")


def _needle(tag: str, variable: str = TAG_VARIABLE) -> bytes:
    if not tag or "\0" in tag or "=" in tag:
        raise ValueError("bad tag {!r}".format(tag))
    return (variable + "=" + tag).encode()


def find_tagged(tag: str) -> List[int]:
    """Live processes whose environment carries ``PLUSH_INSTANCE_TAG=<tag>`` (not this process)."""
    needle = _needle(tag)
    me = os.getpid()
    return sorted(p.pid for p in scan() if p.alive and p.pid != me and _has_tag(p.pid, needle))


def find_with_env(variable: str, value: str) -> List[int]:
    """Live processes (not this one) whose environment holds ``variable=value`` (``[]`` without /proc)."""
    needle = _needle(value, variable)
    me = os.getpid()
    return sorted(p.pid for p in scan() if p.alive and p.pid != me and _has_tag(p.pid, needle))


def terminate(find: Callable[[], List[int]], grace: float, *, poll: float = 0.05, kill_for: float = 5.0) -> List[int]:
    """End every process that ``find()`` returns: SIGTERM (and SIGCONT, so that a stopped one can act on
    it), up to ``grace`` seconds for them to go, then SIGKILL until ``find()`` is empty or ``kill_for``
    seconds passed. Synchronous (polls every ``poll`` seconds); returns every pid signalled."""
    found = find()
    signalled: Set[int] = set()
    for sig in (signal.SIGTERM, signal.SIGCONT):
        signalled.update(pid for pid in found if _signal_pid(pid, sig))
    deadline = time.monotonic() + grace
    while found and time.monotonic() < deadline:
        time.sleep(poll)
        found = find()
    deadline = time.monotonic() + kill_for
    while found:
        signalled.update(pid for pid in found if _signal_pid(pid, signal.SIGKILL))
        if time.monotonic() >= deadline:
            break
        time.sleep(poll)
        found = find()
    return sorted(signalled)


def tree_members(tag: str, pgid: Optional[int]) -> List[int]:
    """Live processes of an instance: in process group ``pgid`` or carrying ``tag`` (one ``/proc`` pass).

    Without ``/proc``, returns ``[pgid]`` while the group exists, else ``[]``.
    """
    if not proc_available():
        if pgid is None or pgid <= 1:
            return []
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return []
        except PermissionError:
            pass
        return [pgid]
    needle = _needle(tag)
    me = os.getpid()
    found = []
    for p in scan():
        if not p.alive or p.pid == me:
            continue
        if (pgid is not None and p.pgid == pgid) or _has_tag(p.pid, needle):
            found.append(p.pid)
    return sorted(found)


def _signal_pid(pid: int, sig: int) -> bool:
    if pid == os.getpid() or pid <= 1:
        return False
    try:
        os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def kill_tree(tag: str, pgid: Optional[int], sig: int = signal.SIGKILL) -> List[int]:
    """Send ``sig`` to process group ``pgid`` and to every live process carrying ``tag``.

    Returns the pids signalled individually (the group is signalled as a whole). Never signals the caller's
    own group or the caller itself.
    """
    if pgid is not None and pgid > 1 and pgid != os.getpgid(0):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, sig)
    if not proc_available():
        return []
    return [pid for pid in tree_members(tag, pgid) if _signal_pid(pid, sig)]


def descendants(pid: int) -> List[int]:
    """Every live process below ``pid`` by ppid links, parents before children (``[]`` without /proc)."""
    children: Dict[int, List[int]] = {}
    alive: Set[int] = set()
    for p in scan():
        children.setdefault(p.ppid, []).append(p.pid)
        if p.alive:
            alive.add(p.pid)
    out: List[int] = []
    todo = list(children.get(pid, ()))
    seen = {pid}
    while todo:
        child = todo.pop(0)
        if child in seen:
            continue
        seen.add(child)
        if child in alive:
            out.append(child)
        todo.extend(children.get(child, ()))
    return out


def reap_zombies(exclude: Collection[int] = ()) -> List[int]:
    """Reap zombie children of this process that nobody waits for (orphans adopted as subreaper).

    ``exclude`` names children whose status someone else collects (asyncio's child watcher), so that this
    never steals an exit status. Returns the pids reaped.
    """
    me = os.getpid()
    reaped = []
    for p in scan():
        if p.ppid != me or p.alive or p.pid in exclude:
            continue
        try:
            pid, _ = os.waitpid(p.pid, os.WNOHANG)
        except ChildProcessError:
            continue
        if pid:
            reaped.append(pid)
    return reaped


def reap_all_descendants(sig: int = signal.SIGKILL, exclude: Collection[int] = ()) -> List[int]:
    """Signal every live descendant of this process (shutdown: nothing must survive the agent).

    Children first found are signalled top-down; the walk repeats a few times to catch processes forked
    in the meantime. Returns the pids signalled. Zombie orphans are reaped (except ``exclude``).
    """
    signalled: List[int] = []
    for _ in range(5):
        batch = [pid for pid in descendants(os.getpid()) if pid not in signalled and _signal_pid(pid, sig)]
        if not batch:
            break
        signalled.extend(batch)
    reap_zombies(exclude)
    return signalled


def has_children() -> bool:
    """False only when this process has no child at all, live or zombie (then, as a subreaper, it has no
    descendant left either: orphans of its descendants re-parent to it). True when it cannot tell."""
    try:
        os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)  # reaps nothing
    except ChildProcessError:
        return False
    except (AttributeError, OSError):  # no waitid (not POSIX): walk to be sure
        return True
    return True


def enable_subreaper() -> bool:
    """Make this process the reaper of orphaned descendants (Linux ``PR_SET_CHILD_SUBREAPER``).

    Best effort: returns False where the call is unavailable. Orphans then become zombies of this process
    until reaped: call :func:`reap_zombies` now and then.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return int(libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False
