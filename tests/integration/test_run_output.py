"""Process output in whole runs: 100 MB written to stdout by one process arrives intact in the run's log.

The process writes deterministic pseudo-random bytes (``random.Random(seed).randbytes``); the controller,
run with ``-q`` (no printing), writes them to ``hosts/<host>/logs/<block>.<process>.1.stdout``, whose sha256
must equal the digest computed here. The smaller test checks that interleaved stdout/stderr lines reach
both the log files and the terminal, prefixed with host and process.

The output sink writes off the event loop (issue 8): six processes on two hosts writing megabytes of lines
of every length, stdout and stderr interleaved, plus an output file each, leave byte-identical logs and
outputs when the run returns; a log and an output whose paths a process turns into directories mid-run are
each reported once (``output.write_failed``) and the run completes.
"""

from __future__ import annotations

import hashlib
import random
import sys
from pathlib import Path

import pytest
from integration_support import events, only_run, run_cli, run_in_process, write_spec

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


# --- the output sink writes off the event loop (issue 8): lossless, in order, errors reported once ----------

#: what every process of VOLUME writes: deterministic lines of every length (a few far over 64 KiB), on
#: stdout and stderr interleaved, and an output file; seeded by its host and process name
_VOLUME_SCRIPT = """
import os, random, sys
name = sys.argv[1]
rng = random.Random(os.environ["PLUSH_HOST"] + "/" + name)
def line(i):
    return b"%s %d %s\\n" % (name.encode(), i, rng.randbytes(rng.choice((5, 40, 300, 70000)) // 2).hex().encode())
def lines(n):
    return b"".join(line(i) for i in range(n))
out, err = sys.stdout.buffer, sys.stderr.buffer
for _ in range(20):
    out.write(lines(200)); out.flush()
    err.write(lines(40)); err.flush()
with open(name + ".bin", "wb") as f:
    f.write(rng.randbytes(1 << 20))
"""


def _expected_volume(host: str, name: str) -> tuple[bytes, bytes, bytes]:
    rng = random.Random(host + "/" + name)

    def lines(n: int) -> bytes:
        return b"".join(
            b"%s %d %s\n" % (name.encode(), i, rng.randbytes(rng.choice((5, 40, 300, 70000)) // 2).hex().encode())
            for i in range(n)
        )

    out, err = [], []
    for _ in range(20):
        out.append(lines(200))
        err.append(lines(40))
    return b"".join(out), b"".join(err), rng.randbytes(1 << 20)


def _volume_spec() -> str:
    processes = "".join(
        f"            - name: {name}\n              run: [{sys.executable}, -c, {_quoted(_VOLUME_SCRIPT)}, {name}]\n"
        for name in ("a", "b", "c")
    )
    return f"""\
project: volume
components:
  talker:
    hosts: 2
application:
  execution:
    talker:
      blocks:
        - process: many
          outputs: ["*.bin"]
          processes:
{processes}"""


def _quoted(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


async def test_several_processes_writing_megabytes_give_byte_identical_logs_and_outputs(tmp_path: Path) -> None:
    result = await run_in_process(write_spec(tmp_path, _volume_spec()), tmp_path / "runs")
    assert result.ok, result.outcome
    root = result.rundir.root
    total = 0
    for host in ("local-1", "local-2"):
        for name in ("a", "b", "c"):
            out, err, blob = _expected_volume(host, name)
            logs = root / "hosts" / host / "logs"
            got_out = (logs / f"talker.many.{name}.1.stdout").read_bytes()
            got_err = (logs / f"talker.many.{name}.1.stderr").read_bytes()
            assert got_out == out, (host, name, len(got_out), len(out))  # every byte, in order
            assert got_err == err, (host, name, len(got_err), len(err))
            assert (root / "hosts" / host / "outputs" / f"{name}.bin").read_bytes() == blob
            total += len(out) + len(err) + len(blob)
    assert total > 20 * 1024 * 1024  # several MB per process
    collected = events(root, "output.collected")
    assert len(collected) == 6 and all(e.data["ok"] for e in collected)
    assert events(root, "output.write_failed") == []


UNWRITABLE = """\
project: unwritable
components:
  w:
    hosts: 1
application:
  execution:
    w:
      blocks:
        - process: p
          outputs: ["*.txt"]
          run:
            - sh
            - -c
            - |
              host="$PLUSH_RUN_DIR/../hosts/$PLUSH_HOST"
              echo first
              # mid-run, the paths of this process's stderr log and of one output become directories
              mkdir -p "$host/logs/w.p.p.1.stderr" "$host/outputs/blocked.txt/in-the-way"
              for i in 1 2 3; do echo "err $i" >&2; echo "out $i"; done
              echo kept > kept.txt; echo lost > blocked.txt
"""


async def test_a_file_that_cannot_be_written_is_reported_once_and_the_run_finishes(tmp_path: Path) -> None:
    result = await run_in_process(write_spec(tmp_path, UNWRITABLE), tmp_path / "runs")
    assert result.ok, result.outcome  # the run went on and completed
    host = result.rundir.root / "hosts" / "local-1"
    assert (host / "logs" / "w.p.p.1.stdout").read_text() == "first\nout 1\nout 2\nout 3\n"
    assert (host / "outputs" / "kept.txt").read_text() == "kept\n"
    failed = events(result.rundir.root, "output.write_failed")
    assert sorted((e.data["path"], e.data["error"]) for e in failed) == [
        (str(host / "logs" / "w.p.p.1.stderr"), "Is a directory"),
        (str(host / "outputs" / "blocked.txt"), "Is a directory"),
    ]  # once per file, though three writes to the stderr log failed
    assert sorted((e.host, e.block, e.instance) for e in failed) == [
        ("local-1", "/unwritable/w/p", None),  # the upload: its block
        ("local-1", "/unwritable/w/p/p", 1),  # the log: its process and instance
    ]
    collected = {e.data["name"]: e.data["ok"] for e in events(result.rundir.root, "output.collected")}
    assert collected == {"kept.txt": True, "blocked.txt": False}
    assert events(result.rundir.root, "run.storage_failed") == []


CHATTY = """\
project: chatty
components:
  talkers:
    hosts: 2
application:
  execution:
    talkers:
      blocks:
        - process: count
          run: [seq, 1, 50000]
"""


def test_a_run_whose_output_nobody_reads_still_ends_and_its_output_comes_when_read(tmp_path: Path) -> None:
    """``plush run SPEC | less`` left on its first page: the pipe fills after 64 KiB, the run goes on (the
    console writes from threads of its own: plush.shell.spool), and the reader gets every line later."""
    import subprocess

    from integration_support import RUN_TIMEOUT, _cli_argv, cli_env, kill_session, wait_until

    from plush.controller.runstatus import read_status

    spec = write_spec(tmp_path, CHATTY)
    runs = tmp_path / "runs"
    with (tmp_path / "stderr").open("w") as err:
        proc = subprocess.Popen(
            _cli_argv(spec, runs, ["--plain"]),
            env=cli_env(),
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
            start_new_session=True,
        )
        try:
            root = wait_until(lambda: runs.exists() and any(runs.iterdir()) and only_run(runs), 60, "the run dir")
            wait_until(lambda: read_status(root).state == "completed", RUN_TIMEOUT, "the run's end, stdout unread")
            out, _ = proc.communicate(timeout=RUN_TIMEOUT)  # now read it all
        finally:
            kill_session(proc)
    assert proc.returncode == 0, (tmp_path / "stderr").read_text()
    for host in ("local-1", "local-2"):
        numbers = [line.rsplit(" ", 1)[1] for line in out.splitlines() if line.startswith(f"[{host} ")]
        assert numbers == [str(i) for i in range(1, 50001)]  # every line, in order (~4.4 MB: under the limit)
