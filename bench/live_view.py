"""The live view's cost: ``plush run`` on N sandbox hosts under a pseudo-terminal, live view vs ``--plain``.

    .venv/bin/python bench/live_view.py [--hosts 1000] [--repeat 1]

Each run is a fresh ``plush run SPEC --hosts work=N`` in its own pseudo-terminal (150x50, ``TERM=xterm-256color``),
every host printing two lines; the terminal's output is read and thrown away as fast as it comes (as a
terminal emulator would). Per run: the wall time seen from outside, the run's own time (its last line), the
bytes the terminal received. Runs alternate (live, plain, live, ...). Never run by the test suite.
"""

from __future__ import annotations

import argparse
import os
import pty
import re
import select
import subprocess
import sys
import tempfile
import time
from pathlib import Path

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
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--plain-only", dest="faces", action="store_const", const=(True,), default=(False, True))
    parser.add_argument("--live-only", dest="faces", action="store_const", const=(False,))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        spec = Path(tmp) / "spec.yaml"
        spec.write_text(SPEC)
        print("| hosts | face | exit | wall s | run s | terminal bytes |")
        print("|---|---|---|---|---|---|")
        for _ in range(args.repeat):
            for plain in args.faces:
                wall, took, size, code = one(spec, Path(tmp) / "runs", args.hosts, plain)
                face = "--plain" if plain else "live view"
                print(f"| {args.hosts} | {face} | {code} | {wall:.2f} | {took:.2f} | {size} |", flush=True)


if __name__ == "__main__":
    main()
