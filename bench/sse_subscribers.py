"""Issue 13: do 50 concurrent SSE subscribers slow a run? A run's wall time with 0 and with 50 subscribers of
``GET /v1/events`` on the same ``plush serve --http``, interleaved, several rounds, in one invocation.

    .venv/bin/python bench/sse_subscribers.py [--hosts 100] [--subscribers 50] [--rounds 5] [--lines 100]
                                              [--out bench/results/sse_subscribers.json]

One ``plush serve --hosts N --http 127.0.0.1:0`` (a subprocess, its token in a private state directory)
connects N local sandbox hosts once and loads a spec whose one component of N hosts prints ``--lines`` lines
of 80 bytes on every host (N x lines ``process.output`` events per run, plus the lifecycle events). Each
round runs the application twice, once per mode, the order of the modes alternating between rounds:

- ``0``: no subscriber but the observer (one stream filtered to ``run.finished``, present in both modes);
- ``50``: the observer and 50 subscribers of every event, unfiltered (output included), each reading and
  splitting every frame, connected before the run starts.

Per run: the wall time from ``POST /v1/runs`` to the observer's ``run.finished`` (the client's view), the
run's own duration (``run.finished``'s ``timings.stopped``, the controller's view), the CPU of the serve
process during the run (``/proc/PID/stat``), the frames each subscriber got and what they missed (a slow
subscriber loses process output first: the bus never waits for it), and the load average. Prints a
Markdown table of the medians and the ratio 50/0, and writes the JSON. Never run by the test suite.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

SPEC = """\
project: chatty
components:
  workers:
    hosts: {hosts}
application:
  execution:
    workers:
      blocks:
        - process: talk
          run: [sh, -c, 'i=0; while [ $i -lt {lines} ]; do i=$((i+1)); printf "%-79s\\n" "line $i $PLUSH_HOST"; done']
"""


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def subscriber(
    session: aiohttp.ClientSession, url: str, headers: dict[str, str], query: str, ready: asyncio.Event
) -> dict[str, Any]:
    """Read the stream until ``run.finished``: frames and bytes seen."""
    frames = size = 0
    async with session.get(f"{url}/v1/events{query}", headers=headers) as reply:
        reply.raise_for_status()
        ready.set()
        event = ""
        async for raw in reply.content:
            size += len(raw)
            if raw.startswith(b"event: "):
                event = raw[7:].decode().strip()
            elif raw == b"\n" and event:
                frames += 1
                if event == "run.finished":
                    break
                event = ""
    return {"frames": frames, "bytes": size}


async def one_run(url: str, headers: dict[str, str], pid: int, subscribers: int) -> dict[str, Any]:
    timeout = aiohttp.ClientTimeout(total=None, sock_read=600)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        ready = [asyncio.Event() for _ in range(subscribers + 1)]
        observer = asyncio.create_task(subscriber(session, url, headers, "?kind=run.finished", ready[0]))
        crowd = [asyncio.create_task(subscriber(session, url, headers, "", ready[k + 1])) for k in range(subscribers)]
        for each in ready:
            await each.wait()
        load = os.getloadavg()[0]
        cpu, t = cpu_seconds(pid), time.monotonic()
        async with session.post(f"{url}/v1/runs", headers=headers, json={}) as reply:
            reply.raise_for_status()
            started = await reply.json()
        await observer
        wall = time.monotonic() - t
        cpu = cpu_seconds(pid) - cpu
        seen = [await task for task in crowd]
        async with session.get(f"{url}/v1/runs/current", headers=headers) as reply:
            last = (await reply.json())["last"]
    return {
        "subscribers": subscribers,
        "run": started["run"],
        "ok": last["ok"],
        "wall": wall,
        "took": last["took"],
        "serve_cpu": cpu,
        "frames": [s["frames"] for s in seen],
        "bytes": [s["bytes"] for s in seen],
        "load": load,
    }


def serve(work: Path, hosts: int) -> tuple[subprocess.Popen[bytes], str, dict[str, str]]:
    env = {**os.environ, "XDG_STATE_HOME": str(work / "state"), "XDG_CONFIG_HOME": str(work / "config")}
    err = (work / "serve.err").open("wb")
    argv = [sys.executable, "-m", "plush", "serve", "--hosts", str(hosts), "--name", "bench"]
    argv += ["--runs-dir", str(work / "runs"), "--http", "127.0.0.1:0"]
    proc = subprocess.Popen(argv, cwd=work, env=env, stdout=subprocess.DEVNULL, stderr=err, start_new_session=True)
    deadline = time.monotonic() + 300
    while "hosts connected" not in (work / "serve.err").read_text():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"plush serve did not start:\n{(work / 'serve.err').read_text()}")
        time.sleep(0.1)
    match = re.search(r"HTTP API at (\S+)", (work / "serve.err").read_text())
    assert match is not None
    token = (work / "state" / "plush" / "api-token").read_text().strip()
    return proc, match.group(1), {"Authorization": f"Bearer {token}"}


async def bench(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    spec = work / "chatty.yaml"
    spec.write_text(SPEC.format(hosts=args.hosts, lines=args.lines))
    proc, url, headers = serve(work, args.hosts)
    runs = []
    try:
        async with (
            aiohttp.ClientSession() as session,
            session.put(f"{url}/v1/application", headers=headers, json={"path": str(spec)}) as reply,
        ):
            reply.raise_for_status()
        await one_run(url, headers, proc.pid, 0)  # warm-up, not counted
        for k in range(args.rounds):
            modes = (0, args.subscribers) if k % 2 == 0 else (args.subscribers, 0)
            for mode in modes:
                runs.append(await one_run(url, headers, proc.pid, mode))
                print(f"round {k + 1} subscribers {mode}: wall {runs[-1]['wall']:.3f} s", file=sys.stderr)
    finally:
        async with aiohttp.ClientSession() as session, session.post(f"{url}/v1/quit", headers=headers, json={}):
            pass
        proc.wait(timeout=120)
    summary: dict[str, Any] = {}
    for mode in (0, args.subscribers):
        mine = [r for r in runs if r["subscribers"] == mode]
        summary[str(mode)] = {
            "wall": statistics.median(r["wall"] for r in mine),
            "took": statistics.median(r["took"] for r in mine),
            "serve_cpu": statistics.median(r["serve_cpu"] for r in mine),
            "all_ok": all(r["ok"] for r in mine),
        }
    zero, many = summary["0"], summary[str(args.subscribers)]
    return {
        "hosts": args.hosts,
        "lines_per_host": args.lines,
        "subscribers": args.subscribers,
        "rounds": args.rounds,
        "medians": summary,
        "ratio_wall": many["wall"] / zero["wall"],
        "ratio_took": many["took"] / zero["took"],
        "frames_per_subscriber": sorted({f for r in runs for f in r["frames"]}),
        "load": [min(r["load"] for r in runs), max(r["load"] for r in runs)],
        "runs": runs,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=100)
    parser.add_argument("--subscribers", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--lines", type=int, default=100)
    parser.add_argument("--out", type=Path, default=Path("bench/results/sse_subscribers.json"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="plush-sse-bench-") as tmp:
        result = asyncio.run(bench(args, Path(tmp)))
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    m = result["medians"]
    print(f"{args.hosts} hosts, {args.lines} lines each")
    print("| subscribers | wall (median) | run's own duration | serve CPU |")
    print("|---|---|---|---|")
    for mode in ("0", str(args.subscribers)):
        print(f"| {mode} | {m[mode]['wall']:.3f} s | {m[mode]['took']:.3f} s | {m[mode]['serve_cpu']:.2f} s |")
    print(f"ratio {args.subscribers}/0: wall {result['ratio_wall']:.2f}, run {result['ratio_took']:.2f}; ", end="")
    low, high = result["load"]
    print(f"load average {low:.1f}..{high:.1f}; frames per subscriber {result['frames_per_subscriber']}")


if __name__ == "__main__":
    main()
