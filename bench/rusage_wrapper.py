"""Run the ``plush`` CLI in this process and report its own CPU time and peak RSS as JSON at exit.

    python bench/rusage_wrapper.py OUT.json [--profile OUT.prof] [--patch NAME ...] -- run SPEC ...

Role: the controller process of one benchmark run. ``resource.getrusage(RUSAGE_SELF)`` is the controller's
CPU and peak RSS alone; ``RUSAGE_CHILDREN`` is everything it reaped (the warm-up interpreter and every agent,
and, through them, the application's processes). Agents are children of the controller, so measuring the
controller from outside (``RUSAGE_CHILDREN`` of the bench) would mix the two.

It also times a few controller steps by wrapping them (``probes``: the warm-up import, each phase of the
stop, the journal's flushes, the handling of ``join``), and ``--patch NAME`` applies a candidate fix in this
process (see :data:`PATCHES`) so a recommendation can be verified without editing ``src/``.

Invariants: the JSON file is written whatever happens (exit, exception, ``sys.exit``), and the CLI's exit
status is passed on unchanged. Nothing here is imported by the package or the tests.
"""

from __future__ import annotations

import argparse
import cProfile
import functools
import json
import resource
import sys
import time
from collections.abc import Callable
from typing import Any

Probes = dict[str, list[float]]


def _timed_async(probes: Probes, name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(func)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        t = time.perf_counter()
        try:
            return await func(*args, **kwargs)
        finally:
            probes.setdefault(name, []).append(time.perf_counter() - t)

    return wrapper


def _timed(probes: Probes, name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        t = time.perf_counter()
        try:
            return func(*args, **kwargs)
        finally:
            probes.setdefault(name, []).append(time.perf_counter() - t)

    return wrapper


def install_probes(probes: Probes) -> None:
    """Wrap the controller steps whose cost the benchmark reports separately."""
    from plush.controller import install, journal, mesh
    from plush.fabric import listener
    from plush.launch import local

    local.LocalLauncher.warm_up = _timed_async(probes, "warm_up", local.LocalLauncher.warm_up)  # type: ignore[method-assign]
    local.LocalLauncher.stop_all = _timed_async(probes, "launcher_stop_all", local.LocalLauncher.stop_all)  # type: ignore[method-assign]
    mesh.Mesh._until_settled = _timed_async(probes, "stop_messages", mesh.Mesh._until_settled)  # type: ignore[method-assign]
    listener.ControllerListener.close = _timed_async(probes, "listener_close", listener.ControllerListener.close)  # type: ignore[method-assign]
    mesh.Mesh._on_join = _timed(probes, "on_join", mesh.Mesh._on_join)  # type: ignore[method-assign]
    install.Installer.prepare = _timed(probes, "prepare", install.Installer.prepare)  # type: ignore[method-assign]
    journal.Journal.flush = _timed(probes, "journal_flush", journal.Journal.flush)  # type: ignore[method-assign]


# --- candidate fixes, applied in the controller process only --------------------------------------------


def _patch_no_hostmon_journal() -> None:
    """Drop ``host.sample`` events (one per host every hostmon_interval) from the journal."""
    from plush.controller import healing

    healing.Healer.on_hostmon = lambda self, slot, msg: None  # type: ignore[method-assign]


def _patch_spawn() -> None:
    """The launcher as it was before the zygote: one interpreter per agent (``fork_server=False``), to
    compare the two ways of starting agents in the same tree."""
    from plush.launch import local

    original = local.LocalLauncher.__init__

    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("fork_server", False)
        original(self, *args, **kwargs)

    local.LocalLauncher.__init__ = init  # type: ignore[method-assign]


#: candidate fixes by name (``--patch NAME``)
PATCHES: dict[str, Callable[[], None]] = {
    "spawn": _patch_spawn,
    "no-hostmon-journal": _patch_no_hostmon_journal,
}


def _rusage(who: int) -> dict[str, float]:
    r = resource.getrusage(who)
    return {"user": r.ru_utime, "sys": r.ru_stime, "maxrss_kb": float(r.ru_maxrss)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("out", help="where to write the JSON report")
    parser.add_argument("--profile", help="write a cProfile of the controller here")
    parser.add_argument("--patch", action="append", default=[], choices=sorted(PATCHES))
    argv = list(sys.argv[1:] if argv is None else argv)
    split = argv.index("--") if "--" in argv else len(argv)
    args = parser.parse_args(argv[:split])
    cli_args = argv[split + 1 :]
    t0 = time.monotonic()
    from plush.shell.commands import main as plush_main

    imported = time.monotonic() - t0
    probes: Probes = {}
    for name in args.patch:  # before the probes, so that a patched step is timed too
        PATCHES[name]()
    install_probes(probes)
    code: int = 0
    profiler = cProfile.Profile() if args.profile else None
    try:
        if profiler is not None:
            profiler.enable()
        plush_main(cli_args)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:
        code = 99
        raise
    finally:
        if profiler is not None:
            profiler.disable()
            profiler.dump_stats(args.profile)
        report = {
            "exit_code": code,
            "wall": time.monotonic() - t0,
            "cli_import": imported,
            "self": _rusage(resource.RUSAGE_SELF),
            "children": _rusage(resource.RUSAGE_CHILDREN),
            "probes": probes,
            "patches": args.patch,
        }
        with open(args.out, "w", encoding="utf-8") as fh:
            json.dump(report, fh, indent=1)
    return code


if __name__ == "__main__":
    sys.exit(main())
