"""A second application on already-connected agents: what a run costs when no agent starts.

    .venv/bin/python bench/warm_run.py [--hosts 100] [--repeat 3] [--out FILE]

One controller process (``plush.Controller``) connects N local sandbox hosts once, then runs the benchmark's
trivial spec (``bench/run_local.py``'s: ``true`` once on every host) ``--repeat`` times on the same agents.
Per run: the wall time of ``Controller.run`` and the controller's CPU (``time.process_time``) during it, and
the phase marks of ``run.finished``; once: the time and CPU of ``connect``. Compare with the cold run of
``bench/run_local.py`` at the same size (a fresh ``plush run``: interpreter, imports, agents started, run,
agents stopped). Prints a Markdown table and writes a JSON summary. Never run by the test suite.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from run_local import TRIVIAL_SPEC

from plush import Controller
from plush.config import Settings


async def bench(hosts: int, repeat: int, work: Path) -> dict[str, Any]:
    spec = work / "bench.xml"
    spec.write_text(TRIVIAL_SPEC)
    controller = Controller(Settings(runs_dir=str(work / "runs"), silence_timeout=30.0, ping_timeout=15.0))
    controller.load(spec)
    t, cpu = time.monotonic(), time.process_time()
    await controller.connect(hosts)
    connect = {"wall": time.monotonic() - t, "cpu": time.process_time() - cpu}
    pids = {n["name"]: n["agent_pid"] for n in controller.info("nodes")}
    runs = []
    try:
        for _ in range(repeat):
            t, cpu = time.monotonic(), time.process_time()
            result = await controller.run(hosts={"comp": hosts})
            runs.append(
                {
                    "ok": result.ok,
                    "wall": time.monotonic() - t,
                    "cpu": time.process_time() - cpu,
                    "timings": result.outcome.timings,
                }
            )
        same = pids == {n["name"]: n["agent_pid"] for n in controller.info("nodes")}
    finally:
        await controller.quit()
    return {"hosts": hosts, "connect": connect, "runs": runs, "same_agents": same}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "warm.json"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="plush-warm-") as tmp:
        got = asyncio.run(bench(args.hosts, args.repeat, Path(tmp)))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(got, indent=2))
    walls = [r["wall"] for r in got["runs"]]
    cpus = [r["cpu"] for r in got["runs"]]
    ok = sum(r["ok"] for r in got["runs"])
    print("| hosts | connect s (CPU s) | runs ok | run wall s median (min-max) | run ctl CPU s median | same agents |")
    print("|---|---|---|---|---|---|")
    print(
        f"| {got['hosts']} | {got['connect']['wall']:.2f} ({got['connect']['cpu']:.2f}) | {ok}/{len(walls)} | "
        f"{statistics.median(walls):.3f} ({min(walls):.3f}-{max(walls):.3f}) | {statistics.median(cpus):.3f} | "
        f"{got['same_agents']} |"
    )


if __name__ == "__main__":
    main()
