"""Agents forked by the zygote: they join and stop, each in its own session, and nothing survives the end."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from plush.agent.zygote import exit_code
from plush.config import Settings
from plush.fabric.listener import ControllerListener
from plush.fabric.tls import ensure_ca, server_context
from plush.launch.base import AgentContact
from plush.launch.local import LocalAgent, LocalLauncher, pycache_dir, source_root
from plush.launch.processes import UNKNOWN_EXIT, wait_pid_gone
from plush.protocol.messages import Message
from plush.protocol.secret import Secret

TOKEN = Secret("zygote-test-token-5647382910")
#: generous liveness: a loaded machine starves agent processes for seconds
PATIENT = Settings(silence_timeout=60.0, ping_timeout=60.0)
MINIMAL = ("--runtime", "minimal")
DEADLINE = 60.0


class World:
    def __init__(self, tmp_path: Path, listener: ControllerListener, contact: AgentContact) -> None:
        self.tmp_path = tmp_path
        self.listener = listener
        self.contact = contact

    def launcher(self, **options: object) -> LocalLauncher:
        return LocalLauncher(self.tmp_path / "run", self.contact, extra_args=MINIMAL, **options)  # type: ignore[arg-type]

    async def joins(self, n: int) -> None:
        for _ in range(n):
            _, msg, reason = await asyncio.wait_for(self.listener.next_event(), DEADLINE)
            assert msg is not None and msg.type == "join", reason


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    ca = ensure_ca(tmp_path / "state")
    listener = ControllerListener(ssl_context=server_context(ca), token=TOKEN, run_id="r", settings=PATIENT)
    await listener.start()
    try:
        yield World(tmp_path, listener, AgentContact("127.0.0.1", listener.port, ca.cert_pem, TOKEN))
    finally:
        await listener.close()


def proc_alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            state = fh.read().rpartition(b")")[2].split()[0]
    except (OSError, IndexError):
        return False
    return state not in (b"Z", b"X")


def living_under(root: Path) -> list[int]:
    """Live processes whose working directory is under ``root`` (agents chdir into their host's work dir)."""
    found = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                cwd = os.readlink(f"/proc/{name}/cwd")
            except OSError:
                continue
            if cwd.startswith(str(root)) and proc_alive(int(name)):
                found.append(int(name))
    return found


def session_and_group(pid: int) -> tuple[int, int]:
    return os.getpgid(pid), os.getsid(pid)


def zygote_pid(launcher: LocalLauncher) -> int:
    assert launcher._zygote is not None and launcher._zygote.process is not None
    return launcher._zygote.process.pid


async def test_zygote_agents_join_run_and_stop_cleanly(world: World) -> None:
    launcher = world.launcher()
    assert launcher.fork_server
    names = ["z0", "z1", "z2"]
    try:
        agents = await launcher.start_agents(names)
        zygote = zygote_pid(launcher)
        secret = TOKEN.reveal().encode()
        for proc_pid in [zygote, *(a.pid for a in agents)]:
            assert secret not in Path(f"/proc/{proc_pid}/cmdline").read_bytes()
            assert secret not in Path(f"/proc/{proc_pid}/environ").read_bytes()
        for agent in agents:
            assert agent.pid != zygote and agent.returncode is None
            assert session_and_group(agent.pid) == (agent.pid, agent.pid)  # leads its own session and group
        done = 0
        while done < len(names):
            peer, msg, _ = await asyncio.wait_for(world.listener.next_event(), DEADLINE)
            assert peer.host is not None
            if msg is None:
                done += 1
                continue
            if msg.type == "join":
                assert msg["pid"] == launcher.agents[peer.host].pid
                assert Path(os.readlink(f"/proc/{msg['pid']}/cwd")) == launcher.work_dir(peer.host)
                peer.send(Message.of("welcome", host=peer.host))
                peer.send(Message.of("prepare", spec={}, host={"name": peer.host}, settings={}))
            elif msg.type == "prepared":
                peer.send(Message.of("stop", grace=1.0, reason="done"))
        assert [await asyncio.wait_for(a.wait(), DEADLINE) for a in agents] == [0, 0, 0]
        for agent in agents:
            assert "joined" in agent.stderr_tail()  # each agent logs to its own agent.log
            assert secret not in agent.log_path.read_bytes()
        await launcher.stop_all(grace=10)
        assert not proc_alive(zygote)
        assert living_under(world.tmp_path / "run") == []
    finally:
        await launcher.close()


async def test_stop_all_ends_agents_and_the_zygote(world: World) -> None:
    launcher = world.launcher()
    try:
        agents = await launcher.start_agents([f"w{i}" for i in range(4)])
        zygote = zygote_pid(launcher)
        await world.joins(4)
        assert len(launcher.alive()) == 4
        await launcher.stop_all(grace=10)
        assert [a.returncode for a in agents] == [143] * 4  # SIGTERM: a graceful stop, 128 + 15
        assert launcher.alive() == [] and launcher._zygote is None
        assert not proc_alive(zygote)
        assert living_under(world.tmp_path / "run") == []
    finally:
        await launcher.close()


async def test_closing_the_zygote_stdin_ends_every_agent(world: World) -> None:
    """What a dying controller does to its zygote: stdin closes, the zygote ends its agents and exits."""
    launcher = world.launcher()
    try:
        agents = await launcher.start_agents(["c0", "c1"])
        await world.joins(2)
        assert launcher._zygote is not None and launcher._zygote.process is not None
        process = launcher._zygote.process
        assert process.stdin is not None
        process.stdin.close()
        assert await asyncio.wait_for(process.wait(), DEADLINE) == 0
        # the agents were still connected: only the zygote's SIGTERM ended them, and it reported it
        assert [await asyncio.wait_for(a.wait(), DEADLINE) for a in agents] == [143, 143]
        assert living_under(world.tmp_path / "run") == []
    finally:
        await launcher.close()


CONTROLLER_SCRIPT = """
import asyncio, json, sys
from pathlib import Path
from plush.config import Settings
from plush.fabric.listener import ControllerListener
from plush.fabric.tls import ensure_ca, server_context
from plush.launch.base import AgentContact
from plush.launch.local import LocalLauncher
from plush.protocol.secret import Secret

async def main(tmp):
    token = Secret("controller-death-token-123456")
    ca = ensure_ca(tmp / "state")
    settings = Settings(silence_timeout=60.0, ping_timeout=60.0)
    listener = ControllerListener(ssl_context=server_context(ca), token=token, run_id="r", settings=settings)
    await listener.start()
    contact = AgentContact("127.0.0.1", listener.port, ca.cert_pem, token)
    launcher = LocalLauncher(tmp / "run", contact, extra_args=("--runtime", "minimal"))
    agents = await launcher.start_agents(["d0", "d1"])
    for _ in agents:
        await listener.next_event()
    pids = {"agents": [a.pid for a in agents], "zygote": launcher._zygote.process.pid}
    print(json.dumps(pids), flush=True)
    await asyncio.Event().wait()

asyncio.run(main(Path(sys.argv[1])))
"""


async def test_a_killed_controller_leaves_no_survivor(tmp_path: Path) -> None:
    script = tmp_path / "controller.py"
    script.write_text(CONTROLLER_SCRIPT)
    env = dict(os.environ, PYTHONPATH=str(source_root()))
    controller = await asyncio.create_subprocess_exec(
        sys.executable, str(script), str(tmp_path), stdout=subprocess.PIPE, env=env
    )
    try:
        assert controller.stdout is not None
        line = await asyncio.wait_for(controller.stdout.readline(), DEADLINE)
        import json

        pids = json.loads(line)
        everyone = [pids["zygote"], *pids["agents"]]
        assert all(proc_alive(pid) for pid in everyone)
    finally:
        controller.kill()
        await controller.wait()
    for pid in everyone:
        await asyncio.wait_for(wait_pid_gone(pid), DEADLINE)
    assert living_under(tmp_path / "run") == []


async def test_exit_codes_are_reported(world: World) -> None:
    launcher = world.launcher()
    try:
        killed, terminated = await launcher.start_agents(["k", "t"])
        await world.joins(2)
        os.killpg(killed.pid, signal.SIGKILL)
        assert await asyncio.wait_for(killed.wait(), DEADLINE) == -signal.SIGKILL
        assert killed.returncode == -signal.SIGKILL and not killed.signal_group(signal.SIGTERM)
        assert terminated.returncode is None
        await launcher.stop_all(grace=10)
        assert terminated.returncode == 143
    finally:
        await launcher.close()


async def test_agents_of_a_dead_zygote_are_still_waited_for(world: World) -> None:
    launcher = world.launcher()
    try:
        agents = await launcher.start_agents(["o0", "o1"])
        await world.joins(2)
        os.kill(zygote_pid(launcher), signal.SIGKILL)  # the orphans live on, connected
        assert launcher._zygote is not None and launcher._zygote.process is not None
        await launcher._zygote.process.wait()
        assert all(a.returncode is None for a in agents)
        await launcher.stop_all(grace=10)  # SIGTERMs their groups; their exit is seen by pid
        assert [a.returncode for a in agents] == [UNKNOWN_EXIT, UNKNOWN_EXIT]
        assert living_under(world.tmp_path / "run") == []
    finally:
        await launcher.close()


async def test_a_new_zygote_serves_after_stop_all(world: World) -> None:
    launcher = world.launcher()
    try:
        (first,) = await launcher.start_agents(["r"])
        await world.joins(1)
        await launcher.stop_all(grace=10)
        _, gone, _ = await asyncio.wait_for(world.listener.next_event(), DEADLINE)
        assert gone is None  # the first agent's end
        (second,) = await launcher.start_agents(["r"])  # the host's agent may be started anew
        await world.joins(1)
        assert second.pid != first.pid and second.returncode is None
    finally:
        await launcher.close()
    assert second.returncode == 143


async def test_without_the_fork_server_agents_are_spawned(world: World) -> None:
    launcher = world.launcher(fork_server=False)
    try:
        agents = await launcher.start_agents(["s0", "s1"])
        assert launcher._zygote is None
        assert all(isinstance(a, LocalAgent) and a.pid > 0 for a in agents)
        await world.joins(2)
        assert session_and_group(agents[0].pid) == (agents[0].pid, agents[0].pid)
        await launcher.stop_all(grace=10)
        assert [a.returncode for a in agents] == [143, 143]
        assert living_under(world.tmp_path / "run") == []
    finally:
        await launcher.close()


async def test_the_bytecode_cache_is_shared_by_runs(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    cache = pycache_dir()
    assert cache.parent == tmp_path / "cache" / "plush" / "pycache"
    assert sys.implementation.cache_tag in cache.name and "plush" in cache.name
    launcher = world.launcher()
    assert launcher._env["PYTHONPYCACHEPREFIX"] == str(cache) and "PYTHONDONTWRITEBYTECODE" not in launcher._env
    try:
        await launcher.warm_up()  # the zygote imported the agent's closure, the runtime included
        runtime_src = source_root() / "plush" / "agent" / "runtime.py"
        compiled = cache / runtime_src.parent.relative_to("/") / f"runtime.{sys.implementation.cache_tag}.pyc"
        assert compiled.is_file()
    finally:
        await launcher.close()
    other = LocalLauncher(tmp_path / "run2", world.contact)
    assert other.bytecode_cache == cache  # the next run uses the same cache


def test_zygote_exit_codes_and_bad_requests(tmp_path: Path) -> None:
    assert exit_code(3 << 8) == 3
    assert exit_code(signal.SIGKILL) == -signal.SIGKILL
    env = dict(os.environ, PYTHONPATH=str(source_root()))
    done = subprocess.run(
        [sys.executable, "-m", "plush.agent.zygote", "--grace", "1"],
        input=b'{"id": 7, "argv": []}\nnot json\n',
        capture_output=True,
        env=env,
        timeout=DEADLINE,
        check=False,
    )
    lines = done.stdout.decode().splitlines()
    assert done.returncode == 0
    assert lines[0] == "ready"
    assert lines[1].startswith("failed 7 bad request")
    assert lines[2].startswith("failed ? bad request")
