"""Throughput of the console renderer of ``plush run`` (:class:`plush.shell.console.LineWriter`), issue 7 item 9.

Feeds output as an agent delivers it (chunks of ``CHUNK_SIZE`` bytes) to a LineWriter writing into a null
text sink, and reports MB/s, medians over ``--repeat`` runs:

- **no newline**: ``--mb`` MB without a single newline (the case that was quadratic);
- **lines**: the same volume in 80-byte lines.

    .venv/bin/python bench/console.py                   # 100 MB each, 5 repeats
    .venv/bin/python bench/console.py --mb 20 --repeat 3
"""

from __future__ import annotations

import argparse
import io
import statistics
import time

from plush.processes.runner import CHUNK_SIZE
from plush.shell.console import LineWriter


class _Null(io.TextIOBase):
    def write(self, text: str) -> int:
        return len(text)


def _feed(data: bytes) -> float:
    writer = LineWriter(stdout=_Null(), stderr=_Null())
    start = time.perf_counter()
    for pos in range(0, len(data), CHUNK_SIZE):
        writer("local-1", "/app/c/p/x", 1, "stdout", data[pos : pos + CHUNK_SIZE])
    writer.flush()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mb", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    size = args.mb * 1024 * 1024
    cases = {"no newline": b"x" * size, "80-byte lines": (b"y" * 79 + b"\n") * (size // 80)}
    for name, data in cases.items():
        times = [_feed(data) for _ in range(args.repeat)]
        median = statistics.median(times)
        print(
            f"{name}: {args.mb} MB in {median:.3f} s median ({min(times):.3f}-{max(times):.3f}), "
            f"{len(data) / median / 1e6:.0f} MB/s"
        )


if __name__ == "__main__":
    main()
