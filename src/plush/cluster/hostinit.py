"""The first program of an emulated host: its private directories, then its sshd. Standard library only.

Run as a script (``python3 -I hostinit.py --outside MNTNS --bind SRC DST ... --keep PATH ... -- PROGRAM ARGS``),
in the
host's network namespace and in a mount namespace of its own whose propagation is private (``unshare --mount
--propagation private``: nothing mounted here is seen outside). It:

1. opens every ``--bind`` source and ``--keep`` directory (before anything is mounted over them);
2. sets the host name (``--hostname``: it runs in a UTS namespace of its own);
3. bind-mounts each ``--bind SRC`` over ``DST`` (through its descriptor: the account's home, ``/tmp``,
   ``/var/tmp``, ``/etc/hosts``, ``/etc/resolv.conf``): from then on the
   host's processes see only their own files there;
4. mounts each kept directory back at its own path where a bind hid it (the host's sshd directory, and the
   directories the user shares with ``--share``), through the descriptor opened in 1;
5. replaces itself with PROGRAM (the host's sshd): its pid stays the host's first process.

Invariants: it never mounts outside its own mount namespace (it refuses to run in ``--outside``, the mount
namespace of the ``plush cluster up`` that started it);
every argument is one argv element (no shell); a failure is one line on stderr and exit status 1.
"""

from __future__ import annotations

import ctypes
import os
import sys

MS_BIND = 4096
MS_REC = 16384


def _mount(libc: ctypes.CDLL, src: str, dst: str) -> None:
    if libc.mount(src.encode(), dst.encode(), None, MS_BIND | MS_REC, None) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"mount --bind {src} {dst}: {os.strerror(err)}")


def parse(argv: list[str]) -> tuple[str, str, list[tuple[str, str]], list[str], list[str]]:
    """``--outside`` mount namespace, ``--hostname``, ``--bind SRC DST`` pairs, ``--keep PATH`` paths, and the
    program after ``--``."""
    binds: list[tuple[str, str]] = []
    keeps: list[str] = []
    outside = hostname = ""
    k = 0
    while k < len(argv) and argv[k] != "--":
        if argv[k] == "--outside" and k + 1 < len(argv):
            outside = argv[k + 1]
            k += 2
        elif argv[k] == "--hostname" and k + 1 < len(argv):
            hostname = argv[k + 1]
            k += 2
        elif argv[k] == "--bind" and k + 2 < len(argv):
            binds.append((argv[k + 1], argv[k + 2]))
            k += 3
        elif argv[k] == "--keep" and k + 1 < len(argv):
            keeps.append(argv[k + 1])
            k += 2
        else:
            raise SystemExit(f"hostinit: bad argument {argv[k]!r}")
    program = argv[k + 1 :]
    if not program or not outside:
        raise SystemExit("hostinit: no program after --, or no --outside")
    return outside, hostname, binds, keeps, program


def main(argv: list[str]) -> None:
    outside, hostname, binds, keeps, program = parse(argv)
    if os.readlink("/proc/self/ns/mnt") == outside:
        raise SystemExit("hostinit: refusing to mount in the machine's mount namespace (run it under unshare -m)")
    libc = ctypes.CDLL(None, use_errno=True)
    if hostname and libc.sethostname(hostname.encode(), len(hostname.encode())) != 0:
        raise SystemExit(f"hostinit: sethostname {hostname}: {os.strerror(ctypes.get_errno())}")
    # every source is opened before anything is mounted: a bind over /tmp may hide the next one's source
    sources = [(os.open(src, os.O_RDONLY), dst) for src, dst in binds]
    kept = [(path, os.open(path, os.O_RDONLY | os.O_DIRECTORY)) for path in keeps]
    try:
        for fd, dst in sources:
            _mount(libc, f"/proc/self/fd/{fd}", dst)
        for path, fd in kept:
            before = os.fstat(fd)
            try:
                now = os.stat(path)
                hidden = (now.st_dev, now.st_ino) != (before.st_dev, before.st_ino)
            except FileNotFoundError:
                hidden = True
            if hidden:
                os.makedirs(path, exist_ok=True)
                _mount(libc, f"/proc/self/fd/{fd}", path)
    except OSError as exc:
        raise SystemExit(f"hostinit: {exc.strerror or exc}") from exc
    finally:
        for fd in [fd for fd, _ in sources] + [fd for _, fd in kept]:
            os.close(fd)
    os.execv(program[0], program)  # noqa: S606 (argv as given: no shell)


if __name__ == "__main__":
    main(sys.argv[1:])
