"""What installing a package costs now that installed files are copies: a 10 MB package to 100 local hosts.

    .venv/bin/python bench/install_copies.py [--hosts 100] [--mb 10] [--repeat 5] [--cold] [--label NAME]
                                             [--src DIR]

Two measures, each the median (min-max) of ``--repeat`` runs:

- **micro**: in this process, one 10 MB cache entry copied into 100 fresh files the way the agent does it
  (:func:`plush.agent.cache.copy_into`: reflink, else ``copy_file_range``, else read/write), against
  ``os.link`` (what installs did before) and a plain read/write copy. Pure file-system cost, no run;
- **runs**: ``plush run`` of a spec whose one component installs one package of ``--mb`` MB and runs
  ``true``, on ``--hosts`` local hosts, through ``bench/run_local.py``'s runner (a fresh controller process
  per run). The *install* phase is ``all_joined`` -> ``all_installed`` from the journal. With a warm cache
  (default: one priming run first, not counted) an install is the copy (or link) and the cache check;
  with ``--cold`` the cache is emptied before each run, so every host also fetches the package.

``--src DIR`` runs the controller and its agents from another source tree (``DIR/plush``), e.g. the code
before a change: ``git archive <commit> src | tar -x -C /tmp/base`` then ``--src /tmp/base/src``. The
micro measure always uses this tree. Results: ``bench/results/<label>.json``; a Markdown table on stdout.
Never run by the test suite.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import run_local  # noqa: E402  (the runner and the journal reader of the local bench)

SPEC = """\
project: copies
software:
  payload:
    packages: [payload.bin]
components:
  comp:
    hosts: {min: 1, max: 1000}
    software: [payload]
application:
  execution:
    comp:
      blocks:
        - process: noop
          run: [true]
"""


def _stats(values: list[float]) -> dict[str, float] | None:
    if not values:
        return None
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def _fmt(s: dict[str, float] | None, scale: float = 1.0, digits: int = 2) -> str:
    if s is None:
        return "-"
    return f"{s['median'] * scale:.{digits}f} ({s['min'] * scale:.{digits}f}-{s['max'] * scale:.{digits}f})"


def install_times(runs_dir: Path) -> dict[str, float]:
    """From the run's journal: each host's ``host.prepared`` -> ``host.installed`` (median and max over the
    hosts, seconds), and the span from the first ``prepared`` to the last ``installed``."""
    journal = next(runs_dir.glob("*/journal.sqlite"))
    db = sqlite3.connect(f"file:{journal}?mode=ro", uri=True)
    try:
        rows = db.execute(
            "SELECT name, host, at FROM events WHERE name IN ('host.prepared', 'host.installed') ORDER BY seq"
        ).fetchall()
    finally:
        db.close()
    prepared = {h: at for name, h, at in rows if name == "host.prepared"}
    installed = {h: at for name, h, at in rows if name == "host.installed"}
    per_host = [installed[h] - prepared[h] for h in installed if h in prepared]
    if not per_host:
        return {}
    return {
        "host_median": statistics.median(per_host),
        "host_max": max(per_host),
        "span": max(installed.values()) - min(prepared.values()),
    }


def micro(work: Path, hosts: int, mb: int, repeat: int) -> dict[str, Any]:
    """Seconds to give ``hosts`` files a ``mb`` MB entry: by hard link, by copy_into, by read/write."""
    from plush.agent.cache import copy_into

    entry = work / "entry"
    entry.write_bytes(os.urandom(mb << 20))
    entry.chmod(0o444)
    ways: dict[str, list[float]] = {"link": [], "copy_into": [], "read_write": []}
    how = ""
    for rep in range(repeat):
        for way, times in ways.items():
            target = work / f"m-{way}-{rep}"
            target.mkdir()
            t = time.perf_counter()
            for i in range(hosts):
                dest = target / str(i)
                if way == "link":
                    os.link(entry, dest)
                    continue
                fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                try:
                    if way == "copy_into":
                        how = copy_into(str(entry), fd)
                    else:
                        with entry.open("rb") as src, open(fd, "wb", closefd=False) as out:
                            shutil.copyfileobj(src, out, 1 << 20)
                finally:
                    os.close(fd)
            times.append(time.perf_counter() - t)
            shutil.rmtree(target)
    return {"method": how, **{way: _stats(v) for way, v in ways.items()}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Benchmark installing a package on N local hosts.")
    parser.add_argument("--hosts", type=int, default=100)
    parser.add_argument("--mb", type=int, default=10, help="package size in MB")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--cold", action="store_true", help="empty the content cache before each run")
    parser.add_argument("--no-micro", action="store_true", help="skip the in-process copy measure")
    parser.add_argument("--src", type=Path, help="run plush from this source tree (the directory holding plush/)")
    parser.add_argument("--label", default="install-copies")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds per run")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="plush-bench-install-"))
    cache = work / "cache"
    os.environ["PLUSH_CACHE_DIR"] = str(cache)  # inherited by the controller and its agents
    if args.src:
        os.environ["PYTHONPATH"] = str(args.src.resolve())
    runner = argparse.Namespace(
        profile=False,
        patch=[],
        set=[],
        raw_dir=str(HERE / "results" / "raw"),
        timeout=args.timeout,
        keep_runs=True,  # read here, then removed
        label=args.label,
    )
    Path(runner.raw_dir).mkdir(parents=True, exist_ok=True)
    result: dict[str, Any] = {
        "label": args.label,
        "when": time.strftime("%Y-%m-%d %H:%M:%S"),
        "machine": run_local.machine(),
        "options": {"hosts": args.hosts, "mb": args.mb, "repeat": args.repeat, "cold": args.cold, "src": str(args.src)},
    }
    records: list[dict[str, Any]] = []
    try:
        if not args.no_micro:
            result["micro"] = micro(work, args.hosts, args.mb, args.repeat)
        spec = work / "spec.yaml"
        spec.write_text(SPEC)
        (work / "payload.bin").write_bytes(os.urandom(args.mb << 20))
        if not args.cold:
            run_local.one_run(spec, args.hosts, work, runner, "prime")
        for rep in range(args.repeat):
            if args.cold:
                shutil.rmtree(cache, ignore_errors=True)
            rec = run_local.one_run(spec, args.hosts, work, runner, f"r{rep}")
            rec["install_times"] = install_times(work / f"r{rep}") if rec.get("ok") else {}
            shutil.rmtree(work / f"r{rep}", ignore_errors=True)
            records.append(rec)
            times = {k: round(v, 3) for k, v in rec["install_times"].items()}
            status = "ok" if rec.get("ok") else f"FAILED {rec.get('reason')}"
            print(
                f"run {rep}: {rec['wall']:6.2f}s wall, install {times}, agents {rec.get('agents_cpu', 0):5.1f}s CPU"
                f" {status}",
                file=sys.stderr,
                flush=True,
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    ok = [r for r in records if r.get("ok")]
    result["runs"] = {
        "ok": f"{len(ok)}/{len(records)}",
        "wall": _stats([r["wall"] for r in ok]),
        "install_phase": _stats([r["phases"]["install"] for r in ok if "install" in r.get("phases", {})]),
        **{
            f"install_{k}": _stats([r["install_times"][k] for r in ok if k in r["install_times"]])
            for k in ("host_median", "host_max", "span")
        },
        "agents_cpu": _stats([r["agents_cpu"] for r in ok if "agents_cpu" in r]),
    }
    out = HERE / "results" / f"{args.label}.json"
    out.write_text(json.dumps(result, indent=1) + "\n")
    (Path(runner.raw_dir) / f"{args.label}-runs.json").write_text(json.dumps(records, indent=1) + "\n")
    r = result["runs"]
    print("| label | cache | ok | wall s | install per host s | slowest host s | all installs s | agents CPU s |")
    print("|---|---|---|---|---|---|---|---|")
    print(
        f"| {args.label} | {'cold' if args.cold else 'warm'} | {r['ok']} | {_fmt(r['wall'])} | "
        f"{_fmt(r['install_host_median'], digits=3)} | {_fmt(r['install_host_max'], digits=3)} | "
        f"{_fmt(r['install_span'], digits=3)} | {_fmt(r['agents_cpu'], digits=1)} |"
    )
    if "micro" in result:
        m = result["micro"]
        print(f"\nmicro, {args.hosts} x {args.mb} MB (ms): copy_into ({m['method']}) {_fmt(m['copy_into'], 1000, 0)}, ")
        print(f"  os.link {_fmt(m['link'], 1000, 1)}, read/write {_fmt(m['read_write'], 1000, 0)}")
    print(f"summary: {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
