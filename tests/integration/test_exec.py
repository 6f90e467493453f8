"""``plush exec`` on real agents (issue 11, "Done when"): fifty connected local agents, one controller.

In process (:meth:`Controller.exec` and the CLI's seam :func:`plush.shell.exec_command.exec_on`): the gathered
output (``-b``) is correct, outputs that differ by the host's name or index fold with marks, a host whose
command hangs past the timeout is listed as timed out, one whose agent was killed as unreachable, and the
exit status is as documented. Beside a run: an exec on the run's hosts leaves the run alone. A host still
connecting is waited for. One CLI subprocess runs the cold path (agents started and stopped for the command).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from integration_support import LENIENT, RUN_TIMEOUT, cli_env, write_spec

from plush.config import Settings
from plush.controller.api import Controller
from plush.controller.gather import fold_outputs
from plush.shell.exec_command import ExecRequest, exec_on

SYSNAME = os.uname().sysname


def _controller(tmp_path: Path) -> Controller:
    return Controller(Settings(runs_dir=str(tmp_path / "runs"), **LENIENT))  # type: ignore[arg-type]


async def _until(condition: Callable[[], bool], what: str) -> None:
    """Poll ``condition`` on the event loop (the controller runs on it) until true; fail after RUN_TIMEOUT."""
    deadline = asyncio.get_running_loop().time() + RUN_TIMEOUT
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


def _state(controller: Controller, name: str) -> str | None:
    return next((n["state"] for n in controller.info("nodes") if n["name"] == name), None)


async def _gathered(controller: Controller, request: ExecRequest) -> tuple[int, list[str], list[str]]:
    out: list[str] = []
    err: list[str] = []
    status = await exec_on(controller, request, lambda stream, line: (out if stream == "stdout" else err).append(line))
    return status, out, err


async def test_exec_on_fifty_agents_gathers_folds_times_out_and_tells_the_dead(tmp_path: Path) -> None:
    controller = _controller(tmp_path)
    try:
        await controller.connect(50)

        # -b: one answer from fifty hosts, printed once under its host set; the summary on stderr
        status, out, err = await _gathered(controller, ExecRequest(cmd=("uname", "-s"), gather=True))
        assert (status, out, err) == (
            0,
            ["-" * 15, "local-[1-50] (50)", "-" * 15, SYSNAME],
            ["plush: exit 0: local-[1-50] (50)"],
        )

        # outputs that differ only by the host's name or the number in it fold too, the varying part marked
        line = 'echo "I am $PLUSH_HOST, number ${PLUSH_HOST#local-}"; echo same'
        status, out, _ = await _gathered(controller, ExecRequest(cmd=(line,), shell=True, gather=True))
        assert (status, out[1:]) == (
            0,
            ["local-[1-50] (50) varies: {host} {index}", "-" * 15, "I am {host}, number {index}", "same"],
        )

        # a command that hangs past the timeout on one host, fails on another
        line = 'case "$PLUSH_HOST" in local-7) echo waiting; sleep 60;; local-9) exit 5;; esac; echo ok'
        result = await controller.exec(line, shell=True, timeout=2)
        assert result.timed_out == ["local-7"] and result.unreachable == []
        assert result.results["local-7"].stdout == b"waiting\n"  # what it wrote before its agent killed it
        assert result.results["local-9"].code == 5
        assert result.status == 124  # a timeout before the highest remote status
        blocks = fold_outputs({n: r.stdout for n, r in result.results.items()})
        assert [(len(b.hosts), b.text) for b in blocks] == [(48, b"ok\n"), (1, b"waiting\n")]  # local-9: none

        # a host whose agent was killed is unreachable (the others answer); the status says so
        pid = next(n["agent_pid"] for n in controller.info("nodes") if n["name"] == "local-13")
        os.kill(pid, signal.SIGKILL)
        status, out, err = await _gathered(controller, ExecRequest(cmd=("sh", "-c", "exit 3"), gather=True))
        assert status == 255 and out == []
        assert err[0] == "plush: exit 3: local-[1-12,14-50] (49)"
        assert err[1].startswith("plush: unreachable: local-13 (1): ")

        # the selection: -w, -x; a host set naming an unknown host is refused before anything is sent
        result = await controller.exec(["true"], "local-[1-5]", exclude="local-[2-3]")
        assert sorted(result.results) == ["local-1", "local-4", "local-5"] and result.status == 0
    finally:
        await controller.quit()


#: one process waits for a file in the run directory: the run lasts until the test lets it end
WAITING = """\
project: waiting
components:
  w:
    hosts: 2
application:
  execution:
    w:
      blocks:
        - process: wait
          run: [sh, -c, 'while [ ! -e "$PLUSH_RUN_DIR/go" ]; do sleep 0.05; done; echo finished']
"""


async def test_exec_beside_a_run_and_on_a_host_still_connecting(tmp_path: Path) -> None:
    controller = _controller(tmp_path)
    try:
        await controller.connect(2)
        controller.load(write_spec(tmp_path, WAITING))
        started: list[Path] = []
        run = asyncio.create_task(controller.run(on_start=lambda rundir: started.append(rundir.shared)))
        await _until(lambda: {n["state"] for n in controller.info("nodes")} == {"running"}, "the run")

        result = await controller.exec(["sh", "-c", "echo $PLUSH_HOST; pwd"])  # beside the run
        assert result.status == 0 and sorted(result.results) == ["local-1", "local-2"]
        assert result.results["local-1"].stdout.decode().split("\n")[1].endswith("/hosts/local-1/exec")
        assert {n["state"] for n in controller.info("nodes")} == {"running"}  # the run did not notice

        connecting = asyncio.create_task(controller.connect(1))  # local-3
        while _state(controller, "local-3") != "connecting":  # checked at every turn of the loop, not missed
            assert not connecting.done()
            await asyncio.sleep(0)
        result = await controller.exec(["echo", "hello"], "local-3")  # waited for until it joined
        assert result.results["local-3"].stdout == b"hello\n" and result.status == 0
        await connecting

        (started[0] / "go").touch()
        assert (await asyncio.wait_for(run, RUN_TIMEOUT)).ok
    finally:
        await controller.quit()


def test_the_cold_path_starts_the_agents_for_the_command_and_stops_them(tmp_path: Path) -> None:
    """``plush exec --hosts 4``: options end at the command's first word (``-c`` is sh's); -x; the gathered
    output; the exit status is the highest remote one."""
    script = 'echo "I am $PLUSH_HOST"; test "$PLUSH_HOST" != local-2'
    argv = [sys.executable, "-m", "plush", "exec", "--runs-dir", str(tmp_path / "runs"), "--hosts", "4"]
    argv += ["-x", "local-4", "-b", "sh", "-c", script]
    done = subprocess.run(argv, capture_output=True, text=True, env=cli_env(), timeout=RUN_TIMEOUT, check=False)
    assert done.returncode == 1, done.stderr
    assert done.stdout.splitlines() == ["-" * 15, "local-[1-3] (3) varies: {host}", "-" * 15, "I am {host}"]
    assert done.stderr.splitlines() == ["plush: exit 0: local-[1,3] (2)", "plush: exit 1: local-2 (1)"]
