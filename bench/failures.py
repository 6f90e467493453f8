"""Failure detection and recovery times on local hosts (issue 4), medians over repeated runs.

Scenarios, each a real run of a Controller in this process with real agents (``--repeat`` times each):

- **kill**: 2 hosts; ``kill -9`` of local-1's agent -> ``host.failed`` (*kill->failed*); the host is restarted
  in place -> its first ``process.started`` (*failed->restarted running*); ``kill -9`` of the new agent ->
  ``host.failed`` -> ``host.rematched`` to local-3 -> local-3's first ``process.started`` (*failed->replacement
  running*);
- **stop**: 2 hosts; ``SIGSTOP`` of local-1's agent -> ``host.failed`` (*stop->failed*), found by liveness
  (silence, ping, no pong) with the settings given (defaults: heartbeat 1 s, silence 2 s, ping 1 s);
- **mass**: 100 hosts; once all run, ``kill -9`` of 20 agents at once -> all 20 restarted hosts running
  their process again (*20/100 recovered*).

Times are taken from the events' wall-clock stamps (``Event.at``) against ``time.time()`` at the signal.
Results: printed, and ``bench/results/failures.json``. Targets (issue 4): detection <= 2 heartbeat
intervals; 20-of-100 recovery under 10 s.

    .venv/bin/python bench/failures.py                  # 5 runs of each scenario (about 2 minutes)
    .venv/bin/python bench/failures.py --repeat 3 --set silence_timeout=1 --set ping_timeout=0.5
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import platform
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from plush.config import Settings
from plush.controller.api import Controller
from plush.controller.events import Event, Subscription
from plush.spec.load import load_spec

SPEC = """\
project: bench-failures
components:
  w:
    hosts: {{min: 1, max: {max}}}
application:
  execution:
    w:
      blocks:
        - process: wait
          run: [sh, -c, 'while [ ! -e "$PLUSH_RUN_DIR/release" ]; do sleep 0.2; done']
"""


class Events:
    def __init__(self, sub: Subscription) -> None:
        self.sub = sub

    async def until(self, pred: Callable[[Event], bool], timeout: float = 120.0) -> Event:
        deadline = time.monotonic() + timeout
        while True:
            ev = await asyncio.wait_for(self.sub.get(), max(0.0, deadline - time.monotonic()))
            if ev is None or ev.name == "run.finished":
                raise RuntimeError(f"the run ended early: {ev}")
            if pred(ev):
                return ev


def _is(name: str, **match: Any) -> Callable[[Event], bool]:
    return lambda e: e.name == name and all(getattr(e, k, None) == v for k, v in match.items())


async def _run(
    settings: Settings, hosts: int, maximum: int, scenario: Callable[[Controller, Events], Awaitable[dict[str, float]]]
) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="plush-bench-failures-") as tmp:
        spec = Path(tmp) / "spec.yaml"
        spec.write_text(SPEC.format(max=maximum))
        controller = Controller(Settings(**{**_fields(settings), "runs_dir": str(Path(tmp) / "runs")}))
        project = load_spec(spec)
        events = Events(controller.subscribe())
        run = asyncio.create_task(controller.run(project, hosts={"w": hosts}))
        try:
            await events.until(_is("run.started"))
            result = await scenario(controller, events)
            assert controller.engine is not None
            (controller.engine.rundir.shared / "release").touch()
            outcome = await asyncio.wait_for(run, 120)
            result["ok"] = float(outcome.ok)
            return result
        finally:
            if not run.done():
                controller.abort("bench scenario failed")
                if controller.engine is None:
                    run.cancel()
                await asyncio.gather(run, return_exceptions=True)


async def _all_running(events: Events, hosts: set[str]) -> None:
    missing = set(hosts)

    def pred(e: Event) -> bool:
        if e.name == "process.started":
            missing.discard(e.host or "")
        return not missing

    await events.until(pred)


async def kill_scenario(controller: Controller, events: Events) -> dict[str, float]:
    engine = controller.engine
    assert engine is not None
    await _all_running(events, {"local-1", "local-2"})
    t0 = time.time()
    os.kill(engine.agent_pid("local-1"), signal.SIGKILL)
    failed = await events.until(_is("host.failed", host="local-1"))
    restarted = await events.until(_is("process.started", host="local-1"))
    t1 = time.time()
    os.kill(engine.agent_pid("local-1"), signal.SIGKILL)
    failed2 = await events.until(_is("host.failed", host="local-1"))
    rematched = await events.until(_is("host.rematched", host="local-1"))
    replacement = rematched.data["replacement"]
    running = await events.until(_is("process.started", host=replacement))
    return {
        "kill_to_failed": failed.at - t0,
        "failed_to_restarted_running": restarted.at - failed.at,
        "kill2_to_failed": failed2.at - t1,
        "failed_to_replacement_running": running.at - failed2.at,
    }


async def stop_scenario(controller: Controller, events: Events) -> dict[str, float]:
    engine = controller.engine
    assert engine is not None
    await _all_running(events, {"local-1", "local-2"})
    pid = engine.agent_pid("local-1")
    t0 = time.time()
    os.kill(pid, signal.SIGSTOP)
    try:
        failed = await events.until(_is("host.failed", host="local-1"))
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGCONT)
    return {"stop_to_failed": failed.at - t0}


def mass_scenario(total: int, killed: int) -> Callable[[Controller, Events], Awaitable[dict[str, float]]]:
    async def scenario(controller: Controller, events: Events) -> dict[str, float]:
        engine = controller.engine
        assert engine is not None
        names = {f"local-{i}" for i in range(1, total + 1)}
        await _all_running(events, names)
        victims = sorted(names, key=lambda n: int(n.split("-")[1]))[:: total // killed][:killed]
        pids = [engine.agent_pid(v) for v in victims]
        t0 = time.time()
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
        last_failed = 0.0
        stand_in = {v: v for v in victims}  # a victim, or the host that replaced it
        down: set[str] = set()
        back: set[str] = set()
        last_running = 0.0
        while back != set(victims):
            watched = set(stand_in.values())

            def pred(e: Event, watched: set[str] = watched) -> bool:
                return e.host in watched and e.name in ("host.failed", "host.rematched", "process.started")

            try:
                ev = await events.until(pred, timeout=60)
            except TimeoutError:
                states = {v: engine.slots[stand_in[v]].state for v in victims if v not in back}
                raise RuntimeError(f"not running again after 60 s: {states}") from None
            victim = next(v for v, h in stand_in.items() if h == ev.host)
            if ev.name == "host.failed":
                down.add(victim)
                last_failed = max(last_failed, ev.at)
            elif ev.name == "host.rematched":
                stand_in[victim] = ev.data["replacement"]
            elif victim in down:
                back.add(victim)
                last_running = max(last_running, ev.at)
        return {"all_failed": last_failed - t0, "all_running_again": last_running - t0}

    return scenario


def _fields(settings: Settings) -> dict[str, Any]:
    return {name: getattr(settings, name) for name in Settings.__dataclass_fields__}


def _median(runs: list[dict[str, float]], key: str) -> dict[str, float]:
    values = [r[key] for r in runs if key in r]
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "n": len(values)}


async def main() -> None:
    logging.basicConfig(level=logging.ERROR)  # the ladder's warnings are the point here, not news
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--mass-hosts", type=int, default=100)
    parser.add_argument("--mass-killed", type=int, default=20)
    parser.add_argument("--set", action="append", default=[], help="a setting NAME=VALUE")
    parser.add_argument("--label", default="failures")
    args = parser.parse_args()
    overrides: dict[str, Any] = {}
    for item in args.set:
        name, _, value = item.partition("=")
        kind = type(getattr(Settings(), name))
        overrides[name] = kind(value)
    settings = Settings(**overrides)
    runs: dict[str, list[dict[str, float]]] = {"kill": [], "stop": [], "mass": []}
    for i in range(args.repeat):
        runs["kill"].append(await _run(settings, 2, 3, kill_scenario))
        runs["stop"].append(await _run(settings, 2, 3, stop_scenario))
        mass = mass_scenario(args.mass_hosts, args.mass_killed)
        runs["mass"].append(await _run(settings, args.mass_hosts, args.mass_hosts, mass))
        print(f"round {i + 1}/{args.repeat}: " + json.dumps({k: v[-1] for k, v in runs.items()}), file=sys.stderr)
    mass_key = f"{args.mass_killed} of {args.mass_hosts} agents killed -> all running again"
    summary = {
        "kill -9 agent -> host.failed": _median(runs["kill"], "kill_to_failed"),
        "SIGSTOP agent -> host.failed": _median(runs["stop"], "stop_to_failed"),
        "host.failed -> restarted host running": _median(runs["kill"], "failed_to_restarted_running"),
        "host.failed -> replacement host running": _median(runs["kill"], "failed_to_replacement_running"),
        mass_key: _median(runs["mass"], "all_running_again"),
        f"{args.mass_killed} of {args.mass_hosts} agents killed -> all failed": _median(runs["mass"], "all_failed"),
    }
    hb = settings.heartbeat_interval
    ratios = {
        "kill detection / (2 x heartbeat)": summary["kill -9 agent -> host.failed"]["median"] / (2 * hb),
        "SIGSTOP detection / (2 x heartbeat)": summary["SIGSTOP agent -> host.failed"]["median"] / (2 * hb),
        "mass recovery / 10 s": summary[mass_key]["median"] / 10.0,
    }
    ok = {k: sum(int(r.get("ok", 0)) for r in v) for k, v in runs.items()}
    print("| measure | median s | min-max s | runs |\n|---|---|---|---|")
    for name, m in summary.items():
        print(f"| {name} | {m['median']:.3f} | {m['min']:.3f}-{m['max']:.3f} | {m['n']} |")
    for name, r in ratios.items():
        print(f"{name}: {r:.2f}x")
    print(f"runs ok: {ok}")
    out = Path(__file__).parent / "results" / f"{args.label}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(
        json.dumps(
            {
                "summary": summary,
                "ratios": ratios,
                "runs_ok": ok,
                "settings": {k: v for k, v in _fields(settings).items() if k in overrides or k.endswith("_timeout")},
                "heartbeat_interval": hb,
                "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "system": platform.release()},
                "runs": runs,
            },
            indent=2,
        )
        + "\n"
    )


if __name__ == "__main__":
    asyncio.run(main())
