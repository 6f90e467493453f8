"""Real agents over TLS: a controller listener and agent processes started by the LocalLauncher."""

from __future__ import annotations

import asyncio
import glob
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from fabric_world import DEADLINE, MINIMAL, TOKEN, contact, drive_to_stop, start_listener

from plush.launch.local import LocalLauncher


def assert_gone(pid: int) -> None:
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    with pytest.raises(ProcessLookupError):
        os.killpg(pid, 0)


async def test_five_agents_join_over_tls_and_stop_cleanly(tmp_path: Path) -> None:
    ca, listener = await start_listener(tmp_path / "state")
    launcher = LocalLauncher(tmp_path / "run", contact(ca, listener), extra_args=MINIMAL)
    try:
        names = [f"local-{i}" for i in range(1, 6)]
        agents = await launcher.start_agents(names)
        seen = await drive_to_stop(listener, len(names))
        assert seen == {n: ["join", "prepared", "installed", "finished", "stopped", "closed"] for n in names}
        codes = await asyncio.wait_for(asyncio.gather(*(a.wait() for a in agents)), DEADLINE)
        assert codes == [0] * 5, [a.stderr_tail() for a in agents]
    finally:
        await launcher.close()
        await listener.close()
    for agent in agents:
        assert_gone(agent.pid)
        log = agent.log_path.read_text()
        assert TOKEN.reveal() not in log
        assert "joined 127.0.0.1" in log
    assert listener.statistics()["peers"] == 0


async def test_agents_exit_when_the_controller_goes_away(tmp_path: Path) -> None:
    ca, listener = await start_listener(tmp_path / "state")
    launcher = LocalLauncher(tmp_path / "run", contact(ca, listener), extra_args=MINIMAL)
    try:
        agents = await launcher.start_agents(["a1", "a2"])
        joined = 0
        while joined < 2:
            peer, msg, _ = await asyncio.wait_for(listener.next_event(), DEADLINE)
            assert msg is not None and msg.type == "join"
            peer.send(msg.__class__.of("welcome", host=peer.host))
            joined += 1
        await listener.close()  # the controller vanishes before prepare
        codes = await asyncio.wait_for(asyncio.gather(*(a.wait() for a in agents)), DEADLINE)
        assert codes == [1, 1]
        assert "link closed" in agents[0].stderr_tail()
    finally:
        await launcher.close()


def find_python38() -> str | None:
    candidates = [
        shutil.which("python3.8"),
        *sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.8*/bin/python3.8"))),
    ]
    for path in candidates:
        if path and subprocess.run([path, "-c", "pass"], capture_output=True, check=False).returncode == 0:
            return path
    return None


async def test_an_agent_on_python_38_joins_and_stops(tmp_path: Path) -> None:
    python38 = find_python38()
    if python38 is None:
        pytest.skip("no working python3.8 on this machine")
    ca, listener = await start_listener(tmp_path / "state")
    launcher = LocalLauncher(tmp_path / "run", contact(ca, listener), python=python38, extra_args=MINIMAL)
    try:
        (agent,) = await launcher.start_agents(["old-host"])
        seen = await drive_to_stop(listener, 1)
        assert seen == {"old-host": ["join", "prepared", "installed", "finished", "stopped", "closed"]}
        assert await asyncio.wait_for(agent.wait(), DEADLINE) == 0, agent.stderr_tail()
    finally:
        await launcher.close()
        await listener.close()
