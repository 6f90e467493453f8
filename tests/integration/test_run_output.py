"""Process output in whole runs: 100 MB written to stdout by one process arrives intact in the run's log.

The process writes deterministic pseudo-random bytes (``random.Random(seed).randbytes``); the controller,
run with ``-q`` (no printing), writes them to ``hosts/<host>/logs/<block>.<process>.1.stdout``, whose sha256
must equal the digest computed here. The smaller test checks that interleaved stdout/stderr lines reach
both the log files and the terminal, prefixed with host and process.
"""

from __future__ import annotations

import hashlib
import random
import sys
from pathlib import Path

import pytest
from integration_support import events, only_run, run_cli, write_spec

SIZE = 100 * 1024 * 1024
SEED = 20070  # any fixed seed

BIG = f"""\
project: big
components:
  talker:
    hosts: 1
application:
  execution:
    talker:
      blocks:
        - process: flood
          run:
            - {sys.executable}
            - -c
            - |
              import random, sys
              rng = random.Random({SEED})
              out = sys.stdout.buffer
              left = {SIZE}
              while left:
                  n = min(left, 1 << 20)
                  out.write(rng.randbytes(n))
                  left -= n
              out.flush()
"""


def _expected_digest() -> str:
    rng = random.Random(SEED)
    digest = hashlib.sha256()
    left = SIZE
    while left:
        n = min(left, 1 << 20)
        digest.update(rng.randbytes(n))
        left -= n
    return digest.hexdigest()


@pytest.mark.slow
def test_100_mb_of_stdout_arrive_intact(tmp_path: Path) -> None:
    result = run_cli(write_spec(tmp_path, BIG), tmp_path / "runs", "-q")
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    root = only_run(tmp_path / "runs")
    log = root / "hosts" / "local-1" / "logs" / "talker.flood.flood.1.stdout"
    assert log.stat().st_size == SIZE
    digest = hashlib.sha256()
    with log.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    assert digest.hexdigest() == _expected_digest()
    exited = events(root, "process.exited")
    assert [e.data["code"] for e in exited] == [0]


LINES = """\
project: lines
components:
  talker:
    hosts: 2
application:
  execution:
    talker:
      blocks:
        - process: speak
          run: [sh, -c, 'for i in 1 2 3; do echo "out $i"; echo "err $i" >&2; done; printf "no newline"']
"""


def test_output_lines_reach_logs_and_terminal_prefixed(tmp_path: Path) -> None:
    result = run_cli(write_spec(tmp_path, LINES), tmp_path / "runs")
    assert result.returncode == 0, result.stderr
    root = only_run(tmp_path / "runs")
    for host in ("local-1", "local-2"):
        logs = root / "hosts" / host / "logs"
        assert (logs / "talker.speak.speak.1.stdout").read_text() == "out 1\nout 2\nout 3\nno newline"
        assert (logs / "talker.speak.speak.1.stderr").read_text() == "err 1\nerr 2\nerr 3\n"
        tag = f"[{host} /lines/talker/speak/speak] "
        assert [line for line in result.stdout.splitlines() if line.startswith(tag)] == [
            tag + "out 1",
            tag + "out 2",
            tag + "out 3",
            tag + "no newline",  # a last partial line is printed when the run ends
        ]
        assert [line for line in result.stderr.splitlines() if line.startswith(tag)] == [
            tag + "err 1",
            tag + "err 2",
            tag + "err 3",
        ]
