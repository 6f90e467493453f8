"""The first program of an emulated host: its file system and private directories, then its sshd. Standard
library only.

Run as a script (``python3 -I hostinit.py --outside MNTNS [--tmpfs NAME PATH BYTES] [--mkdir PATH MODE ...]
--bind SRC DST ... --keep PATH ... -- PROGRAM ARGS``), in the host's network namespace and in a mount namespace
of its own whose propagation is private (``unshare --mount --propagation private``: nothing mounted here is seen
outside, and every mount goes with the namespace's last process). It:

1. sets the host name (``--hostname``: it runs in a UTS namespace of its own);
2. mounts a tmpfs named NAME of BYTES on each ``--tmpfs`` PATH (an empty directory of the host's state
   directory: the host's own file system), first, before any bind can hide PATH;
3. makes each ``--mkdir PATH`` with MODE (octal, whatever the umask): the home, tmp and var-tmp in the tmpfs;
4. opens every ``--bind`` source and ``--keep`` directory (before anything is bound over them);
5. bind-mounts each ``--bind SRC`` over ``DST`` (through its descriptor: the account's home, ``/tmp``,
   ``/var/tmp``, ``/etc/hosts``, ``/etc/resolv.conf``): from then on the
   host's processes see only their own files there;
6. mounts each kept directory back at its own path where a bind hid it (the host's sshd directory, and the
   directories the user shares with ``--share``), through the descriptor opened in 4;
7. replaces itself with PROGRAM (the host's sshd): its pid stays the host's first process.

Invariants: it never mounts outside its own mount namespace (it refuses to run in ``--outside``, the mount
namespace of the ``plush cluster up`` that started it);
every argument is one argv element (no shell); a failure is one line on stderr and exit status 1.
"""

from __future__ import annotations

import ctypes
import os
import sys
from dataclasses import dataclass, field

MS_BIND = 4096
MS_REC = 16384


@dataclass
class Args:
    """What the command line asks for (see the module docstring)."""

    outside: str = ""
    hostname: str = ""
    #: (name, path, bytes) of each tmpfs
    tmpfs: list[tuple[str, str, int]] = field(default_factory=list)
    #: (path, mode) of each directory to make
    mkdirs: list[tuple[str, int]] = field(default_factory=list)
    binds: list[tuple[str, str]] = field(default_factory=list)
    keeps: list[str] = field(default_factory=list)
    program: list[str] = field(default_factory=list)


def _mount(libc: ctypes.CDLL, src: str, dst: str) -> None:
    if libc.mount(src.encode(), dst.encode(), None, MS_BIND | MS_REC, None) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"mount --bind {src} {dst}: {os.strerror(err)}")


def _mount_tmpfs(libc: ctypes.CDLL, name: str, path: str, size: int) -> None:
    options = f"size={size},mode=0700"
    if libc.mount(name.encode(), path.encode(), b"tmpfs", 0, options.encode()) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"mount -t tmpfs -o {options} {name} {path}: {os.strerror(err)}")


def _why(exc: OSError) -> str:
    return f"{exc.strerror or exc}" + (f": {exc.filename}" if exc.filename else "")


def parse(argv: list[str]) -> Args:
    """The command line (see the module docstring); SystemExit naming a bad argument."""
    args = Args()
    k = 0
    try:
        while k < len(argv) and argv[k] != "--":
            word, rest = argv[k], argv[k + 1 :]
            if word == "--outside" and rest:
                args.outside, k = rest[0], k + 2
            elif word == "--hostname" and rest:
                args.hostname, k = rest[0], k + 2
            elif word == "--tmpfs" and len(rest) >= 3:
                args.tmpfs.append((rest[0], rest[1], int(rest[2])))
                k += 4
            elif word == "--mkdir" and len(rest) >= 2:
                args.mkdirs.append((rest[0], int(rest[1], 8)))
                k += 3
            elif word == "--bind" and len(rest) >= 2:
                args.binds.append((rest[0], rest[1]))
                k += 3
            elif word == "--keep" and rest:
                args.keeps.append(rest[0])
                k += 2
            else:
                raise SystemExit(f"hostinit: bad argument {word!r}")
    except ValueError as exc:
        raise SystemExit(f"hostinit: bad number after {argv[k]!r}: {exc}") from exc
    args.program = argv[k + 1 :]
    if not args.program or not args.outside:
        raise SystemExit("hostinit: no program after --, or no --outside")
    return args


def main(argv: list[str]) -> None:
    args = parse(argv)
    if os.readlink("/proc/self/ns/mnt") == args.outside:
        raise SystemExit("hostinit: refusing to mount in the machine's mount namespace (run it under unshare -m)")
    libc = ctypes.CDLL(None, use_errno=True)
    name = args.hostname.encode()
    if name and libc.sethostname(name, len(name)) != 0:
        raise SystemExit(f"hostinit: sethostname {args.hostname}: {os.strerror(ctypes.get_errno())}")
    try:
        # the tmpfs first: a bind over /tmp or the home may hide its directory
        for fs_name, path, size in args.tmpfs:
            _mount_tmpfs(libc, fs_name, path, size)
        for path, mode in args.mkdirs:
            os.mkdir(path, mode)
            os.chmod(path, mode)
    except OSError as exc:
        raise SystemExit(f"hostinit: {_why(exc)}") from exc
    # every source is opened before anything is bound: a bind over /tmp may hide the next one's source
    sources: list[tuple[int, str]] = []
    kept: list[tuple[str, int]] = []
    try:
        for src, dst in args.binds:
            sources.append((os.open(src, os.O_RDONLY), dst))
        for path in args.keeps:
            kept.append((path, os.open(path, os.O_RDONLY | os.O_DIRECTORY)))
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
        raise SystemExit(f"hostinit: {_why(exc)}") from exc
    finally:
        for fd in [fd for fd, _ in sources] + [fd for _, fd in kept]:
            os.close(fd)
    os.execv(args.program[0], args.program)  # noqa: S606 (argv as given: no shell)


if __name__ == "__main__":
    main(sys.argv[1:])
