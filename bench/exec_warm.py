"""Warm ``plush exec true``: one command on N already-connected local agents, timed inside the controller.

    .venv/bin/python bench/exec_warm.py [--sizes 10,50,100,200] [--rounds 15] [--out FILE]

For each size, one controller process (``plush.Controller``) connects N local sandbox hosts once, runs
``Controller.exec(["true"])`` three times to warm up, then ``--rounds`` times measured: the wall time of the
call (from the request's encoding to the last reply gathered) and the controller's CPU during it
(``time.process_time``); the agents' own time (``duration`` of each reply) is summarised too. Every round must
answer 0 on every host. Prints a Markdown table of medians and writes a JSON summary. Never run by the test
suite. (The whole CLI command through a running ``plush serve`` is measured once the warm CLI path exists.)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from plush import Controller
from plush.config import Settings

WARM_UP = 3


async def bench(hosts: int, rounds: int, work: Path) -> dict[str, Any]:
    controller = Controller(Settings(runs_dir=str(work / "runs"), silence_timeout=30.0, ping_timeout=15.0))
    t = time.monotonic()
    await controller.connect(hosts)
    connect = time.monotonic() - t
    walls, cpus, agents = [], [], []
    try:
        for k in range(WARM_UP + rounds):
            t, cpu = time.perf_counter(), time.process_time()
            result = await controller.exec(["true"])
            wall, cpu = time.perf_counter() - t, time.process_time() - cpu
            if result.status != 0 or len(result.results) != hosts:
                raise SystemExit(f"round {k}: status {result.status}, {len(result.results)} of {hosts} answered")
            if k >= WARM_UP:
                walls.append(wall)
                cpus.append(cpu)
                agents.append(statistics.median(r.duration for r in result.results.values()))
    finally:
        await controller.quit()
    return {
        "hosts": hosts,
        "connect": connect,
        "wall": walls,
        "cpu": cpus,
        "median_wall": statistics.median(walls),
        "min_wall": min(walls),
        "median_cpu": statistics.median(cpus),
        "median_agent": statistics.median(agents),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10,50,100,200")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "exec_warm.json")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="plush-bench-exec-") as tmp:
        for size in (int(s) for s in args.sizes.split(",")):
            rows.append(asyncio.run(bench(size, args.rounds, Path(tmp) / str(size))))
    print(f"warm `Controller.exec(['true'])`, median of {args.rounds} rounds, load {os.getloadavg()[0]:.1f}")
    print("| hosts | wall (median) | wall (min) | controller CPU | agent's own time (median host) |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['hosts']} | {r['median_wall'] * 1000:.0f} ms | {r['min_wall'] * 1000:.0f} ms "
            f"| {r['median_cpu'] * 1000:.1f} ms | {r['median_agent'] * 1000:.1f} ms |"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"rounds": args.rounds, "results": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
