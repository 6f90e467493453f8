"""Issue 11: warm ``plush exec true`` on N connected agents beside clush and pssh over loopback SSH on N hosts.

    .venv/bin/python bench/exec_vs_ssh.py [--sizes 10,50,100,200] [--rounds 3] [--exec-rounds 10] [--peer-runs 2]
                                          [--tools plush_local,plush_ssh,plush_cli,clush_x25519,...]

One private sshd (``bench/sshbench.py``) presents N hosts 127.0.0.1 ... 127.0.0.N. Per round and size (sizes in
a rotated order each round, tools in a rotated order at each size, so that the machine's noise falls on every
tool):

- ``plush_local``: a fresh controller process (``--child``) connects N local sandbox agents
  (``Controller.connect(N)``), runs ``Controller.exec(["true"])`` 3 times to warm up, then ``--exec-rounds``
  times measured: the wall time of the call inside the controller (as ``bench/exec_warm.py``), every host
  answering 0.
- ``plush_ssh``: the same on N ``type="ssh"`` hosts of a directory file, through the same sshd as the peers
  (the agents bootstrapped over SSH once, their links carried by SSH port forwards).
- ``clush_x25519``, ``pssh_x25519``: ``clush -w 127.0.0.[1-N] -f N true`` and ``parallel-ssh -p N -i true``
  with ``KexAlgorithms curve25519-sha256``, the command lines of ``../shared/peers/peers.sh``, the whole process
  timed, ``--peer-runs`` times; ``clush``: the same with OpenSSH's default key exchange.
- ``pssh_warm``: the harness's ``lib/pssh_warm.py``: the parallel-ssh library keeps N SSH sessions open and
  runs ``hostname`` over them (a new channel per command, no handshake), in-process timings: the best a warm
  SSH tool can do.
- ``plush_cli``: the whole ``plush exec true`` command (a client process) through a running ``plush serve
  --hosts N`` (the warm CLI path), ``--exec-rounds`` times after 3 untimed; left out, with the reason, when this
  checkout's ``plush exec`` does not talk to a running controller yet.

Prints a Markdown table (median, range, ratios to the best SSH peer per size) and writes a JSON summary
(default ``bench/results/exec_vs_ssh.json``) and every record under ``bench/results/raw/`` (git-ignored). A
peer that cannot run is named with the reason and left out. Never run by the test suite.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import sshbench as sb
from run_local import machine

RESULTS = sb.HERE / "results"
WARM_UP = 3
SSH_PEERS = ("clush_x25519", "pssh_x25519", "clush")
TOOLS = ("plush_local", "plush_ssh", "plush_cli", "clush_x25519", "pssh_x25519", "clush", "pssh_warm")


async def child(kind: str, n: int, rounds: int, work: Path, pool: Path | None) -> dict[str, Any]:
    """In a fresh process: connect N agents (local, or the SSH hosts of ``pool``), exec ``true`` on them."""
    from plush import Controller
    from plush.config import Settings
    from plush.resources.providers import PoolFile, fill_pool

    settings = Settings(
        runs_dir=str(work / "runs"),
        silence_timeout=30.0,
        ping_timeout=15.0,
        ssh_config=os.environ.get("PLUSH_SSH_CONFIG", ""),
        ssh_connect_timeout=60.0,
    )
    controller = Controller(settings)
    hosts: Any = n
    if kind == "ssh":
        assert pool is not None
        hosts = list(await fill_pool([PoolFile(str(pool))]))
    t = time.perf_counter()
    await controller.connect(hosts)
    connect = time.perf_counter() - t
    walls, cpus = [], []
    try:
        for k in range(WARM_UP + rounds):
            t, cpu = time.perf_counter(), time.process_time()
            result = await controller.exec(["true"])
            wall, cpu = time.perf_counter() - t, time.process_time() - cpu
            if result.status != 0 or len(result.results) != n:
                raise SystemExit(f"round {k}: status {result.status}, {len(result.results)} of {n} answered")
            if k >= WARM_UP:
                walls.append(wall)
                cpus.append(cpu)
    finally:
        await controller.quit()
    return {"connect": connect, "walls": walls, "cpus": cpus}


def plush_exec(kind: str, sshd: sb.Sshd, n: int, rounds: int, work: Path, tag: str) -> dict[str, Any]:
    out = work / f"{tag}.json"
    argv = [sys.executable, __file__, "--child", kind, "--sizes", str(n), "--exec-rounds", str(rounds)]
    argv += ["--out", str(out), "--work", str(work / tag)]
    if kind == "ssh":
        argv += ["--pool", str(sshd.pool(n))]
    env = sshd.env()
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(work / "controller-pycache")
    rec = sb.timed(argv, env, work, timeout=900)
    rec.pop("out")
    rec["ok"] = rec["rc"] == 0 and out.is_file()
    if rec["ok"]:
        rec.update(json.loads(out.read_text()))
    return rec


def plush_cli(sshd: sb.Sshd, n: int, rounds: int, work: Path, tag: str) -> dict[str, Any]:
    """The whole ``plush exec true`` command through a running ``plush serve --hosts N`` (the warm CLI path):
    ``rounds`` timed after 3 untimed; ``unsupported`` when this plush's exec does not talk to a controller."""
    env = sshd.env()
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(work / "controller-pycache")
    plush = str(sb.PLUSH)
    rec: dict[str, Any] = {"ok": False, "walls": [], "cpus": []}
    t = time.perf_counter()
    server = subprocess.Popen(
        [plush, "serve", "--hosts", str(n), "--name", tag, "--runs-dir", str(work / tag)],
        env=env,
        cwd=work,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert server.stderr is not None
    try:
        line = server.stderr.readline()  # plush: serving NAME: N hosts connected
        rec["connect"] = time.perf_counter() - t
        if f"{n} hosts connected" not in line:
            rec["err"] = line.strip()
            return rec
        for k in range(WARM_UP + rounds):
            r = sb.timed([plush, "exec", "--controller", tag, "true"], env, work)
            if r["rc"] != 0:
                rec["err"] = (r["err"] or r["out"]).strip().splitlines()[-1:]
                rec["unsupported"] = k == 0 and r["rc"] == 2
                return rec
            if k >= WARM_UP:
                rec["walls"].append(r["wall"])
                rec["cpus"].append(r["cpu"])
        rec["ok"] = True
    finally:
        subprocess.run([plush, "quit", "--controller", tag], env=env, cwd=work, capture_output=True, check=False)
        try:
            server.wait(60)
        except subprocess.TimeoutExpired:
            server.terminate()
            server.wait(30)
        server.stderr.close()
    return rec


def pssh_warm(sshd: sb.Sshd, n: int, work: Path, tag: str) -> dict[str, Any]:
    if sb.PEERS is None:
        return {"ok": False, "err": "no ../shared/peers"}
    out = work / f"{tag}.json"
    env = {**sshd.env(), "PB_PORT": str(sshd.port), "PB_KEY": str(sshd.key)}
    python = str(sb.PB_VENV / "bin" / "python")
    rec = sb.timed([python, str(sb.PEERS / "lib" / "pssh_warm.py"), str(out), str(n)], env, work)
    rec.pop("out")
    rec["ok"] = rec["rc"] == 0 and out.is_file()
    if rec["ok"]:
        rec.update(json.loads(out.read_text())[0])
    return rec


def peer(sshd: sb.Sshd, tool: str, n: int, work: Path) -> dict[str, Any]:
    rec = sb.timed(sb.peer_command(sshd, tool, n), sshd.env(), work, sshd=sshd)
    rec["ok"] = sb.peer_ok(tool, n, rec["rc"], rec["out"])
    rec["out"] = rec["out"][-300:]
    return rec


def say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def one(sshd: sb.Sshd, tool: str, n: int, work: Path, args: argparse.Namespace, tag: str) -> list[dict[str, Any]]:
    if tool in ("plush_local", "plush_ssh"):
        return [plush_exec(tool.removeprefix("plush_"), sshd, n, args.exec_rounds, work, tag)]
    if tool == "plush_cli":
        return [plush_cli(sshd, n, args.exec_rounds, work, tag)]
    if tool == "pssh_warm":
        return [pssh_warm(sshd, n, work, tag)]
    return [peer(sshd, tool, n, work) for _ in range(args.peer_runs)]


def summarise(records: list[dict[str, Any]], sizes: list[int], tools: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for n in sizes:
        row: dict[str, Any] = {}
        for tool in tools:
            mine = [r for r in records if r["tool"] == tool and r["n"] == n]
            if not mine:
                continue
            good = [r for r in mine if r["ok"]]
            v: dict[str, Any] = {"ok": len(good), "of": len(mine)}
            if tool.startswith("plush_") and good:
                v["wall"] = sb.summary([w for r in good for w in r["walls"]])
                v["cpu"] = sb.summary([c for r in good for c in r["cpus"]])
                v["connect"] = sb.summary([r["connect"] for r in good])
                v["exec_rounds"] = sum(len(r["walls"]) for r in good)
            elif tool == "pssh_warm" and good:
                v["wall"] = sb.summary([r["warm_round_ms_median"] / 1000 for r in good])
                v["cold_first_round"] = sb.summary([r["cold_first_round_ms"] / 1000 for r in good])
            elif good:
                v["wall"] = sb.summary([r["wall"] for r in good])
                v["cpu"] = sb.summary([r["cpu"] for r in good])
            row[tool] = v
        peers = {t: row[t]["wall"]["median"] for t in SSH_PEERS if row.get(t, {}).get("wall")}
        if peers:
            best = min(peers, key=lambda t: peers[t])
            row["best_ssh_peer"] = {"tool": best, "median": peers[best]}
            for tool in ("plush_local", "plush_ssh", "plush_cli"):
                if row.get(tool, {}).get("wall"):
                    row[f"speedup_{tool}"] = peers[best] / row[tool]["wall"]["median"]
                    if row.get("pssh_warm", {}).get("wall"):
                        row[f"speedup_{tool}_vs_pssh_warm"] = (
                            row["pssh_warm"]["wall"]["median"] / row[tool]["wall"]["median"]
                        )
        out[str(n)] = row
    return out


NAMES = {
    "plush_local": "Plush `exec(['true'])`, local agents (in the controller)",
    "plush_ssh": "Plush `exec(['true'])`, SSH agents (in the controller)",
    "plush_cli": "`plush exec true` via `plush serve --hosts N` (whole command)",
    "clush_x25519": "`clush -w ... true` (curve25519)",
    "pssh_x25519": "`parallel-ssh -i true` (curve25519)",
    "clush": "`clush -w ... true` (OpenSSH default kex)",
    "pssh_warm": "parallel-ssh lib, sessions kept open (`hostname`, in-process)",
}


def table(summary: dict[str, Any], tools: list[str]) -> str:
    lines = ["| N | tool | ok | wall median (min-max) | client CPU median |", "|---|---|---|---|---|"]
    for n, row in summary.items():
        for tool in tools:
            v = row.get(tool)
            if not v:
                continue
            cpu = f"{v['cpu']['median'] * 1000:.1f} ms" if v.get("cpu") else "-"
            lines.append(
                f"| {n} | {NAMES[tool]} | {v['ok']}/{v['of']} | {sb.fmt(v.get('wall'), 1000, 'ms', 0)} | {cpu} |"
            )
    lines += [
        "",
        "| N | best SSH peer (median) | its / Plush local | its / Plush SSH | its / `plush exec` CLI "
        "| pssh warm / Plush local |",
        "|---|---|---|---|---|---|",
    ]
    for n, row in summary.items():
        best = row.get("best_ssh_peer")
        if not best:
            continue
        cells = [
            f"{row[k]:.1f}x" if k in row else "-"
            for k in (
                "speedup_plush_local",
                "speedup_plush_ssh",
                "speedup_plush_cli",
                "speedup_plush_local_vs_pssh_warm",
            )
        ]
        lines.append(f"| {n} | {best['tool']} {best['median']:.2f} s | {' | '.join(cells)} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10,50,100,200")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--exec-rounds", type=int, default=10)
    parser.add_argument("--peer-runs", type=int, default=2)
    parser.add_argument("--tools", default=",".join(TOOLS))
    parser.add_argument("--out", type=Path, default=RESULTS / "exec_vs_ssh.json")
    parser.add_argument("--child", choices=("local", "ssh"), help=argparse.SUPPRESS)
    parser.add_argument("--pool", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    if args.child:
        got = asyncio.run(child(args.child, sizes[0], args.exec_rounds, args.work, args.pool))
        args.out.write_text(json.dumps(got))
        return 0
    tools = [t for t in args.tools.split(",") if t]
    skipped: dict[str, str] = {}
    for tool in [t for t in tools if t in SSH_PEERS or t == "pssh_warm"]:
        why = sb.have(tool) if tool in SSH_PEERS else (None if sb.PEERS else "no ../shared/peers harness")
        if why:
            skipped[tool] = why
            tools.remove(tool)
            print(f"skip {tool}: {why}", file=sys.stderr)
    records: list[dict[str, Any]] = []
    started, load_before = time.strftime("%Y-%m-%d %H:%M:%S"), sb.load_note()
    with tempfile.TemporaryDirectory(prefix="plush-bench-exec-ssh-") as tmp:
        work = Path(tmp)
        with sb.running_sshd(work / "sshd") as sshd:
            for tool in list(tools):  # untimed warm-up at the largest size: bytecode, page cache, known_hosts, zipapp
                if tool != "pssh_warm":
                    got = one(sshd, tool, max(sizes), work, argparse.Namespace(exec_rounds=1, peer_runs=1), f"w-{tool}")
                    if got[0].get("unsupported"):
                        skipped[tool] = f"plush exec does not talk to a running controller here: {got[0]['err']}"
                        tools.remove(tool)
                        say(f"skip {tool}: {skipped[tool]}")
            for rnd in range(args.rounds):
                for n in sizes[rnd % len(sizes) :] + sizes[: rnd % len(sizes)]:
                    k = (rnd + n) % len(tools)
                    for tool in tools[k:] + tools[:k]:
                        for rec in one(sshd, tool, n, work, args, f"r{rnd}-{tool}-{n}"):
                            rec.update(tool=tool, n=n, round=rnd, load=os.getloadavg()[0])
                            records.append(rec)
                            got = statistics.median(rec["walls"]) if rec.get("walls") else rec["wall"]
                            print(
                                f"r{rnd} {tool} N={n}: {got:.3f} s ok={rec['ok']} load={rec['load']:.1f}",
                                file=sys.stderr,
                            )
    summary = summarise(records, sizes, tools)
    doc = {
        "started": started,
        "machine": machine(),
        "load_before": load_before,
        "load_after": sb.load_note(),
        "rounds": args.rounds,
        "exec_rounds": args.exec_rounds,
        "peer_runs": args.peer_runs,
        "skipped": skipped,
        "summary": summary,
    }
    print(f"warm exec vs SSH peers, {args.rounds} rounds, load (1/5/15 min) {load_before} -> {doc['load_after']}")
    print(table(summary, tools))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=1) + "\n")
    raw = RESULTS / "raw" / f"exec_vs_ssh-{time.strftime('%Y%m%d-%H%M%S')}.json"
    raw.parent.mkdir(parents=True, exist_ok=True)
    raw.write_text(json.dumps({**doc, "records": records}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
