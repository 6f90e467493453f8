"""The live view's cost: ``plush run`` on N sandbox hosts under a pseudo-terminal, live view vs ``--plain``.

    .venv/bin/python bench/live_view.py [--hosts 1000] [--repeat 3] [--out bench/results/live_view.json]

Each run is a fresh ``plush run SPEC --hosts work=N`` in its own pseudo-terminal (150x50, ``TERM=xterm-256color``),
every host printing two lines; the terminal's output is read and thrown away as fast as it comes (as a
terminal emulator would). Per run: the wall time seen from outside, the run's own time (its last line), the
bytes the terminal received, the 1-minute load average just before it. Liveness and join timeouts are
lenient (:data:`LENIENT`, unless set in the environment): what is measured is the view's cost. Runs
alternate (live, plain, live, ...); at the end the medians of each face, the ratio live / plain of the median
wall times, and (``--out``) every run as JSON. Never run by the test suite.
"""

from __future__ import annotations

import argparse
import json
import os
import pty
import re
import select
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

#: liveness and join settings for a loaded machine (as the integration tests'), unless the environment says
LENIENT = {"PLUSH_SILENCE_TIMEOUT": "20", "PLUSH_PING_TIMEOUT": "10", "PLUSH_JOIN_TIMEOUT": "240"}

SPEC = """\
project: livebench
components:
  work:
    hosts: 1..100000
application:
  execution:
    work:
      blocks:
        - process: say
          run: [sh, -c, 'echo hello from $PLUSH_HOST; echo same line']
"""


def one(spec: Path, runs: Path, hosts: int, plain: bool) -> tuple[float, float, int, int]:
    argv = [sys.executable, "-m", "plush", "run", str(spec), "--runs-dir", str(runs), "--hosts", f"work={hosts}"]
    argv += ["--plain"] if plain else []
    master, slave = pty.openpty()
    os.set_blocking(master, False)
    env = dict(os.environ, TERM="xterm-256color", COLUMNS="150", LINES="50")
    for name, value in LENIENT.items():  # the view's cost is measured, not liveness on a loaded machine
        env.setdefault(name, value)
    start = time.monotonic()
    proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env=env, start_new_session=True)
    os.close(slave)
    received, size = bytearray(), 0
    while True:
        ready, _, _ = select.select([master], [], [], 0.5)
        if ready:
            try:
                chunk = os.read(master, 1 << 16)
            except OSError:  # EIO: the terminal's other end closed
                break
            if not chunk:
                break
            size += len(chunk)
            received = (received + chunk)[-65536:]  # the last lines: the run's time
        elif proc.poll() is not None:
            break
    code = proc.wait()
    wall = time.monotonic() - start
    os.close(master)
    took = re.findall(rb"completed in ([0-9.]+)s", bytes(received))
    if code != 0:
        sys.stderr.write(bytes(received[-2000:]).decode("utf-8", "replace"))
    return wall, float(took[-1]) if took else float("nan"), size, code


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", type=Path, default=None, help="write every run and the medians as JSON here")
    parser.add_argument("--plain-only", dest="faces", action="store_const", const=(True,), default=(False, True))
    parser.add_argument("--live-only", dest="faces", action="store_const", const=(False,))
    args = parser.parse_args()
    runs: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory() as tmp:
        spec = Path(tmp) / "spec.yaml"
        spec.write_text(SPEC)
        print("| hosts | face | exit | wall s | run s | terminal bytes | load (1 min) |")
        print("|---|---|---|---|---|---|---|")
        for _ in range(args.repeat):
            for plain in args.faces:
                load = os.getloadavg()[0]
                wall, took, size, code = one(spec, Path(tmp) / "runs", args.hosts, plain)
                face = "--plain" if plain else "live view"
                runs.append({"face": face, "exit": code, "wall": wall, "run": took, "bytes": size, "load": load})
                print(f"| {args.hosts} | {face} | {code} | {wall:.2f} | {took:.2f} | {size} | {load:.1f} |", flush=True)
    medians: dict[str, dict[str, float]] = {}
    for face in ("live view", "--plain"):
        ok = [r for r in runs if r["face"] == face and r["exit"] == 0]
        if ok:
            medians[face] = {k: statistics.median(float(r[k]) for r in ok) for k in ("wall", "run", "load")}  # type: ignore[arg-type]
            medians[face]["ok"] = len(ok)
    ratio = None
    if len(medians) == 2:
        ratio = medians["live view"]["wall"] / medians["--plain"]["wall"]
    print()
    for face, m in medians.items():
        print(f"{face}: median wall {m['wall']:.2f} s, run {m['run']:.2f} s, load {m['load']:.1f} ({m['ok']:.0f} ok)")
    if ratio is not None:
        print(f"live view / --plain (median wall): {ratio:.3f}")
    if args.out is not None:
        loads = [float(r["load"]) for r in runs]  # type: ignore[arg-type]
        result = {
            "hosts": args.hosts,
            "repeat": args.repeat,
            "cpus": os.cpu_count(),
            "python": sys.version.split()[0],
            "when": time.strftime("%Y-%m-%d %H:%M"),
            "load": [min(loads), max(loads)] if loads else None,
            "runs": runs,
            "medians": medians,
            "ratio_live_over_plain": ratio,
        }
        args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
