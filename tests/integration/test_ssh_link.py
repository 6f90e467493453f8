"""The agent's link over its SSH session (``ssh_link = "channel"``, the default): no port on either side.

A private sshd that forwards nothing (``DisableForwarding yes``: no TCP, no Unix socket, no agent forwarding)
still runs an application on its hosts: each agent speaks the protocol on its session's stdin/stdout. When the
SSH connection dies mid-run, the agents keep their processes, the launcher re-dials and a new session relays
to each agent's Unix socket; the run resumes and finishes.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from integration_support import write_spec
from sshd_support import Sshd, running_sshd

from plush import Controller
from plush.config import Settings
from plush.controller.events import Subscription
from plush.resources.host import Host, Pool

pytestmark = pytest.mark.sshd

WAITING = """
project: waiting
components:
  pair:
    hosts: 2
application:
  execution:
    pair:
      blocks:
        - process: work
          run: [sh, -c, 'while [ ! -e "$PLUSH_RUN_DIR/release" ]; do sleep 0.05; done; echo "done on $PLUSH_HOST"']
"""


@pytest.fixture(scope="module")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sshd]:
    with running_sshd(tmp_path_factory.mktemp("sshd"), ["DisableForwarding yes"]) as server:
        yield server


def sessions_of(sshd: Sshd) -> list[int]:
    """The pids of the sshd processes serving connections (children of the listening sshd)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text().rpartition(")")[2].split()
            except OSError:
                continue
            if int(stat[1]) == sshd.process.pid:
                found.append(int(entry.name))
    return found


async def _until(watch: Subscription, name: str, seen: list[str], count: int = 1) -> None:
    while seen.count(name) < count:
        event = await asyncio.wait_for(watch.get(), 60)
        assert event is not None
        seen.append(event.name)


async def test_agents_link_over_their_ssh_session_and_resume_through_a_relay_where_sshd_forwards_nothing(
    sshd: Sshd, tmp_path: Path
) -> None:
    settings = Settings(runs_dir=str(tmp_path), ssh_config=str(sshd.client_config), reconnect_window=30.0)
    controller = Controller(settings)
    controller.load(write_spec(tmp_path, WAITING))
    watch = controller.subscribe(["process.started", "host.disconnected", "host.reconnected"])
    pool = Pool([Host("127.0.0.1", "127.0.0.1", "ssh"), Host("127.0.0.2", "127.0.0.2", "ssh")])
    run = asyncio.get_running_loop().create_task(controller.run(pool=pool))
    try:
        seen: list[str] = []
        await _until(watch, "process.started", seen)
        for pid in sessions_of(sshd):  # every SSH connection dies (its sshd side killed)
            os.kill(pid, signal.SIGKILL)
        await _until(watch, "host.reconnected", seen, 2)
        assert controller.engine is not None
        (Path(controller.engine.rundir.shared) / "release").touch()
        result = await asyncio.wait_for(run, 60)
        assert result.ok, result
        assert seen.index("host.disconnected") < seen.index("host.reconnected")
    finally:
        if not run.done():
            controller.abort("test over")
            await asyncio.gather(run, return_exceptions=True)
        await controller.quit()


DAEMON = """
project: leftover
components:
  solo:
    hosts: 1
application:
  execution:
    solo:
      blocks:
        - process: spawner
          run: [sh, -c, '(setsid sh -c "echo \\$\\$ > $PLUSH_RUN_DIR/daemon.pid; exec sleep 300" &); exec sleep 300']
"""


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] not in ("Z", "X")


async def test_what_a_killed_agent_and_its_guard_left_on_an_ssh_host_is_swept_by_run_id(
    sshd: Sshd, tmp_path: Path
) -> None:
    """A process that double-forked out of its tree outlives its agent and the agent's guard (both SIGKILLed);
    the run's end sweeps the host by run id over SSH and it is gone."""
    settings = Settings(runs_dir=str(tmp_path), ssh_config=str(sshd.client_config))
    controller = Controller(settings)
    controller.load(write_spec(tmp_path, DAEMON))
    run = asyncio.get_running_loop().create_task(controller.run(pool=Pool([Host("127.0.0.3", "127.0.0.3", "ssh")])))
    daemon = 0
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 60
        while controller.engine is None or not (Path(controller.engine.rundir.shared) / "daemon.pid").exists():
            assert loop.time() < deadline and not run.done(), "the daemon did not start"
            await asyncio.sleep(0.05)
        daemon = int((Path(controller.engine.rundir.shared) / "daemon.pid").read_text())
        launcher = controller.engine.mesh.launcher
        agent = launcher.agents["127.0.0.3"]
        log = sshd.home / ".plush" / launcher.workspace / "hosts" / "127.0.0.3" / "agent.log"
        guard = int(log.read_text().split("guard ", 1)[1].split()[0])
        os.kill(guard, signal.SIGKILL)
        os.kill(agent.pid, signal.SIGKILL)
        assert _alive(daemon)
        controller.abort("test over")
        await asyncio.gather(run, return_exceptions=True)
        await controller.quit()
        deadline = loop.time() + 30
        while _alive(daemon):
            assert loop.time() < deadline, "the leftover survived the run"
            await asyncio.sleep(0.05)
    finally:
        if not run.done():
            controller.abort("test over")
            await asyncio.gather(run, return_exceptions=True)
        await controller.quit()
        if daemon and _alive(daemon):
            os.kill(daemon, signal.SIGKILL)


QUICK = """
project: quick
components:
  pair:
    hosts: 2
application:
  execution:
    pair:
      blocks:
        - process: work
          run: [sh, -c, 'echo "done on $PLUSH_HOST"']
"""


async def test_a_clean_end_sweeps_no_ssh_host(sshd: Sshd, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A run's end over SSH costs one remote command per host it sweeps: the agents that answered ``stopped``
    killed their own processes, so only a host whose agent did not is swept (a run ended cleanly: none; the
    unclean case: test_what_a_killed_agent_and_its_guard_left_on_an_ssh_host_is_swept_by_run_id)."""
    from plush.launch.ssh import SSHLauncher

    swept: list[list[str] | None] = []
    real = SSHLauncher.kill_leftovers

    async def spy(self: SSHLauncher, run_id: str, hosts: object) -> list[int]:
        swept.append(None if hosts is None else sorted(hosts))  # type: ignore[call-overload]
        return await real(self, run_id, hosts)  # type: ignore[arg-type]

    monkeypatch.setattr(SSHLauncher, "kill_leftovers", spy)
    settings = Settings(runs_dir=str(tmp_path), ssh_config=str(sshd.client_config))
    controller = Controller(settings)
    controller.load(write_spec(tmp_path, QUICK))
    pool = Pool([Host("127.0.0.1", "127.0.0.1", "ssh"), Host("127.0.0.2", "127.0.0.2", "ssh")])
    result = await asyncio.wait_for(controller.run(pool=pool), 120)
    await controller.quit()
    assert result.ok, result.outcome
    assert swept == []  # every agent answered: nothing to sweep, no remote command per host
