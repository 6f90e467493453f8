"""The local-hosts benchmark: a trivial one-block spec on N local sandbox hosts, per phase, CPU and RSS.

    .venv/bin/python bench/run_local.py [--sizes 10,50,100,200] [--repeat 3] [--set silence_timeout=10]
                                        [--patch NAME] [--profile] [--label NAME] [--out FILE]

Each run is a fresh controller process (``bench/rusage_wrapper.py`` running ``plush run SPEC -q --hosts
comp=N``), so every run pays what a user pays: interpreter start, imports, CA load, warm-up, agents. Per run
it records the wall time seen from outside, the phase marks of the journal's ``run.finished`` event, the
controller's own CPU (user+sys) and peak RSS, the CPU of everything the controller reaped (the agents and
their processes), the controller-side probes of the wrapper, and the journal's event counts. Per size it
reports the median, min and max over the repeats and the ratios to the targets (100 hosts under
:data:`TARGET_WALL_S` seconds; controller RSS at 200 hosts under :data:`TARGET_RSS_MB` MB).

Results: a summary JSON (default ``bench/results/local.json``) and the raw per-run records under
``bench/results/raw/`` (git-ignored); a Markdown table on stdout. ``--set NAME=VALUE`` passes a setting
as ``PLUSH_NAME`` to the controller; ``--patch`` applies a candidate fix of the wrapper (to verify a
recommendation). Run directories live in a temporary directory that is removed (``--keep-runs`` keeps it).
Never run by the test suite.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
WRAPPER = HERE / "rusage_wrapper.py"
TARGET_WALL_S = 5.0  # whole run on 100 local hosts
TARGET_RSS_MB = 200.0  # controller peak RSS at 200 hosts

TRIVIAL_SPEC = """<?xml version="1.0" encoding="UTF-8"?>
<!-- The benchmark's spec: one process block that runs `true` once on every host of one component. -->
<plush>
  <project name="bench">
    <component name="comp">
      <rspec><num_hosts min="1" max="1000"/></rspec>
    </component>
    <application_block name="bench">
      <execution>
        <component_block name="cb">
          <component name="comp"/>
          <process_block name="noop">
            <process name="noop"><path>true</path></process>
          </process_block>
        </component_block>
      </execution>
    </application_block>
  </project>
</plush>
"""

MARKS = ("agents_started", "all_joined", "all_installed", "all_finished", "stopping", "stopped")
#: phase name -> (from mark, to mark); None is the start of the run engine
PHASES = {
    "start": (None, "agents_started"),
    "join": ("agents_started", "all_joined"),
    "install": ("all_joined", "all_installed"),
    "execute": ("all_installed", "all_finished"),
    "stop": ("stopping", "stopped"),
}


def machine() -> dict[str, Any]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "nproc": os.cpu_count(),
        "cpu_model": model,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def read_journal(path: Path) -> dict[str, Any]:
    """The run.finished data, event counts and the first failure of the journal at ``path``."""
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        rows = db.execute("SELECT name, host, data FROM events ORDER BY rowid").fetchall()
    finally:
        db.close()
    counts = Counter(name for name, _, _ in rows)
    finished: dict[str, Any] = {}
    failure = ""
    for name, host, data in rows:
        if name == "run.finished" and data:
            finished = json.loads(data)
        elif name == "host.failed" and not failure:
            failure = f"{host}: {json.loads(data).get('reason') if data else ''}"
    return {"finished": finished, "counts": dict(counts), "first_host_failure": failure}


def one_run(spec: Path, n: int, work: Path, args: argparse.Namespace, tag: str) -> dict[str, Any]:
    runs_dir = work / tag
    runs_dir.mkdir(parents=True)
    rusage_file = work / f"{tag}.rusage.json"
    cmd = [sys.executable, str(WRAPPER), str(rusage_file)]
    if args.profile:
        cmd += ["--profile", str(Path(args.raw_dir) / f"{args.label}-{tag}.prof")]
    for patch in args.patch:
        cmd += ["--patch", patch]
    cmd += ["--", "run", str(spec), "--runs-dir", str(runs_dir), "-q", "--hosts", f"comp={n}"]
    env = dict(os.environ)
    # the controller's own bytecode is cached across runs, as for an installed plush (agents get the launcher's)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(Path(args.raw_dir).resolve() / "controller-pycache")
    for setting in args.set:
        name, _, value = setting.partition("=")
        env[f"PLUSH_{name.upper()}"] = value
    t = time.monotonic()
    try:
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=args.timeout, check=False)
        code, stderr = proc.returncode, proc.stderr
    except subprocess.TimeoutExpired as exc:
        code, stderr = -1, f"timed out after {args.timeout}s: {exc.stderr!r}"
    wall = time.monotonic() - t
    record: dict[str, Any] = {"hosts": n, "tag": tag, "exit_code": code, "wall": wall}
    record["stderr_tail"] = stderr.strip().splitlines()[-3:]
    if rusage_file.exists():
        rusage = json.loads(rusage_file.read_text())
        record.update(
            controller_cpu=rusage["self"]["user"] + rusage["self"]["sys"],
            controller_user=rusage["self"]["user"],
            controller_sys=rusage["self"]["sys"],
            controller_rss_mb=rusage["self"]["maxrss_kb"] / 1024,
            agents_cpu=rusage["children"]["user"] + rusage["children"]["sys"],
            agent_max_rss_mb=rusage["children"]["maxrss_kb"] / 1024,
            cli_import=rusage["cli_import"],
            probes={k: round(sum(v), 4) for k, v in rusage["probes"].items()},
            probe_calls={k: len(v) for k, v in rusage["probes"].items()},
        )
    journals = list(runs_dir.glob("*/journal.sqlite"))
    if journals:
        j = read_journal(journals[0])
        timings = j["finished"].get("timings", {})
        record.update(
            ok=bool(j["finished"].get("ok")),
            reason=j["finished"].get("reason", "no run.finished event"),
            timings=timings,
            events=j["counts"],
            events_total=sum(j["counts"].values()),
            journal_kb=sum(p.stat().st_size for p in journals[0].parent.glob("journal.sqlite*")) / 1024,
            first_host_failure=j["first_host_failure"],
        )
        phases = {}
        for phase, (a, b) in PHASES.items():
            if b in timings and (a is None or a in timings):
                phases[phase] = timings[b] - (timings[a] if a else 0.0)
        if "stopped" in timings:
            phases["outside_engine"] = wall - timings["stopped"]
        record["phases"] = phases
    else:
        record.update(ok=False, reason="no journal", phases={}, timings={})
    if not args.keep_runs:
        shutil.rmtree(runs_dir, ignore_errors=True)
    return record


def stats(values: list[float]) -> dict[str, float] | None:
    if not values:
        return None
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def summarise(records: list[dict[str, Any]]) -> dict[str, Any]:
    ok = [r for r in records if r.get("ok")]
    use = ok or records  # phases of failed runs are partial: summarise successes when there are any

    def col(key: str) -> list[float]:
        return [float(r[key]) for r in use if key in r]

    out: dict[str, Any] = {"runs": len(records), "ok": len(ok)}
    for key in ("wall", "controller_cpu", "controller_rss_mb", "agents_cpu", "agent_max_rss_mb", "events_total"):
        out[key] = stats(col(key))
    out["phases"] = {
        p: stats([r["phases"][p] for r in use if p in r.get("phases", {})]) for p in (*PHASES, "outside_engine")
    }
    probe_names = sorted({k for r in use for k in r.get("probes", {})})
    out["probes"] = {k: stats([r["probes"][k] for r in use if k in r.get("probes", {})]) for k in probe_names}
    out["failures"] = [
        f"{r['tag']}: {r.get('reason', '')} {r.get('first_host_failure', '')}".strip()
        for r in records
        if not r.get("ok")
    ]
    return out


def _fmt(s: dict[str, float] | None, digits: int = 2) -> str:
    if s is None:
        return "-"
    return f"{s['median']:.{digits}f} ({s['min']:.{digits}f}-{s['max']:.{digits}f})"


def table(summary: dict[int, dict[str, Any]]) -> str:
    cols = ["hosts", "ok", "wall s", *(f"{p} s" for p in PHASES), "ctl CPU s", "ctl RSS MB", "agents CPU s"]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for n, s in sorted(summary.items()):
        row = [str(n), f"{s['ok']}/{s['runs']}", _fmt(s["wall"])]
        row += [_fmt(s["phases"][p]) for p in PHASES]
        row += [_fmt(s["controller_cpu"]), _fmt(s["controller_rss_mb"], 0), _fmt(s["agents_cpu"], 1)]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def ratios(summary: dict[int, dict[str, Any]]) -> dict[str, Any]:
    """Medians against the targets; ``ok`` says how many runs succeeded (a failed run's wall is the time it
    took to fail, so its ratio is no success)."""
    out: dict[str, Any] = {}
    if 100 in summary and summary[100]["wall"]:
        s, wall = summary[100], summary[100]["wall"]["median"]
        out["wall_100_hosts"] = {
            "median_s": wall,
            "target_s": TARGET_WALL_S,
            "ratio": wall / TARGET_WALL_S,
            "ok": f"{s['ok']}/{s['runs']}",
        }
    if 200 in summary and summary[200]["controller_rss_mb"]:
        s, rss = summary[200], summary[200]["controller_rss_mb"]["median"]
        out["rss_200_hosts"] = {
            "median_mb": rss,
            "target_mb": TARGET_RSS_MB,
            "ratio": rss / TARGET_RSS_MB,
            "ok": f"{s['ok']}/{s['runs']}",
        }
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Benchmark plush run on N local hosts.")
    parser.add_argument("--sizes", default="10,50,100,200", help="comma-separated host counts")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--spec", type=Path, help="a spec with one component 'comp' (default: a trivial one)")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", help="a setting (PLUSH_NAME)")
    parser.add_argument("--patch", action="append", default=[], help="a candidate fix of rusage_wrapper.py")
    parser.add_argument("--profile", action="store_true", help="cProfile each controller into the raw dir")
    parser.add_argument("--label", default="local", help="names the result files")
    parser.add_argument("--out", type=Path, help="summary JSON (default bench/results/<label>.json)")
    parser.add_argument("--raw-dir", type=Path, default=HERE / "results" / "raw")
    parser.add_argument("--timeout", type=float, default=180.0, help="seconds per run")
    parser.add_argument("--keep-runs", action="store_true", help="keep the run directories")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    out = args.out or HERE / "results" / f"{args.label}.json"
    args.raw_dir.mkdir(parents=True, exist_ok=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="plush-bench-"))
    spec = args.spec or work / "trivial.xml"
    if args.spec is None:
        spec.write_text(TRIVIAL_SPEC)
    records: list[dict[str, Any]] = []
    t0 = time.monotonic()
    try:
        for rep in range(args.repeat):  # sizes interleaved, so a slow spell of the machine hits all sizes
            for n in sizes:
                rec = one_run(spec, n, work, args, f"n{n}-r{rep}")
                records.append(rec)
                status = "ok" if rec.get("ok") else f"FAILED ({rec.get('reason')}; {rec.get('first_host_failure')})"
                print(
                    f"{n:>4} hosts #{rep}: {rec['wall']:6.2f}s wall, ctl {rec.get('controller_cpu', 0):5.2f}s CPU "
                    f"{rec.get('controller_rss_mb', 0):5.0f} MB, agents {rec.get('agents_cpu', 0):6.1f}s CPU  {status}",
                    file=sys.stderr,
                    flush=True,
                )
    finally:
        if args.keep_runs:
            print(f"run directories kept in {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)
    summary = {n: summarise([r for r in records if r["hosts"] == n]) for n in sizes}
    result = {
        "label": args.label,
        "when": time.strftime("%Y-%m-%d %H:%M:%S"),
        "machine": machine(),
        "options": {"sizes": sizes, "repeat": args.repeat, "set": args.set, "patch": args.patch},
        "bench_seconds": round(time.monotonic() - t0, 1),
        "targets": {"wall_100_hosts_s": TARGET_WALL_S, "controller_rss_200_hosts_mb": TARGET_RSS_MB},
        "ratios": ratios(summary),
        "summary": {str(n): s for n, s in summary.items()},
    }
    out.write_text(json.dumps(result, indent=1) + "\n")
    (args.raw_dir / f"{args.label}-runs.json").write_text(json.dumps(records, indent=1) + "\n")
    print(table(summary))
    for name, r in result["ratios"].items():
        print(f"{name}: {r['ratio']:.2f} x target ({r['ok']} runs ok)")
    for n, s in summary.items():
        for failure in s["failures"]:
            print(f"{n} hosts: FAILED {failure}")
    print(f"summary: {out}; raw runs: {args.raw_dir}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
