"""The host program with real processes and an in-memory uplink standing in for the controller."""

from __future__ import annotations

import asyncio
import hashlib
import stat
import sys
from pathlib import Path
from typing import Any, BinaryIO

from plush.agent.program import HostProgram, Uplink
from plush.processes.policy import Backoff, ExitStatus
from plush.processes.runner import ProcessRunner
from plush.spec.model import (
    BarrierBlock,
    ComponentBlock,
    ExitPolicy,
    LivenessMonitor,
    Process,
    ProcessBlock,
    WorkflowBlock,
)

PY = sys.executable


class MemoryUplink(Uplink):
    def __init__(self, items: list[str] | None = None, data_dir: Path | None = None) -> None:
        self.events: list[tuple[Any, ...]] = []
        self.outs: dict[tuple[str, int, str], bytearray] = {}
        self.items = list(items or [])
        self.data_dir = data_dir
        self.release = asyncio.Event()
        self.entered = asyncio.Event()
        self.uploads: dict[str, bytes] = {}
        self.modes: dict[str, int] = {}

    async def block_state(self, path: str, state: str, **fields: Any) -> None:
        self.events.append(("block", path, state))

    async def process_started(self, path: str, instance: int, pid: int) -> None:
        self.events.append(("started", path, instance))

    async def process_exited(self, path: str, instance: int, status: ExitStatus, **fields: Any) -> None:
        self.events.append(("exited", path, instance, str(status), fields["action"]))

    async def output(self, path: str, instance: int, stream: str, data: bytes) -> None:
        self.outs.setdefault((path, instance, stream), bytearray()).extend(data)

    async def enter_barrier(self, name: str, path: str) -> None:
        self.events.append(("enter", name))
        self.entered.set()
        await self.release.wait()

    async def leave_barrier(self, name: str) -> None:
        self.events.append(("leave", name))

    async def next_work(self, path: str) -> str | None:
        return self.items.pop(0) if self.items else None

    async def work_done(self, path: str, item: str, ok: bool) -> None:
        self.events.append(("work", item, ok))

    async def fetch(self, key: str, dest: str) -> None:
        assert self.data_dir is not None and key.startswith("data:")
        Path(dest).write_bytes((self.data_dir / key[5:]).read_bytes())

    async def upload(self, path: str, name: str, source: BinaryIO, mode: int) -> None:
        self.uploads[name] = source.read()
        self.modes[name] = mode


def program(tmp_path: Path, cb: ComponentBlock, uplink: Uplink) -> HostProgram:
    return HostProgram(
        "app",
        cb,
        workdir=str(tmp_path),
        env={"PLUSH_HOST": "local-1"},
        uplink=uplink,
        runner=ProcessRunner(),
        backoff=Backoff(initial=0.01, maximum=0.02),
    )


def py(name: str, code: str) -> Process:
    return Process(name=name, path=PY, args=("-c", code))


async def test_predecessors_order_blocks_and_outputs_are_uploaded(tmp_path: Path) -> None:
    cb = ComponentBlock(
        name="cb",
        component="c",
        blocks=(
            ProcessBlock(name="second", predecessors=("first",), processes=(py("p", "print(open('a').read())"),)),
            ProcessBlock(
                name="first",
                processes=(py("w", "import os; open('a','w').write(os.environ['PLUSH_HOST'])"),),
                outputs=("a",),
            ),
        ),
    )
    up = MemoryUplink()
    assert await program(tmp_path, cb, up).run()
    states = [e for e in up.events if e[0] == "block"]
    assert states.index(("block", "/app/cb/first", "completed")) < states.index(("block", "/app/cb/second", "started"))
    assert bytes(up.outs[("/app/cb/second/p", 1, "stdout")]) == b"local-1\n"
    assert up.uploads == {"a": b"local-1"}


async def test_outputs_never_follow_a_link_out_of_the_workdir_nor_widen_modes(tmp_path: Path) -> None:
    """Regression (issue 7, item 7): ``ln -s /etc d`` + ``outputs: ["**"]`` copied /etc/shadow (0640) as 0644.

    Here a file of our own outside the working directory, mode 0640, stands for /etc/shadow."""
    outside = tmp_path / "outside"
    outside.mkdir()
    secret = outside / "shadow"
    secret.write_bytes(b"SECRET")
    secret.chmod(0o640)
    work = tmp_path / "work"
    work.mkdir()
    make = (
        f"import os; os.symlink({str(outside)!r}, 'd'); os.symlink({str(secret)!r}, 'f');"
        "os.mkdir('sub'); open('sub/own', 'w').write('own'); os.chmod('sub/own', 0o640);"
        "os.symlink('sub', 'inner'); os.symlink('sub/own', 'inner-file')"
    )
    cb = ComponentBlock(
        name="cb", component="c", blocks=(ProcessBlock(name="b", processes=(py("p", make),), outputs=("**",)),)
    )
    up = MemoryUplink()
    assert await program(work, cb, up).run()
    assert up.uploads == {"sub/own": b"own"}  # no link followed, not even an in-tree one
    assert up.modes == {"sub/own": 0o640}  # the mode travels with the file, for the controller to keep
    assert stat.S_IMODE(secret.stat().st_mode) == 0o640


async def test_restart_process_policy_gives_instance_two(tmp_path: Path) -> None:
    flaky = py("f", "import os,sys\nif not os.path.exists('m'): open('m','w').close(); sys.exit(3)")
    cb = ComponentBlock(
        name="cb",
        component="c",
        blocks=(
            ProcessBlock(
                name="b",
                processes=(flaky,),
                exit_policies=(ExitPolicy(match="3", action="restart_process", max_restarts=2),),
            ),
        ),
    )
    up = MemoryUplink()
    assert await program(tmp_path, cb, up).run()
    exits = [e for e in up.events if e[0] == "exited"]
    assert exits == [
        ("exited", "/app/cb/b/f", 1, "exit code 3", "restart_process"),
        ("exited", "/app/cb/b/f", 2, "exit code 0", "success"),
    ]


async def test_failure_stops_the_program_and_later_blocks_never_start(tmp_path: Path) -> None:
    cb = ComponentBlock(
        name="cb",
        component="c",
        blocks=(
            ProcessBlock(name="bad", processes=(py("x", "import sys; sys.exit(1)"),)),
            ProcessBlock(name="after", predecessors=("bad",), processes=(py("y", "pass"),)),
        ),
    )
    prog = program(tmp_path, cb, MemoryUplink())
    assert not await prog.run()
    assert prog.failure is not None and prog.failure.action == "abort"
    assert prog.states == {"bad": "failed", "after": "waiting"}


async def test_liveness_monitor_kills_a_hung_process(tmp_path: Path) -> None:
    cb = ComponentBlock(
        name="cb",
        component="c",
        blocks=(
            ProcessBlock(
                name="b",
                processes=(py("hang", "import time; time.sleep(60)"),),
                liveness=LivenessMonitor(path="false", interval=0.2),
                exit_policies=(ExitPolicy(match="signal", action="ignore"),),
            ),
        ),
    )
    up = MemoryUplink()
    assert await program(tmp_path, cb, up).run()
    assert [e[3:] for e in up.events if e[0] == "exited"] == [("killed by signal 9 (SIGKILL)", "ignore")]


async def test_barrier_holds_the_next_block_until_release(tmp_path: Path) -> None:
    cb = ComponentBlock(
        name="cb",
        component="c",
        blocks=(
            BarrierBlock(name="sync"),
            ProcessBlock(name="after", predecessors=("sync",), processes=(py("y", "pass"),)),
        ),
    )
    up = MemoryUplink()
    run = asyncio.ensure_future(program(tmp_path, cb, up).run())
    await up.entered.wait()
    assert not any(e[:2] == ("block", "/app/cb/after") for e in up.events)
    up.release.set()
    assert await run
    assert ("block", "/app/cb/after", "completed") in up.events


async def test_workflow_runs_each_item_with_its_file(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    items = []
    for i in range(3):
        (data / f"part{i}.txt").write_text("x" * (i + 1))
        items.append(f"part{i}.txt")
    work = tmp_path / "work"
    work.mkdir()
    code = "import sys,hashlib; print(sys.argv[-1], len(open(sys.argv[-1]).read()))"
    cb = ComponentBlock(
        name="cb",
        component="c",
        blocks=(WorkflowBlock(name="wf", task=ProcessBlock(name="t", processes=(py("count", code),))),),
    )
    up = MemoryUplink(items=items, data_dir=data)
    assert await program(work, cb, up).run()
    assert [e for e in up.events if e[0] == "work"] == [("work", f"part{i}.txt", True) for i in range(3)]
    outs = b"".join(bytes(v) for k, v in sorted(up.outs.items()) if k[2] == "stdout")
    assert outs == b"part0.txt 1\npart1.txt 2\npart2.txt 3\n"
    assert hashlib.sha256(outs).hexdigest()


async def test_the_operators_restart_stops_and_starts_again_whatever_the_policy_says(tmp_path: Path) -> None:
    """``restart`` (the operator's): a process whose policy allows no restart (a signal exit: abort) is stopped
    and started as its next instance, its exit reported as ``restart_process``; a path with nothing running
    restarts nothing."""
    code = "import os, time; n = int(os.environ['PLUSH_INSTANCE']); n < 3 and time.sleep(300)"
    block = ProcessBlock(
        name="b", processes=(py("p", code),), exit_policies=(ExitPolicy(match="signal", action="abort"),)
    )
    cb = ComponentBlock(name="cb", component="c", blocks=(block,))
    up = MemoryUplink()
    prog = program(tmp_path, cb, up)
    run = asyncio.ensure_future(prog.run())

    async def started(instance: int) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 30
        while ("started", "/app/cb/b/p", instance) not in up.events:
            assert loop.time() < deadline and not run.done(), up.events
            await asyncio.sleep(0.01)

    await started(1)
    assert prog.restart("/app/cb/other") == []
    assert prog.restart("/app/cb/b") == ["/app/cb/b/p"]
    await started(2)
    assert prog.restart("/app/cb/b/p") == ["/app/cb/b/p"]
    assert await asyncio.wait_for(run, 30)
    exits = [e for e in up.events if e[0] == "exited"]
    assert [(e[2], e[4]) for e in exits] == [(1, "restart_process"), (2, "restart_process"), (3, "success")]
