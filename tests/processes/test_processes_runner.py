"""The process runner with real processes: argv, env, cwd, redirections, streaming, exit statuses."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import signal
import sys
from pathlib import Path

import pytest

from plush.processes.policy import ExitStatus
from plush.processes.runner import (
    CHUNK_SIZE,
    ProcessRunner,
    ProcessStartError,
    run_process,
    start_process,
)
from plush.processes.tree import TAG_VARIABLE, find_tagged
from plush.spec.model import Process

PY = sys.executable


class Collect:
    """A sink that keeps everything, per stream, and can wait for a text to appear."""

    def __init__(self) -> None:
        self.data: dict[str, bytearray] = {"stdout": bytearray(), "stderr": bytearray()}
        self.changed = asyncio.Event()

    async def __call__(self, stream: str, data: bytes) -> None:
        self.data[stream] += data
        self.changed.set()

    async def wait_for(self, text: bytes, stream: str = "stdout", count: int = 1) -> None:
        while self.data[stream].count(text) < count:
            self.changed.clear()
            await asyncio.wait_for(self.changed.wait(), 10)

    def text(self, stream: str = "stdout") -> str:
        return self.data[stream].decode()


async def test_argv_with_spaces_and_quotes_passes_through_intact() -> None:
    args = ["a b", "'single'", '"double"', "$HOME", "*", "", "back\\slash", "new\nline", "; rm -rf /"]
    out = Collect()
    status = await run_process([PY, "-c", "import json, sys; print(json.dumps(sys.argv[1:]))", *args], sink=out)
    assert status == ExitStatus(code=0)
    assert json.loads(out.text()) == args


async def test_env_is_merged_onto_the_base_env_and_carries_the_tag(tmp_path: Path) -> None:
    out = Collect()
    handle = await start_process(
        [PY, "-c", "import json, os; print(json.dumps({'env': dict(os.environ), 'cwd': os.getcwd()}))"],
        base_env={"PATH": os.environ["PATH"], "KEEP": "base", "OVERRIDE": "base"},
        env={"OVERRIDE": "mine", "SPACED": "a b 'c'"},
        cwd=str(tmp_path),
        sink=out,
    )
    assert await handle.wait() == ExitStatus(code=0)
    seen = json.loads(out.text())
    env = seen["env"]
    assert env["KEEP"] == "base"
    assert env["OVERRIDE"] == "mine"
    assert env["SPACED"] == "a b 'c'"
    assert env[TAG_VARIABLE] == handle.tag
    assert "HOME" not in env  # the base env replaces this process's environment
    assert Path(seen["cwd"]) == tmp_path
    assert TAG_VARIABLE not in handle.env  # the recorded env is the user's, without the tag


async def test_each_process_leads_its_own_session() -> None:
    out = Collect()
    handle = await start_process([PY, "-c", "import os; print(os.getsid(0), os.getpgid(0))"], sink=out)
    await handle.wait()
    sid, pgid = map(int, out.text().split())
    assert sid == pgid == handle.pgid == handle.pid
    assert pgid != os.getpgid(0)


async def test_stdin_from_a_file_and_default_dev_null(tmp_path: Path) -> None:
    (tmp_path / "in.txt").write_text("line one\nline two\n")
    copy = [PY, "-c", "import sys; sys.stdout.write(sys.stdin.read().upper())"]
    out = Collect()
    assert await run_process(copy, cwd=str(tmp_path), stdin="in.txt", sink=out) == ExitStatus(code=0)
    assert out.text() == "LINE ONE\nLINE TWO\n"
    empty = Collect()
    assert await run_process(copy, sink=empty) == ExitStatus(code=0)
    assert empty.text() == ""


async def test_stdout_and_stderr_to_files_relative_to_cwd(tmp_path: Path) -> None:
    script = "import sys; print('to out'); print('to err', file=sys.stderr)"
    status = await run_process([PY, "-c", script], cwd=str(tmp_path), stdout="out.log", stderr="err.log")
    assert status.success
    assert (tmp_path / "out.log").read_text() == "to out\n"
    assert (tmp_path / "err.log").read_text() == "to err\n"
    await run_process([PY, "-c", script], cwd=str(tmp_path), stdout="out.log", stderr="err.log", append=True)
    assert (tmp_path / "out.log").read_text() == "to out\nto out\n"


async def test_one_stream_to_a_file_the_other_streamed(tmp_path: Path) -> None:
    out = Collect()
    handle = await start_process(
        [PY, "-c", "import sys; print('file'); sys.stderr.write('streamed')"],
        stdout=str(tmp_path / "o.txt"),
        sink=out,
    )
    await handle.wait()
    assert (tmp_path / "o.txt").read_text() == "file\n"
    assert out.text("stderr") == "streamed"
    assert out.text("stdout") == ""
    assert handle.stderr_tail == "streamed"
    assert handle.bytes_out == {"stderr": len("streamed")}


@pytest.mark.parametrize("code", [0, 1, 3, 255])
async def test_exit_codes(code: int) -> None:
    assert await run_process([PY, "-c", f"import sys; sys.exit({code})"]) == ExitStatus(code=code)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL, signal.SIGSEGV])
async def test_death_by_signal(sig: int) -> None:
    status = await run_process([PY, "-c", f"import os; os.kill(os.getpid(), {int(sig)})"])
    assert status == ExitStatus(signal=int(sig))
    assert not status.success


async def test_start_errors_name_the_command(tmp_path: Path) -> None:
    with pytest.raises(ProcessStartError, match="no-such-program-plush") as missing:
        await start_process(["no-such-program-plush", "x"])
    assert missing.value.argv == ("no-such-program-plush", "x")
    with pytest.raises(ProcessStartError):
        await start_process([PY, "-c", "pass"], cwd=str(tmp_path / "nowhere"))
    with pytest.raises(ProcessStartError):
        await start_process([PY, "-c", "pass"], stdin=str(tmp_path / "missing-input"))
    with pytest.raises(ValueError):
        await start_process([])


@pytest.mark.slow
async def test_100_mb_through_a_slow_sink_arrive_intact_with_bounded_buffering() -> None:
    """The producer writes 100 MB; the sink is slow. Nothing is lost, and the producer is held back by the
    pipe: what it wrote (kernel counter ``wchar``) never runs ahead of what the sink got by more than the
    pipe plus one chunk (plus slack for one write of the producer)."""
    total = 100 * 1024 * 1024
    producer = (
        "import hashlib, os, sys\n"
        "h = hashlib.sha256()\n"
        f"left = {total}\n"
        "while left:\n"
        "    block = os.urandom(min(left, 65536))\n"
        "    h.update(block)\n"
        "    view = memoryview(block)\n"
        "    while view:\n"
        "        view = view[os.write(1, view):]\n"
        "    left -= len(block)\n"
        "sys.stderr.write(h.hexdigest())\n"
    )
    digest = hashlib.sha256()
    received = 0
    max_chunk = 0
    max_ahead = 0
    stalled_reads = 0
    calls = 0
    err = bytearray()
    pid_box: list[int] = []

    def written_by_producer() -> int:
        with open(f"/proc/{pid_box[0]}/io") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("wchar:"))

    async def slow_sink(stream: str, data: bytes) -> None:
        nonlocal received, max_chunk, max_ahead, stalled_reads, calls
        if stream == "stderr":
            err.extend(data)
            return
        calls += 1
        max_chunk = max(max_chunk, len(data))
        digest.update(data)
        received += len(data)
        try:
            ahead = written_by_producer() - received
        except (OSError, IndexError):  # the producer already exited
            ahead = 0
        max_ahead = max(max_ahead, ahead)
        if ahead > 0:
            stalled_reads += 1
        if calls % 4 == 0:
            await asyncio.sleep(0.002)  # the slow consumer

    handle = await start_process([PY, "-c", producer], sink=slow_sink)
    pid_box.append(handle.pid)
    status = await handle.wait()
    assert status == ExitStatus(code=0)
    assert received == total
    assert digest.hexdigest() == err.decode()
    assert max_chunk <= CHUNK_SIZE
    # pipe capacity (64 KiB by default, up to 1 MiB if raised) + one 64 KiB write in flight
    assert max_ahead <= 2 * 1024 * 1024
    assert stalled_reads > 0  # the producer was ahead of the sink, i.e. blocked on the full pipe


async def test_a_failing_sink_stops_reading_and_wait_reports_it() -> None:
    class SinkBroke(Exception):
        pass

    async def broken(stream: str, data: bytes) -> None:
        raise SinkBroke("disk full")

    # the writer gets EPIPE once the runner closed its end: it cannot block forever
    script = (
        "import sys\n"
        "try:\n"
        "    while True: sys.stdout.write('x' * 65536); sys.stdout.flush()\n"
        "except BrokenPipeError:\n"
        "    sys.exit(9)"
    )
    handle = await start_process([PY, "-c", script], sink=broken)
    with pytest.raises(SinkBroke, match="disk full"):
        await handle.wait()
    assert handle.status == ExitStatus(code=9)


async def test_a_descendant_holding_the_pipe_does_not_block_wait_forever() -> None:
    script = (
        "import os, sys, time\n"
        "if os.fork() == 0:\n"
        "    time.sleep(300)\n"  # keeps stdout open, silent
        "    os._exit(0)\n"
        "print('parent done', flush=True)\n"
    )
    out = Collect()
    handle = await start_process([PY, "-c", script], sink=out, eof_grace=0.2)
    try:
        assert await handle.wait() == ExitStatus(code=0)
        assert handle.output_detached
        assert out.text() == "parent done\n"
        assert len(handle.members()) == 1  # the sleeping child is still there (same group)
    finally:
        await handle.stop(grace=1.0)
    assert handle.members() == []


async def test_run_process_cancelled_kills_the_tree() -> None:
    out = Collect()
    tag = f"plush-test-cancel-{os.getpid()}"
    task = asyncio.ensure_future(
        run_process([PY, "-c", "import time; print('up', flush=True); time.sleep(300)"], sink=out, tag=tag)
    )
    await out.wait_for(b"up")
    assert len(find_tagged(tag)) == 1
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    for _ in range(200):
        if not find_tagged(tag):
            break
        await asyncio.sleep(0.025)
    assert find_tagged(tag) == []


async def test_runner_starts_spec_processes_and_stops_them_all(tmp_path: Path) -> None:
    (tmp_path / "work").mkdir()
    runner = ProcessRunner(base_env={"PATH": os.environ["PATH"]})
    model = Process(
        name="echo",
        path=PY,
        args=("-c", "import os; print(os.environ['GREETING'], os.getcwd())"),
        cwd="work",
        env=(("GREETING", "hello there"),),
        stdout="echo.out",
    )
    done = await runner.start_model(model, str(tmp_path))
    assert await done.wait() == ExitStatus(code=0)
    assert (tmp_path / "work" / "echo.out").read_text() == "hello there {}\n".format(tmp_path / "work")

    out = Collect()
    sleepers = [
        await runner.start([PY, "-c", "import time; print('up', flush=True); time.sleep(300)"], sink=out)
        for _ in range(3)
    ]
    await out.wait_for(b"up", count=3)
    assert len(runner.running) == 3
    statuses = await runner.stop_all(grace=2.0)
    assert statuses == {h.tag: ExitStatus(signal=signal.SIGTERM) for h in sleepers}
    assert all(h.kill_reason == "stopped" for h in sleepers)
    assert runner.running == []
    assert runner.statistics() == {"started": 4, "running": 0}
