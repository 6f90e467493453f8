"""Where controllers listen for their own CLI clients, and how a client finds one.

Role: the *place* of the control channel (:mod:`plush.api.control` is its wire format, :mod:`plush.api.server`
its server). Every controller (``plush serve``, a batch ``plush run SPEC``) takes a unique NAME and holds two
entries in the **control directory**:

- ``NAME.sock``: its Unix socket (mode 0600); only the same user may talk to it (the server checks the
  peer's uid: the socket is the authentication);
- ``NAME.json``: who it is (``name``, ``pid``, ``cwd``, ``kind``, ``started``), *locked* (``flock``) by the
  controller for its whole life. The kernel drops the lock when the process dies, so a client tells a live
  controller from the stale entry of a killed one without connecting, and the next controller taking that
  name replaces the stale entry.

The control directory is ``$XDG_RUNTIME_DIR/plush/`` (``XDG_RUNTIME_DIR`` an absolute path; it is created
0700 when missing); when ``XDG_RUNTIME_DIR`` is unset or empty, ``$TMPDIR/plush-UID/`` (``/tmp/plush-0`` for
root), as tmux does. A controller creates it 0700. Plush refuses a control directory that is a symlink, not
a directory, owned by another user, or open to group or others (:func:`dir_problem`, pure): nothing is read
from or written to it then (:class:`ControlDirError`, exit 2). Entries are opened without following
symlinks.

Names: ``[A-Za-z0-9][A-Za-z0-9._-]*``, at most 40 characters. The default is the name of the current
directory (reduced to those characters), then ``NAME-2``, ``NAME-3``, ... while the name is taken. A client
finds a controller by name (``--controller NAME``) or as *the only one started in the current directory*
(:func:`find_controller`; none: :class:`NoController`, exit 5; several: :class:`SeveralControllers`, exit 6).
A name that is not one, or is taken, is :class:`ControlNameError` (exit 2).

Standard library only, no asyncio: the client path imports this (it must start fast).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import re
import stat
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from plush.errors import PlushError

__all__ = [
    "ControlDirError",
    "ControlNameError",
    "Entry",
    "NoController",
    "Registration",
    "SeveralControllers",
    "control_dir",
    "default_name",
    "dir_problem",
    "find_controller",
    "live_controllers",
]

#: the longest path a Unix socket address holds on Linux (``sun_path`` is 108 bytes with its NUL)
MAX_SOCKET_PATH = 107
#: the longest controller name
MAX_NAME = 40
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


class ControlDirError(PlushError):
    """The control directory (or a socket path in it) cannot be used safely."""

    exit_code = 2


class ControlNameError(PlushError):
    """A controller name that is not one, or taken by a live controller."""

    exit_code = 2


class NoController(PlushError):
    """No running controller matches (none in this directory, or none of that name)."""

    exit_code = 5


class SeveralControllers(PlushError):
    """Several controllers were started in this directory: the user chooses one with ``--controller``."""

    exit_code = 6


def dir_problem(mode: int, uid: int, me: int) -> str | None:
    """Why a control directory with ``lstat`` mode ``mode`` and owner ``uid`` is refused for user ``me``; None
    when it is fine (a real directory of ``me``, no permission for group or others). Pure."""
    if stat.S_ISLNK(mode):
        return "is a symbolic link"
    if not stat.S_ISDIR(mode):
        return "is not a directory"
    if uid != me:
        return f"is owned by uid {uid}, not by this user (uid {me})"
    if mode & 0o077:
        return f"has mode {stat.S_IMODE(mode):04o}: group or others may use it (want 0700)"
    return None


def _base_dir(env: dict[str, str] | os._Environ[str]) -> tuple[Path, bool]:
    """The control directory's path and whether it lies in ``XDG_RUNTIME_DIR``."""
    runtime = env.get("XDG_RUNTIME_DIR", "")
    if runtime and os.path.isabs(runtime):
        return Path(runtime) / "plush", True
    return Path(tempfile.gettempdir()) / f"plush-{os.geteuid()}", False


def control_dir(*, create: bool, env: dict[str, str] | os._Environ[str] | None = None) -> Path | None:
    """The control directory, checked (see the module). ``create``: make it (0700, and ``XDG_RUNTIME_DIR``
    when missing) if it does not exist; else None when it does not exist. Raises :class:`ControlDirError`."""
    path, in_runtime = _base_dir(os.environ if env is None else env)
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        if not create:
            return None
        if in_runtime:
            os.makedirs(path.parent, mode=0o700, exist_ok=True)
        with contextlib.suppress(FileExistsError):  # made by another controller just now: checked below
            os.mkdir(path, 0o700)
        st = os.lstat(path)
    why = dir_problem(st.st_mode, st.st_uid, os.geteuid())
    if why is not None:
        raise ControlDirError(f"control directory {path} {why}; remove it, or set XDG_RUNTIME_DIR")
    return path


def default_name(cwd: str) -> str:
    """The default name of a controller started in ``cwd``: its last component, reduced to name characters."""
    base = re.sub(r"[^A-Za-z0-9._-]+", "-", os.path.basename(cwd.rstrip("/")))
    base = base.lstrip("._-")[:MAX_NAME].rstrip("._-")
    return base or "plush"


def check_name(name: str) -> str:
    if len(name) > MAX_NAME or not _NAME.match(name):
        raise ControlNameError(
            f"{name!r} is not a controller name: letters, digits, '.', '_', '-' (not first), at most {MAX_NAME}"
        ) from None
    return name


@dataclass(frozen=True)
class Entry:
    """A running controller, as its ``NAME.json`` says."""

    name: str
    pid: int
    cwd: str
    kind: str
    started: float
    socket: Path


def _open_entry(path: Path, flags: int) -> int:
    """Open an entry file without following a symlink; refuse one that is not a regular file of this user."""
    fd = os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid():
        os.close(fd)
        raise ControlDirError(f"{path} is not a regular file of this user; remove it")
    return fd


def _read_entry(directory: Path, info: Path) -> Entry | None:
    """The entry of a live controller (its file locked), or None (stale, unreadable, being written)."""
    try:
        fd = _open_entry(info, os.O_RDONLY)
    except (OSError, ControlDirError):
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            pass  # held by its controller: alive
        else:
            return None  # nobody holds it: the controller is gone
        data = json.loads(os.read(fd, 64 * 1024) or b"null")
        name = str(data["name"])
        return Entry(
            name=name,
            pid=int(data["pid"]),
            cwd=str(data["cwd"]),
            kind=str(data["kind"]),
            started=float(data["started"]),
            socket=directory / f"{name}.sock",
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None
    finally:
        os.close(fd)


def live_controllers(directory: Path | None = None) -> list[Entry]:
    """Every live controller of this user, by name."""
    directory = directory if directory is not None else control_dir(create=False)
    if directory is None:
        return []
    found = (_read_entry(directory, p) for p in sorted(directory.glob("*.json")))
    return sorted((e for e in found if e is not None), key=lambda e: e.name)


def _same_dir(a: str, b: str) -> bool:
    return os.path.realpath(a) == os.path.realpath(b)


def find_controller(name: str | None, cwd: str | None = None) -> Entry:
    """The controller named ``name``, or the only one started in ``cwd`` (default: the current directory)."""
    live = live_controllers()
    if name is not None:
        for entry in live:
            if entry.name == name:
                return entry
        running = ", ".join(e.name for e in live) or "none"
        raise NoController(f"no controller named {name!r} is running (running: {running})")
    cwd = cwd if cwd is not None else os.getcwd()
    here = [e for e in live if _same_dir(e.cwd, cwd)]
    if len(here) == 1:
        return here[0]
    if here:
        names = ", ".join(e.name for e in here)
        raise SeveralControllers(
            f"{len(here)} controllers were started in {cwd}: {names}; choose one with --controller NAME"
        )
    elsewhere = "; running elsewhere: " + ", ".join(f"{e.name} ({e.cwd})" for e in live) if live else ""
    raise NoController(
        f"no controller was started in {cwd}{elsewhere}; start one with 'plush serve', "
        "or choose one with --controller NAME"
    )


class Registration:
    """A controller's name, held: its locked ``NAME.json`` and the path of its socket. :meth:`take` it at start,
    :meth:`release` it at the end (the kernel releases the lock if the process dies first)."""

    def __init__(self, directory: Path, name: str, fd: int) -> None:
        self.directory = directory
        self.name = name
        self._fd: int | None = fd
        self.info_path = directory / f"{name}.json"
        self.socket_path = directory / f"{name}.sock"

    @classmethod
    def take(cls, name: str | None, *, kind: str, cwd: str | None = None) -> Registration:
        """Take ``name`` (refused when a live controller has it), or the first free default name of ``cwd``."""
        directory = control_dir(create=True)
        assert directory is not None
        cwd = cwd if cwd is not None else os.getcwd()
        if name is not None:
            candidates = [check_name(name)]
        else:
            base = default_name(cwd)
            candidates = [base] + [f"{base[: MAX_NAME - 6]}-{k}" for k in range(2, 1000)]
        for candidate in candidates:
            socket_path = directory / f"{candidate}.sock"
            if len(os.fsencode(socket_path)) > MAX_SOCKET_PATH:
                raise ControlDirError(
                    f"socket path {socket_path} is over the {MAX_SOCKET_PATH} bytes a Unix socket allows; "
                    "set XDG_RUNTIME_DIR to a shorter directory"
                )
            held = cls._lock(directory, candidate)
            if held is None:
                continue
            registration = cls(directory, candidate, held)
            registration._write(kind, cwd)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(socket_path)  # a killed controller's socket
            return registration
        taken = f"a controller named {name!r} is running already" if name is not None else "no free name"
        raise ControlNameError(f"{taken}; choose another with --name NAME")

    @staticmethod
    def _lock(directory: Path, name: str) -> int | None:
        fd = _open_entry(directory / f"{name}.json", os.O_RDWR | os.O_CREAT)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                return None
            raise
        return fd

    def _write(self, kind: str, cwd: str) -> None:
        assert self._fd is not None
        info: dict[str, Any] = {
            "name": self.name,
            "pid": os.getpid(),
            "cwd": cwd,
            "kind": kind,
            "started": time.time(),
        }
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, json.dumps(info).encode(), 0)

    def release(self) -> None:
        """Remove the socket and the entry, then drop the lock."""
        if self._fd is None:
            return
        for path in (self.socket_path, self.info_path):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
        os.close(self._fd)
        self._fd = None
