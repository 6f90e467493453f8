"""The agent's side of ``plush exec`` (plush.agent.execs): real commands, a channel that records the replies.

Each request gets one ``exec.result``: exit status, the output kept up to the limit, the exec directory and
``PLUSH_HOST``, a command that cannot start (127), and the timeout that kills the whole process group. Both
ways of starting the command (the vfork + pidfd fast path and the process runner) give the same answers.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from plush.agent import execs as execs_module
from plush.agent.execs import ExecChannel, Execs, exec_dir
from plush.agent.link import LinkClosed
from plush.processes.tree import proc_available
from plush.protocol.messages import Message, validate


class Recorder:
    """A channel: what the controller sends comes from ``incoming``; what the agent sends is kept."""

    def __init__(self, incoming: list[Message] | None = None) -> None:
        self.incoming = list(incoming or [])
        self.sent: list[Message] = []
        self.got = asyncio.Event()

    def send(self, msg: Message) -> None:
        validate(msg)
        self.sent.append(msg)
        self.got.set()

    async def drain(self) -> None:
        return None

    async def send_binary(self, msg: Message) -> None:
        self.send(msg)

    async def recv(self) -> Message:
        if not self.incoming:
            raise LinkClosed("no more")
        return self.incoming.pop(0)

    def __aiter__(self) -> Recorder:
        return self

    async def __anext__(self) -> Message:
        try:
            return await self.recv()
        except LinkClosed:
            raise StopAsyncIteration from None


@pytest.fixture(params=["pidfd", "runner"])
def way(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    if request.param == "pidfd" and not execs_module._PIDFD:
        pytest.skip("no process file descriptors here")
    monkeypatch.setattr(execs_module, "_PIDFD", request.param == "pidfd")
    yield request.param


def _request(req: int, argv: list[str], timeout: float = 20.0, limit: int = 1024) -> Message:
    msg = Message.of("exec", req=req, argv=argv, timeout=timeout, limit=limit)
    validate(msg)
    return msg


async def _one(tmp_path: Path, argv: list[str], **options: float) -> tuple[Message, bytes, bytes]:
    channel = Recorder()
    execs = Execs("local-7", str(tmp_path / "exec"), channel)
    execs.serve(_request(1, argv, **options))  # type: ignore[arg-type]
    await asyncio.wait_for(channel.got.wait(), 30)
    await execs.close()
    (reply,) = channel.sent
    assert reply.type == "exec.result" and reply["req"] == 1 and reply.payload is not None
    return reply, reply.payload[: reply["out"]], reply.payload[reply["out"] :]


async def test_a_command_answers_its_status_and_output_from_the_exec_directory(tmp_path: Path, way: str) -> None:
    argv = ["sh", "-c", 'echo "$PLUSH_HOST in $(pwd)"; echo oops >&2; exit 3']
    reply, out, err = await _one(tmp_path, argv)
    assert (reply["code"], reply["signal"], reply["timed_out"], reply["truncated"]) == (3, None, False, False)
    assert out == f"local-7 in {tmp_path / 'exec'}\n".encode() and err == b"oops\n"


async def test_output_beyond_the_limit_is_read_and_dropped(tmp_path: Path, way: str) -> None:
    reply, out, err = await _one(tmp_path, ["sh", "-c", "head -c 300000 /dev/zero; echo e >&2"], limit=1000)
    assert reply["code"] == 0 and reply["truncated"] is True
    assert out == b"\0" * 1000 and err == b"e\n"


async def test_a_missing_program_answers_127_with_the_reason(tmp_path: Path, way: str) -> None:
    reply, out, err = await _one(tmp_path, ["no-such-program-here"])
    assert reply["code"] == 127 and out == b""
    assert err.startswith(b"plush exec: no-such-program-here: ")


@pytest.mark.skipif(not proc_available(), reason="needs /proc to find the command's processes")
async def test_the_timeout_kills_the_whole_process_group(tmp_path: Path, way: str) -> None:
    pids = tmp_path / "pids"
    argv = ["sh", "-c", f"sleep 60 & echo $! > {pids}; echo started; wait"]
    reply, out, _ = await _one(tmp_path, argv, timeout=0.5)
    assert reply["timed_out"] is True and reply["signal"] == 9 and reply["code"] is None
    assert out == b"started\n"  # what it wrote before
    child = int(pids.read_text())
    stat = Path(f"/proc/{child}/stat")
    assert not stat.exists() or stat.read_text().split(")")[-1].split()[0] == "Z"  # gone, or a zombie


async def test_the_channel_serves_exec_requests_and_passes_everything_else(tmp_path: Path) -> None:
    inner = Recorder([_request(5, ["true"]), Message.of("stop", grace=1.0, reason="r"), _request(6, ["false"])])
    execs = Execs("h", str(tmp_path / "exec"))
    channel = ExecChannel(inner, execs)
    assert [m.type async for m in channel] == ["stop"]  # the runtime sees no exec
    while len(inner.sent) < 2:
        inner.got.clear()
        await asyncio.wait_for(inner.got.wait(), 30)
    await execs.close()
    assert sorted((m["req"], m["code"]) for m in inner.sent) == [(5, 0), (6, 1)]
    assert execs.served == 2


async def test_close_kills_the_commands_in_progress_and_sends_nothing(tmp_path: Path) -> None:
    channel = Recorder()
    execs = Execs("h", str(tmp_path / "exec"), channel)
    started = tmp_path / "started"
    execs.serve(_request(1, ["sh", "-c", f"echo $$ > {started}; exec sleep 60"]))
    deadline = asyncio.get_running_loop().time() + 30
    while not started.exists() or not started.read_text().strip():  # polled, with a deadline
        assert asyncio.get_running_loop().time() < deadline
        await asyncio.sleep(0.02)
    await execs.close()
    assert channel.sent == []
    pid = int(started.read_text())
    stat = Path(f"/proc/{pid}/stat")
    assert not stat.exists() or stat.read_text().split(")")[-1].split()[0] == "Z"


def test_the_exec_directory_is_next_to_the_working_directory() -> None:
    assert exec_dir("/r/hosts/local-3/work") == "/r/hosts/local-3/exec"
    assert os.path.isabs(exec_dir("work"))
