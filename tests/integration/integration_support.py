"""Helpers of the integration tests: whole runs with real agent processes on local sandbox hosts.

Two ways to run a spec:

- :func:`run_cli` / :func:`start_cli`: ``python -m plush run SPEC --runs-dir DIR -q`` in a subprocess (its own
  session, so a test can signal it without touching pytest), with :func:`cli_env`;
- :func:`run_in_process`: the :class:`~plush.controller.api.Controller` on the test's event loop, for tests
  that watch events while the run goes on or steer it (``abort``).

Then read what the run left: :func:`run_root` (the run directory the CLI announced on its first line),
:func:`only_run` (the run directory of a runs dir that holds one run),
:func:`events` (the journal), :func:`run_processes` (every live process of a run, found in ``/proc``).

The machine running the suite may be heavily loaded (two cores shared with other test runs); liveness
detection is not what these tests check, so both ways run with generous silence/ping timeouts
(:data:`LENIENT`). Nothing here sleeps to synchronise: :func:`wait_until` polls a condition with a deadline.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from plush.config import Settings
from plush.controller.api import Controller, RunResult
from plush.controller.events import Event
from plush.controller.journal import read_events

#: liveness settings for a loaded test machine (the defaults are 2 s of silence + 1 s for a pong)
LENIENT: dict[str, float] = {"silence_timeout": 20.0, "ping_timeout": 10.0}

#: bound of every run of the suite (a hung run fails its test instead of the whole session)
RUN_TIMEOUT = 150.0


def write_spec(directory: Path, text: str, name: str = "spec.yaml") -> Path:
    path = directory / name
    path.write_text(text)
    return path


def cli_env(**extra: str) -> dict[str, str]:
    """The environment of a CLI subprocess: ours (already isolated by the conftests) plus lenient liveness."""
    env = dict(os.environ)
    env.update({f"PLUSH_{k.upper()}": str(v) for k, v in LENIENT.items()})
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.update(extra)
    return env


def _cli_argv(spec: Path, runs_dir: Path, args: Iterable[str]) -> list[str]:
    return [sys.executable, "-m", "plush", "run", str(spec), "--runs-dir", str(runs_dir), *args]


def run_cli(
    spec: Path, runs_dir: Path, *args: str, env: dict[str, str] | None = None, timeout: float = RUN_TIMEOUT
) -> subprocess.CompletedProcess[str]:
    """Run ``plush run SPEC`` to its end; stdout and stderr captured as text."""
    return subprocess.run(
        _cli_argv(spec, runs_dir, args),
        env=env or cli_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        start_new_session=True,
    )


def start_cli(spec: Path, runs_dir: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """Start ``plush run SPEC`` in its own session; the caller signals, waits and reads it."""
    return subprocess.Popen(
        _cli_argv(spec, runs_dir, args),
        env=env or cli_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def interrupt(proc: subprocess.Popen[str], timeout: float = 60.0) -> tuple[int, str, str]:
    """Send one SIGINT (a Ctrl-C) to the CLI; its exit status, stdout and stderr."""
    proc.send_signal(signal.SIGINT)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        _, err = proc.communicate()
        raise AssertionError(f"plush did not stop within {timeout}s of a SIGINT:\n{err}") from None
    return proc.returncode, out, err


def kill_session(proc: subprocess.Popen[str]) -> None:
    """Clean-up after a failed test: SIGKILL the CLI's session (the agents lead their own groups)."""
    if proc.returncode is None:  # not yet reaped by communicate()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()  # reap it and close the pipes


def wait_until(condition: Callable[[], Any], timeout: float, what: str, *, proc: Any = None) -> Any:
    """Poll ``condition`` until it returns something true; fail after ``timeout`` seconds (or if ``proc`` ends)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            out, err = proc.communicate()
            raise AssertionError(f"plush exited ({proc.returncode}) before {what}:\n{out}\n{err}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


_STARTED = re.compile(r"plush: run (\d{8}-\d{6}-\S+): results in (.+)")


def run_root(stderr: str) -> Path:
    """The run directory the CLI announced on its first line (``plush: run <id>: results in <dir>``)."""
    first_line = stderr.splitlines()[0] if stderr else ""
    match = _STARTED.fullmatch(first_line)
    assert match, f"no 'plush: run <id>: results in <dir>' first line in:\n{stderr}"
    assert Path(match[2]).name == match[1]
    return Path(match[2])


def only_run(runs_dir: Path) -> Path:
    """The one run directory under ``runs_dir``."""
    runs = [p for p in runs_dir.iterdir() if p.is_dir()]
    assert len(runs) == 1, runs
    return runs[0]


def events(run_root: Path, name: str | None = None) -> list[Event]:
    return read_events(run_root / "journal.sqlite", name=name)


def first(evs: Iterable[Event], name: str, **match: Any) -> Event:
    for ev in evs:
        if ev.name == name and all(getattr(ev, k, None) == v or ev.data.get(k) == v for k, v in match.items()):
            return ev
    raise AssertionError(f"no event {name} {match}")


def _read(path: str) -> bytes:
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except OSError:
        return b""


def _alive(pid: int) -> bool:
    stat = _read(f"/proc/{pid}/stat")
    if not stat:
        return False
    return stat[stat.rfind(b")") + 2 :][:1] not in (b"Z", b"X", b"x")


def pid_alive(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie is dead: it only waits for its parent)."""
    return _alive(pid)


def _under(path: str, root: str) -> bool:
    return path == root or path.startswith(root + "/")


def _touches(pid: int, root: str) -> bool:
    """Whether ``pid`` works in (cwd) or holds a file open under ``root``."""
    try:
        if _under(os.readlink(f"/proc/{pid}/cwd"), root):
            return True
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return False
    for fd in fds:
        try:
            if _under(os.readlink(f"/proc/{pid}/fd/{fd}"), root):
                return True
        except OSError:
            continue
    return False


def run_processes(run_id: str, run_root: Path) -> list[tuple[int, str]]:
    """Live processes of a run (not this one): the environment holds ``PLUSH_RUN_DIR`` inside ``run_root``, or
    the command line names the run directory, or the process works in it or holds a file open in it (agents
    forked by the launcher's zygote show the zygote's command line, but work in their host's directory and
    write their log there). ``run_id`` alone would not do: ids are unique only within one runs directory,
    and other test sessions on this machine may run a run of the same id at the same time."""
    assert run_root.name == run_id, (run_root, run_id)
    root = str(run_root)
    needle = f"PLUSH_RUN_DIR={root}/".encode()
    me = os.getpid()
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == me:
            continue
        pid = int(name)
        cmdline = _read(f"/proc/{pid}/cmdline")
        environ = _read(f"/proc/{pid}/environ")
        ours = (
            any(v.startswith(needle) for v in environ.split(b"\0")) or root.encode() in cmdline or _touches(pid, root)
        )
        if ours and _alive(pid):
            found.append((pid, cmdline.replace(b"\0", b" ").decode(errors="replace")))
    return found


async def run_in_process(
    spec: Path,
    runs_dir: Path,
    *,
    hosts: dict[str, int] | None = None,
    on_controller: Callable[[Controller], Any] | None = None,
    pool: Any = None,
    **settings: Any,
) -> RunResult:
    """Run ``spec`` with a Controller on this event loop (on ``pool``'s hosts when given); ``on_controller`` may
    start watchers first."""
    controller = Controller(Settings(runs_dir=str(runs_dir), **{**LENIENT, **settings}))
    project = controller.load(spec)
    if on_controller is not None:
        on_controller(controller)
    return await controller.run(project, hosts=hosts, pool=pool)
