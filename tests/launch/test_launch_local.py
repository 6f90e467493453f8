"""The local launcher: secrets stay off command lines, each host has its directory, nothing survives stop."""

from __future__ import annotations

import asyncio
import os
import resource
import signal
import stat
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

import pytest

from plush.config import Settings
from plush.errors import LaunchError
from plush.fabric.listener import ControllerListener
from plush.fabric.tls import ensure_ca, server_context
from plush.launch.base import AgentContact, Launcher
from plush.launch.local import LocalLauncher, source_root
from plush.processes.sweep import host_processes
from plush.protocol.messages import Message
from plush.protocol.secret import Secret

TOKEN = Secret("launch-test-token-987654321")
#: generous liveness: a loaded machine starves agent processes for seconds
PATIENT = Settings(silence_timeout=60.0, ping_timeout=60.0)
MINIMAL = ("--runtime", "minimal")


def make_launcher(tmp_path: Path, port: int = 9, extra_args: Sequence[str] = ()) -> LocalLauncher:
    ca = ensure_ca(tmp_path / "state")
    return LocalLauncher(tmp_path / "run", AgentContact("127.0.0.1", port, ca.cert_pem, TOKEN), extra_args=extra_args)


def test_token_is_in_a_private_file_and_never_on_the_command_line(tmp_path: Path) -> None:
    launcher = make_launcher(tmp_path)
    argv = launcher.argv("local-3")
    assert TOKEN.reveal() not in " ".join(argv)
    assert argv[:3] == [sys.executable, "-m", "plush.agent"]
    assert argv[argv.index("--host") + 1] == "local-3"
    assert Path(argv[argv.index("--workdir") + 1]) == tmp_path / "run" / "hosts" / "local-3" / "work"
    token_file = Path(argv[argv.index("--token-file") + 1])
    assert token_file.read_text() == TOKEN.reveal()
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(token_file.parent.stat().st_mode) == 0o700
    assert TOKEN.reveal() not in repr(launcher.contact)
    assert launcher._env["PYTHONPATH"].split(os.pathsep)[0] == str(source_root())
    assert (source_root() / "plush" / "__init__.py").exists()


def test_capabilities() -> None:
    assert LocalLauncher.capabilities == {"start_agent", "put_file", "run", "close", "signal", "kill_leftovers"}
    assert issubclass(LocalLauncher, Launcher)


async def test_capability_flags_and_refusals(tmp_path: Path) -> None:
    launcher = make_launcher(tmp_path)
    assert launcher.supports("put_file")
    with pytest.raises(ValueError, match="unknown launcher capability"):
        launcher.supports("teleport")
    with pytest.raises(LaunchError, match="plain file name"):
        launcher.host_dir("../escape")
    src = tmp_path / "payload.txt"
    src.write_text("data")
    with pytest.raises(LaunchError, match="outside"):
        await launcher.put_file("h1", src, "../../x")


def test_kill_leftovers_kills_only_this_launchers_processes_of_the_run(tmp_path: Path) -> None:
    """Run ids are unique within a runs directory only: two controllers (two test sessions, two users) may
    both run 20260101-120000-0001 at once. A launcher's sweep of a run's leftovers kills only what carries
    its own token (today it killed the other controller's processes of the same run id and host name)."""
    launcher = make_launcher(tmp_path)
    code = "import time; time.sleep(60)"
    run_id = f"run-{uuid.uuid4().hex}"
    env = dict(os.environ, PLUSH_RUN_ID=run_id, PLUSH_HOST="local-1")
    mine = subprocess.Popen([sys.executable, "-c", code], env=dict(env, PLUSH_SANDBOX_RUN=launcher.token))
    other = subprocess.Popen([sys.executable, "-c", code], env=dict(env, PLUSH_SANDBOX_RUN="run-another"))
    try:
        deadline = time.monotonic() + 30
        while len(host_processes(run_id, None)) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)  # /proc/PID/environ reads empty for a moment after the exec
        assert asyncio.run(launcher.kill_leftovers(run_id, ["local-1"])) == [mine.pid]
        assert mine.wait(timeout=10) == -9
        assert other.poll() is None
    finally:
        for proc in (mine, other):
            proc.kill()
            proc.wait()
        asyncio.run(launcher.close())


async def test_put_file_and_run_in_the_host_directory(tmp_path: Path) -> None:
    launcher = make_launcher(tmp_path)
    src = tmp_path / "payload.txt"
    src.write_text("hello from the controller")
    await launcher.put_file("h1", src, "in/payload.txt")
    result = await launcher.run("h1", ["cat", "in/payload.txt"])
    assert result.exit_status == 0 and result.stdout == b"hello from the controller"
    assert (await launcher.run("h1", ["sh", "-c", "exit 3"])).exit_status == 3


async def test_stop_all_leaves_no_agent_alive(tmp_path: Path) -> None:
    # agents that joined but are never welcomed: they wait, so only stop_all can end them
    ca = ensure_ca(tmp_path / "state")
    listener = ControllerListener(ssl_context=server_context(ca), token=TOKEN, run_id="r", settings=PATIENT)
    await listener.start()
    launcher = LocalLauncher(
        tmp_path / "run", AgentContact("127.0.0.1", listener.port, ca.cert_pem, TOKEN), extra_args=MINIMAL
    )
    try:
        agents = await launcher.start_agents([f"w{i}" for i in range(4)])
        for _ in agents:
            _, msg, _ = await asyncio.wait_for(listener.next_event(), 60)
            assert msg is not None and msg.type == "join"
        assert len(launcher.alive()) == 4
        with pytest.raises(LaunchError, match="already running"):
            await launcher.start_agent("w0")
        await launcher.stop_all(grace=10)
        assert launcher.alive() == []
        assert [a.returncode for a in agents] == [143] * 4  # SIGTERM: a graceful stop, 128 + 15
        for agent in agents:
            with pytest.raises(ProcessLookupError):
                os.killpg(agent.pid, 0)
    finally:
        await launcher.close()
        await listener.close()


async def test_an_agent_that_cannot_connect_exits_with_its_reason(tmp_path: Path) -> None:
    # nothing listens on port 1; the agent dials again until its connect timeout (30 s by default)
    launcher = make_launcher(tmp_path, port=1, extra_args=["--connect-timeout", "2"])
    try:
        (agent,) = await launcher.start_agents(["lonely"])
        assert await asyncio.wait_for(agent.wait(), 60) == 1
        assert "agent failed" in agent.stderr_tail()
        # what the engine asks through the interface: the launcher tells a dead agent from a broken link
        assert launcher.agent("lonely") is agent and launcher.alive() == []
        assert launcher.agent_state("lonely", agent.pid) == "exited (1)"
        assert launcher.agent_state("lonely", agent.pid + 1) is None  # not the agent it started: cannot tell
        assert launcher.signal_agent("lonely", signal.SIGKILL) is False  # nobody left to signal
        assert launcher.address("lonely") == "127.0.0.1"
        again = await launcher.start_agent("lonely")  # an exited agent may be started anew
        assert again.pid != agent.pid
        assert await asyncio.wait_for(again.wait(), 60) == 1
    finally:
        await launcher.close()


@pytest.mark.slow
async def test_measure_200_agents_start_and_join(tmp_path: Path) -> None:
    """Prints how long 200 local agents take to start and join (a measurement, not an assertion)."""
    n = 200
    ca = ensure_ca(tmp_path / "state")
    listener = ControllerListener(ssl_context=server_context(ca), token=TOKEN, run_id="r", settings=PATIENT)
    await listener.start()
    launcher = LocalLauncher(
        tmp_path / "run", AgentContact("127.0.0.1", listener.port, ca.cert_pem, TOKEN), extra_args=MINIMAL
    )
    try:
        t0 = time.perf_counter()
        await launcher.start_agents([f"local-{i}" for i in range(n)])
        spawned = time.perf_counter() - t0
        joined = 0
        while joined < n:
            peer, msg, reason = await asyncio.wait_for(listener.next_event(), 120)
            assert msg is not None, f"{peer} went away: {reason}"
            if msg.type == "join":
                assert peer.host is not None
                peer.send(Message.of("welcome", host=peer.host))
                peer.send(Message.of("prepare", spec={}, host={"name": peer.host}, settings={}))
            elif msg.type == "prepared":
                joined += 1
        total = time.perf_counter() - t0
        print(f"\n{n} local agents: spawned in {spawned:.2f}s, all joined+prepared over TLS in {total:.2f}s")
        print(f"(load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)")
        assert listener.statistics()["joined"] == n
    finally:
        t1 = time.perf_counter()
        await launcher.close()
        cpu = resource.getrusage(resource.RUSAGE_CHILDREN)
        print(f"stopped {n} agents in {time.perf_counter() - t1:.2f}s")
        print(f"agents' CPU (user+sys, reaped children of this test run): {cpu.ru_utime + cpu.ru_stime:.1f}s")
        await listener.close()
