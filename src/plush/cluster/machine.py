"""The thin I/O of ``plush cluster``: commands run as argv lists, the processes of a network namespace, signals.

Invariants: no shell anywhere (``subprocess.run`` with a list); a command that fails is a ClusterError naming it
and its stderr; the processes of a host are found by their network namespace (``/proc/PID/ns/net`` is the inode
of ``/run/netns/NS``, as ``ip netns pids`` finds them), so every process a host's sshd started -- sessions,
agents, the application's processes -- is found, wherever it was reparented.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from plush.cluster.plan import ClusterError

__all__ = ["NETNS_DIR", "kill_all", "mem_total", "netns_pids", "require_root", "run", "signal_all"]

NETNS_DIR = Path("/run/netns")
#: the tools ``up`` needs -> where they come from
TOOLS = {"ip": "iproute2", "unshare": "util-linux", "setsid": "util-linux", "ssh-keygen": "openssh-client"}
SSHD = "/usr/sbin/sshd"


def require_root() -> None:
    """ClusterError (exit 2) unless this process is root."""
    if os.geteuid() != 0:
        raise ClusterError(
            "plush cluster needs root: it creates network namespaces, a bridge, veths and an sshd per host "
            "(run it as root, e.g. sudo plush cluster ...)",
            exit_code=2,
        )


def require_tools() -> None:
    """ClusterError (exit 2) naming the first missing tool and its package."""
    for tool, package in TOOLS.items():
        if shutil.which(tool) is None:
            raise ClusterError(f"{tool} not found: install {package}", exit_code=2)
    if not os.access(SSHD, os.X_OK):
        raise ClusterError(
            f"{SSHD} not found: install openssh-server (apt-get install openssh-server; no sshd is started "
            "system-wide by plush)",
            exit_code=2,
        )


def run(argv: Sequence[str], *, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run ``argv``; ClusterError with its stderr when it fails (and ``check``)."""
    done = subprocess.run(list(argv), capture_output=True, text=True, check=False, stdin=subprocess.DEVNULL)
    if check and done.returncode != 0:
        err = (done.stderr or done.stdout).strip().splitlines()
        raise ClusterError(f"{' '.join(argv)} failed (exit {done.returncode}): {err[-1] if err else 'no message'}")
    return done


def spawn_detached(argv: Sequence[str], log: Path) -> None:
    """Start ``argv`` in a session of its own, reparented to init at once (``setsid --fork``): nothing of it
    is a child of this process; its output goes to ``log``."""
    with open(log, "ab") as out:
        subprocess.run(
            ["setsid", "--fork", *argv], stdin=subprocess.DEVNULL, stdout=out, stderr=out, check=True, timeout=30
        )


def networks_in_use() -> list[str]:
    """The IPv4 addresses (with their prefix) and routes of the root namespace."""
    found: list[str] = []
    for item in json.loads(run(["ip", "-j", "-4", "addr", "show"]).stdout or "[]"):
        found += [f"{a['local']}/{a['prefixlen']}" for a in item.get("addr_info", []) if "local" in a]
    for route in json.loads(run(["ip", "-j", "-4", "route", "show", "table", "all"]).stdout or "[]"):
        dst = route.get("dst", "")
        if dst and dst != "default" and route.get("type", "unicast") == "unicast":
            found.append(dst)
    return found


def namespaces() -> list[str]:
    """The named network namespaces of this machine."""
    try:
        return sorted(p.name for p in NETNS_DIR.iterdir())
    except OSError:
        return []


def link_exists(name: str) -> bool:
    return Path("/sys/class/net", name).exists()


def links() -> list[str]:
    try:
        return sorted(p.name for p in Path("/sys/class/net").iterdir())
    except OSError:
        return []


def link_is_up(name: str) -> bool:
    try:
        flags = int(Path("/sys/class/net", name, "flags").read_text(), 16)
    except (OSError, ValueError):
        return False
    return bool(flags & 1)


def netns_pids(netns: str) -> list[int]:
    """Every process whose network namespace is ``netns`` (none when it does not exist)."""
    return pids_by_netns([netns]).get(netns, [])


def pids_by_netns(spaces: Sequence[str]) -> dict[str, list[int]]:
    """The processes of each namespace of ``spaces`` (one pass over /proc)."""
    inodes = {}
    for ns in spaces:
        try:
            st = os.stat(NETNS_DIR / ns)
        except OSError:
            continue
        inodes[(st.st_ino, st.st_dev)] = ns
    found: dict[str, list[int]] = {ns: [] for ns in inodes.values()}
    if not inodes:
        return found
    me = os.getpid()
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit() or int(entry.name) == me:
            continue
        try:
            st = os.stat(f"/proc/{entry.name}/ns/net")
        except OSError:
            continue
        owner = inodes.get((st.st_ino, st.st_dev))
        if owner is not None:
            found[owner].append(int(entry.name))
    return found


def signal_all(netns: str, sig: signal.Signals) -> int:
    """Send ``sig`` to every process of ``netns``, again to those born meanwhile, until a pass finds no new
    process (so a process forked while the others are being stopped is stopped too). The count signalled."""
    done: set[int] = set()
    while True:
        new = [p for p in netns_pids(netns) if p not in done]
        if not new:
            return len(done)
        for pid in new:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
            done.add(pid)


def kill_all(spaces: Sequence[str], timeout: float = 10.0) -> None:
    """SIGKILL every process of each namespace of ``spaces`` until none is left; ClusterError when some outlive
    ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        alive = [p for pids in pids_by_netns(spaces).values() for p in pids if not _zombie(p)]
        if not alive:
            return
        for pid in alive:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if time.monotonic() > deadline:
            raise ClusterError(f"processes {alive[:10]} of {', '.join(spaces)} did not end on SIGKILL")
        time.sleep(0.02)


def _zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rpartition(")")[2].split()[0] in ("Z", "X")


def mem_total() -> int:
    """This machine's memory in bytes (``MemTotal`` of ``/proc/meminfo``), 0 when unknown."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def keygen(path: Path, comment: str) -> str:
    """A new ed25519 key at ``path`` (no passphrase); its public line."""
    path.unlink(missing_ok=True)
    Path(f"{path}.pub").unlink(missing_ok=True)
    run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)])
    return Path(f"{path}.pub").read_text()


def wait_listening(spaces: Mapping[str, str], port: int, timeout: float) -> list[str]:
    """Wait until something accepts TCP at each address:port of ``spaces`` (address -> its namespace); the
    addresses that did not within ``timeout``, or at once those whose namespace has no process left (after a
    second: the first process may still be on its way in)."""
    todo = list(spaces)
    start = time.monotonic()
    deadline = start + timeout
    while todo and time.monotonic() < deadline:
        left = []
        for address in todo:
            if time.monotonic() > start + 1 and not netns_pids(spaces[address]):
                return [address]
            try:
                with socket.create_connection((address, port), timeout=0.5):
                    pass
            except OSError:
                left.append(address)
        todo = left
        if todo:
            time.sleep(0.05)
    return todo
