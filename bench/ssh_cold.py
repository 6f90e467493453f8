"""Issue 9: Plush's cold start over SSH beside the SSH fan-out tools, and the warm case, on N loopback hosts.

    .venv/bin/python bench/ssh_cold.py [--sizes 10,50,100] [--rounds 3] [--warm-runs 3]
                                       [--tools plush,clush,clush_x25519,pssh_x25519,ansible,ansible_pipe]

One private sshd (``bench/sshbench.py``: keys and config in a temporary directory, ``MaxStartups 2000``)
presents N hosts 127.0.0.1 ... 127.0.0.N. Every tool runs a trivial command on all N and is timed from outside,
as a user would (the whole process: interpreter, imports, handshakes, the command, the end):

- ``plush`` (cold): ``plush run SPEC -q -d POOL`` with a directory file of N ``type="ssh"`` hosts and a spec whose
  one process runs ``true`` on each: SSH bootstrap (probe; the agent's zipapp is already cached on the hosts
  after the first contact, which is timed once apart), start and join of N agents, the run, the agents' stop.
  Its phase marks come from the run's journal.
- the peers, with the command lines of ``../shared/peers/peers.sh``: ``clush -w 127.0.0.[1-N] -f N true``,
  ``clush`` and ``parallel-ssh`` with ``KexAlgorithms curve25519-sha256``, ``ansible all -m ping`` (defaults:
  ControlPersist masters, closed before each run so that each is cold) and with pipelining.
- ``plush`` (warm): a second application on agents already connected: ``plush serve -d POOL`` connects the N
  hosts (that time is recorded too: bootstrap + join without a run), ``plush load SPEC``, one run untimed,
  then ``--warm-runs`` times ``plush run`` (the whole client command), then ``plush quit``.

Sizes and tools are interleaved (each round visits the sizes in a rotated order, and the tools in a rotated
order at each size), so that the machine's noise falls on every tool. Before the rounds: the first contact
(Plush at the largest size, zipapp copied) and one untimed warm-up of every tool. Prints a Markdown table
(median and range per tool and size, the best peer, the ratios to the targets: at 100 hosts Plush cold no
slower than the best peer; warm >= 10x faster) and writes a JSON summary (default
``bench/results/ssh_cold.json``) and every invocation under ``bench/results/raw/`` (git-ignored). A peer that
cannot run is named with the reason and left out. Never run by the test suite.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import sshbench as sb
from run_local import PHASES, machine, read_journal

RESULTS = sb.HERE / "results"
PEER_TOOLS = ("clush", "clush_x25519", "pssh_x25519", "ansible", "ansible_pipe")


def plush_cold(sshd: sb.Sshd, n: int, work: Path, tag: str) -> dict[str, Any]:
    runs = work / "runs" / tag
    runs.mkdir(parents=True)
    spec = work / "spec.xml"
    argv = [str(sb.PLUSH), "run", str(spec), "-q", "-d", str(sshd.pool(n)), "--runs-dir", str(runs), "--name", tag]
    rec = sb.timed(argv, env(sshd, work), work, sshd=sshd)
    rec["ok"] = rec["rc"] == 0
    journals = list(runs.glob("*/journal.sqlite"))
    if journals:
        j = read_journal(journals[0])
        timings = j["finished"].get("timings", {})
        rec["phases"] = {
            phase: timings[b] - (timings[a] if a else 0.0)
            for phase, (a, b) in PHASES.items()
            if b in timings and (a is None or a in timings)
        }
        if "stopped" in timings:
            rec["phases"]["outside_engine"] = rec["wall"] - timings["stopped"]
        rec["first_host_failure"] = j["first_host_failure"]
        rec["ok"] = rec["ok"] and bool(j["finished"].get("ok"))
    shutil.rmtree(runs, ignore_errors=True)
    return rec


def env(sshd: sb.Sshd, work: Path) -> dict[str, str]:
    e = sshd.env()
    e.pop("PYTHONDONTWRITEBYTECODE", None)  # the controller's bytecode is cached, as for an installed plush
    e["PYTHONPYCACHEPREFIX"] = str(work / "controller-pycache")
    return e


def plush_warm(sshd: sb.Sshd, n: int, work: Path, tag: str, runs: int) -> dict[str, Any]:
    """``plush serve -d POOL``, load, one run untimed, ``runs`` timed ``plush run``; quit."""
    e, plush = env(sshd, work), str(sb.PLUSH)
    spec, runs_dir = work / "spec.xml", work / "runs" / tag
    runs_dir.mkdir(parents=True)
    rec: dict[str, Any] = {"ok": False, "runs": []}
    host = sb.tree_cpu(sshd.process.pid)
    t = time.perf_counter()
    server = subprocess.Popen(
        [plush, "serve", "-d", str(sshd.pool(n)), "--name", tag, "--runs-dir", str(runs_dir)],
        env=e,
        cwd=work,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    assert server.stderr is not None
    lines: list[str] = []
    serving = threading.Event()

    def drain() -> None:
        assert server.stderr is not None
        for line in server.stderr:
            lines.append(line.rstrip())
            if "serving" in line:
                serving.set()
        serving.set()

    threading.Thread(target=drain, daemon=True).start()
    try:
        serving.wait(600)
        rec["connect_wall"] = time.perf_counter() - t
        rec["connect_host_cpu"] = sb.tree_cpu(sshd.process.pid) - host
        rec["serve_says"] = lines[:2]
        if not any(f"{n} hosts connected" in line for line in lines):
            return rec
        ctl = ["--controller", tag]
        load = sb.timed([plush, "load", str(spec), *ctl], e, work)
        if load["rc"] != 0:
            rec["error"] = load["err"]
            return rec
        for k in range(runs + 1):
            r = sb.timed([plush, "run", "-q", *ctl], e, work, sshd=sshd)
            r.pop("out")
            if k > 0:
                rec["runs"].append(r)
        rec["ok"] = all(r["rc"] == 0 for r in rec["runs"])
        rec["quit"] = sb.timed([plush, "quit", *ctl], e, work)["wall"]
    finally:
        if server.poll() is None:
            try:
                server.wait(60)
            except subprocess.TimeoutExpired:
                server.terminate()
                server.wait(30)
        shutil.rmtree(runs_dir, ignore_errors=True)
    return rec


def peer(sshd: sb.Sshd, tool: str, n: int, work: Path) -> dict[str, Any]:
    if tool.startswith("ansible"):
        sshd.close_ansible_masters()
    rec = sb.timed(sb.peer_command(sshd, tool, n), sshd.env(), work, sshd=sshd)
    rec["ok"] = sb.peer_ok(tool, n, rec["rc"], rec["out"])
    rec["out"] = rec["out"][-500:]
    if tool.startswith("ansible"):
        sshd.close_ansible_masters()
    return rec


def say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def rotated(items: list[Any], k: int) -> list[Any]:
    k %= len(items)
    return items[k:] + items[:k]


def summarise(records: list[dict[str, Any]], sizes: list[int], tools: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for n in sizes:
        row: dict[str, Any] = {}
        for tool in [*tools, "plush_warm"]:
            mine = [r for r in records if r["tool"] == tool and r["n"] == n]
            if not mine:
                continue
            if tool == "plush_warm":
                walls = [run["wall"] for r in mine for run in r["runs"]]
                cpus = [run["cpu"] for r in mine for run in r["runs"]]
                hcpus = [run["host_cpu"] for r in mine for run in r["runs"] if "host_cpu" in run]
                connects = [r["connect_wall"] for r in mine if "connect_wall" in r]
                row[tool] = {
                    "ok": sum(bool(r["ok"]) for r in mine),
                    "of": len(mine),
                    "wall": sb.summary(walls) if walls else None,
                    "cpu": sb.summary(cpus) if cpus else None,
                    "host_cpu": sb.summary(hcpus) if hcpus else None,
                    "connect": sb.summary(connects) if connects else None,
                    "connect_host_cpu": sb.summary([r["connect_host_cpu"] for r in mine if "connect_host_cpu" in r])
                    if connects
                    else None,
                }
                continue
            good = [r for r in mine if r["ok"]]
            row[tool] = {
                "ok": len(good),
                "of": len(mine),
                "wall": sb.summary([r["wall"] for r in good]) if good else None,
                "cpu": sb.summary([r["cpu"] for r in good]) if good else None,
                "host_cpu": sb.summary([r["host_cpu"] for r in good if "host_cpu" in r]) if good else None,
            }
            if tool == "plush" and good:
                row[tool]["phases"] = {
                    p: sb.summary([r["phases"][p] for r in good if p in r.get("phases", {})])
                    for p in [*PHASES, "outside_engine"]
                    if any(p in r.get("phases", {}) for r in good)
                }
        peers = {t: v["wall"]["median"] for t, v in row.items() if t in PEER_TOOLS and v["wall"]}
        if peers:
            best = min(peers, key=lambda t: peers[t])
            row["best_peer"] = {"tool": best, "median": peers[best]}
            if row.get("plush", {}).get("wall"):
                row["cold_ratio"] = row["plush"]["wall"]["median"] / peers[best]
            if row.get("plush_warm", {}).get("wall"):
                row["warm_speedup_vs_best_peer"] = peers[best] / row["plush_warm"]["wall"]["median"]
                if row.get("plush", {}).get("wall"):
                    cold = row["plush"]["wall"]["median"]
                    row["warm_speedup_vs_plush_cold"] = cold / row["plush_warm"]["wall"]["median"]
        out[str(n)] = row
    return out


def table(summary: dict[str, Any], tools: list[str]) -> str:
    lines = [
        "| N | tool | ok | wall median (min-max) | client CPU median | hosts' CPU median (sshd tree) |",
        "|---|---|---|---|---|---|",
    ]
    for n, row in summary.items():
        for tool in [*tools, "plush_warm"]:
            if tool not in row:
                continue
            v = row[tool]
            name = {"plush": "plush run (cold)", "plush_warm": "plush run (warm, 2nd application)"}.get(tool, tool)
            cpu = f"{v['cpu']['median']:.2f} s" if v.get("cpu") else "-"
            hcpu = f"{v['host_cpu']['median']:.2f} s" if v.get("host_cpu") else "-"
            lines.append(f"| {n} | {name} | {v['ok']}/{v['of']} | {sb.fmt(v['wall'])} | {cpu} | {hcpu} |")
            if tool == "plush_warm" and v.get("connect"):
                hcpu = f"{v['connect_host_cpu']['median']:.2f} s" if v.get("connect_host_cpu") else "-"
                lines.append(f"| {n} | plush serve: connect N hosts (no run) | | {sb.fmt(v['connect'])} | | {hcpu} |")
    lines += ["", "| N | best peer (median) | plush cold / best peer | best peer / plush warm | plush cold / warm |"]
    lines.append("|---|---|---|---|---|")
    for n, row in summary.items():
        best = row.get("best_peer")
        if not best:
            continue
        cold = f"{row['cold_ratio']:.2f}" if "cold_ratio" in row else "-"
        warm = f"{row['warm_speedup_vs_best_peer']:.1f}x" if "warm_speedup_vs_best_peer" in row else "-"
        cw = f"{row['warm_speedup_vs_plush_cold']:.1f}x" if "warm_speedup_vs_plush_cold" in row else "-"
        lines.append(f"| {n} | {best['tool']} {best['median']:.2f} s | {cold} | {warm} | {cw} |")
    lines += [
        "",
        "Plush cold, phases (median s): "
        + "; ".join(
            f"N={n}: " + ", ".join(f"{p} {s['median']:.2f}" for p, s in row["plush"].get("phases", {}).items())
            for n, row in summary.items()
            if row.get("plush", {}).get("phases")
        ),
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10,50,100")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--warm-runs", type=int, default=3)
    parser.add_argument("--tools", default="plush," + ",".join(PEER_TOOLS))
    parser.add_argument("--no-warm", action="store_true", help="skip the warm Plush case")
    parser.add_argument("--out", type=Path, default=RESULTS / "ssh_cold.json")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    tools = [t for t in args.tools.split(",") if t]
    skipped: dict[str, str] = {}
    for tool in [t for t in tools if t != "plush"]:
        why = sb.have(tool)
        if why:
            skipped[tool] = why
            tools.remove(tool)
            print(f"skip {tool}: {why}", file=sys.stderr)
    records: list[dict[str, Any]] = []
    started = time.strftime("%Y-%m-%d %H:%M:%S")
    load_before = sb.load_note()
    with tempfile.TemporaryDirectory(prefix="plush-bench-ssh-") as tmp:
        work = Path(tmp)
        (work / "spec.xml").write_text(sb.TRUE_SPEC)
        with sb.running_sshd(work / "sshd") as sshd:
            top = max(sizes)
            first: dict[str, Any] = {}
            if "plush" in tools:
                first = plush_cold(sshd, top, work, "first")
                say(f"first contact (zipapp copied) at N={top}: {first['wall']:.2f} s ok={first['ok']}")
            for tool in tools:  # untimed warm-up: known_hosts, page cache, bytecode
                if tool != "plush":
                    peer(sshd, tool, top, work)
            for rnd in range(args.rounds):
                for n in rotated(sizes, rnd):
                    for tool in rotated(tools, rnd + n):
                        tag = f"r{rnd}-{tool}-{n}"
                        rec = plush_cold(sshd, n, work, tag) if tool == "plush" else peer(sshd, tool, n, work)
                        rec.update(tool=tool, n=n, round=rnd, load=os.getloadavg()[0])
                        records.append(rec)
                        print(f"{tag}: {rec['wall']:.2f} s ok={rec['ok']} load={rec['load']:.1f}", file=sys.stderr)
                    if "plush" in tools and not args.no_warm:
                        rec = plush_warm(sshd, n, work, f"w{rnd}-{n}", args.warm_runs)
                        rec.update(tool="plush_warm", n=n, round=rnd, load=os.getloadavg()[0])
                        records.append(rec)
                        walls = ", ".join(f"{r['wall']:.3f}" for r in rec["runs"])
                        say(f"w{rnd}-{n}: connect {rec.get('connect_wall', 0):.2f} s, runs {walls} ok={rec['ok']}")
    summary = summarise(records, sizes, tools)
    doc = {
        "started": started,
        "machine": machine(),
        "load_before": load_before,
        "load_after": sb.load_note(),
        "rounds": args.rounds,
        "warm_runs": args.warm_runs,
        "skipped": skipped,
        "first_contact": {"n": max(sizes), "wall": first.get("wall"), "ok": first.get("ok")} if first else None,
        "summary": summary,
    }
    print(f"SSH cold start, {args.rounds} rounds, load (1/5/15 min) before {load_before}, after {doc['load_after']}")
    print(table(summary, tools))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=1) + "\n")
    raw = RESULTS / "raw" / f"ssh_cold-{time.strftime('%Y%m%d-%H%M%S')}.json"
    raw.parent.mkdir(parents=True, exist_ok=True)
    raw.write_text(json.dumps({**doc, "records": records}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
