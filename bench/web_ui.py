"""The web UI's speed with N local hosts running: its first paint and how far its updates are behind the events.

    .venv/bin/python bench/web_ui.py [--hosts 500] [--rounds 3] [--loads 3] [--out bench/results/web_ui.json]

Each round runs the browser test tests/web/test_web_timing.py (a real ``plush serve --hosts N --http``, Debian's
Chromium under Playwright) with ``PLUSH_WEB_TIMING_HOSTS=N``: the page is opened idle (first paint), then
``--loads`` times more while a run holds every host at a block (first paint mid-run), and the page that stayed
open follows the run's end (every host turns done). The page measures itself (js/store.js ``store.stats``):
a first paint is the time from the navigation to the end of the first draw of the loaded snapshots; a lag is
the time from an event's making in the controller (its ``at``) to the end of the draw that showed it (the
oldest event of each draw), for every draw of the run's start (the page open before it) and of its end.
Printed: per round, the first paints and the lags' median, p95 and max, the part of the worst lag spent in the
page, the page's own work; at the end the medians over the rounds, the 1-minute load average seen.
``--split-cpus`` runs the browser (and pytest) on CPU 0 and the serve with its hosts on CPU 1: a browser with a
core of its own, as a user's browser on its own machine has, rather than one sharing two cores with 500 hosts
starting their processes. Never run by the test suite.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def quiet(limit: float = 90.0) -> None:
    """Wait (up to ``limit`` s) until no agent of an earlier round is left: 500 exiting agents are load."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        left = subprocess.run(["pgrep", "-f", "plush.agent"], capture_output=True, text=True, check=False).stdout
        if not left.strip():
            return
        time.sleep(1)


def one(hosts: int, loads: int, split: bool) -> dict[str, object]:
    quiet()
    with tempfile.TemporaryDirectory(prefix="plush-web-bench-") as tmp:
        out = Path(tmp) / "timing.json"
        env = dict(os.environ)
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env.update(
            PLUSH_WEB_TIMING_HOSTS=str(hosts),
            PLUSH_WEB_TIMING_OUT=str(out),
            PLUSH_WEB_TIMING_LOADS=str(loads),
            PLUSH_WEB_TIMING_HOSTS_CPUS="1" if split else "",
        )
        load = os.getloadavg()[0]
        done = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/web/test_web_timing.py"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=False,
            preexec_fn=(lambda: os.sched_setaffinity(0, {0})) if split else None,  # the browser's core
        )
        if done.returncode != 0 or not out.exists():
            sys.exit(f"the timing test failed:\n{done.stdout[-3000:]}\n{done.stderr[-2000:]}")
        result: dict[str, object] = json.loads(out.read_text())
        result["load_before"] = round(load, 1)
        result["load_after"] = round(os.getloadavg()[0], 1)
        return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hosts", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--loads", type=int, default=3, help="first paints measured mid-run per round")
    parser.add_argument(
        "--split-cpus",
        action="store_true",
        help="the browser on CPU 0, the serve and its hosts on CPU 1: a browser not sharing its core with the hosts",
    )
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    rounds = []
    for i in range(args.rounds):
        r = one(args.hosts, args.loads, args.split_cpus)
        rounds.append(r)
        lag = r["lag_s"]
        assert isinstance(lag, dict)
        midrun = ", ".join(f"{v:.0f}" for v in r["first_paint_midrun_ms"])  # type: ignore[attr-defined]
        print(
            f"round {i + 1}: first paint idle {r['first_paint_idle_ms']:.0f} ms, mid-run {midrun} ms"
            f" (load {r['load_before']}-{r['load_after']}); lags over {lag['n']} draws (run's start and end):"
            f" median {lag['median']:.3f} s, p95 {lag['p95']:.3f} s, max {lag['max']:.3f} s;"
            f" of it in the page: max {r['lag_in_page_s']['max']:.3f} s; max at the start"
            f" {r['lag_start_s']['max']:.3f} s, at the end {r['lag_end_s']['max']:.3f} s;"  # type: ignore[index]
            f" the page's work: {r['page_work_ms']}; the worst draw of the start: {r['worst_draw_start']}",
            flush=True,
        )
    midrun = [v for r in rounds for v in r["first_paint_midrun_ms"]]  # type: ignore[attr-defined]
    summary = {
        "hosts": args.hosts,
        "split_cpus": args.split_cpus,
        "first_paint_idle_ms_median": statistics.median(float(r["first_paint_idle_ms"]) for r in rounds),  # type: ignore[arg-type]
        "first_paint_midrun_ms_median": statistics.median(midrun),
        "first_paint_midrun_ms_max": max(midrun),
        "lag_s_median_of_medians": statistics.median(r["lag_s"]["median"] for r in rounds),  # type: ignore[index]
        "lag_s_max": max(r["lag_s"]["max"] for r in rounds),  # type: ignore[index]
        "lag_in_page_s_max": max(r["lag_in_page_s"]["max"] for r in rounds),  # type: ignore[index]
    }
    print(json.dumps(summary, indent=2))
    if args.out:
        args.out.write_text(json.dumps({"summary": summary, "rounds": rounds}, indent=2) + "\n")


if __name__ == "__main__":
    main()
