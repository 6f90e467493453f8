"""Every bootstrap failure of an SSH host is said in words naming the host and the cause, and the host enters
the failure ladder; a crowd of hosts behind an sshd that takes 2 handshakes at a time all join.

One private sshd (``sshd_support``) serves the module; the client config gives each failure its host:
``badkey`` (a key sshd does not accept), ``changed`` (known_hosts holds another key), ``closed`` (a port where
nothing listens), ``slow`` (a port that accepts TCP and never speaks SSH), ``nopy`` (127.0.0.3, whose sessions
get a PATH without any python), ``oldpy`` (127.0.0.2, whose first python3 is a 3.6).
"""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from integration_support import cli_env, events, only_run, run_cli, write_spec
from sshd_support import Sshd, running_sshd

from plush import Controller
from plush.config import Settings
from plush.errors import PlushError
from plush.resources.host import Host

pytestmark = pytest.mark.sshd

FAILING = {
    "badkey": "authentication failed",
    "changed": "host key changed",
    "closed": "connection refused",
    "slow": "timed out",
    "nopy": "no python3",
    "oldpy": "python3 too old",
}


def _bin_without_python(root: Path) -> Path:
    """A directory of links to every command of /usr/bin but the pythons."""
    out = root / "nopython-bin"
    out.mkdir()
    for tool in Path("/usr/bin").iterdir():
        if not tool.name.startswith("python"):
            (out / tool.name).symlink_to(tool)
    return out


@pytest.fixture(scope="module")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sshd]:
    root = tmp_path_factory.mktemp("sshd")
    nopy = _bin_without_python(root)
    old = root / "oldpython-bin"
    old.mkdir()
    fake = old / "python3"
    fake.write_text("#!/bin/sh\necho 3.6\nexit 1\n")  # what a Python 3.6 answers to the probe
    fake.chmod(0o755)
    env = {"127.0.0.3": {"PATH": str(nopy)}, "127.0.0.2": {"PATH": f"{old}:{nopy}"}}
    with running_sshd(root / "server", env=env) as server:
        yield server


@pytest.fixture(scope="module")
def doors() -> Iterator[tuple[int, int]]:
    """A closed port, and a port that accepts TCP but never answers."""
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))  # bound, not listening: connections are refused
    mute = socket.socket()
    mute.bind(("127.0.0.1", 0))
    mute.listen(16)
    try:
        yield closed.getsockname()[1], mute.getsockname()[1]
    finally:
        closed.close()
        mute.close()


def _config(sshd: Sshd, doors: tuple[int, int], names: list[str] | None = None) -> Path:
    root = sshd.root
    wrong = root / "wrong_ed25519"
    if not wrong.exists():
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(wrong)], check=True)
    other_host = root / "other_host_ed25519"
    if not other_host.exists():
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other_host)], check=True)
    changed = root / "known_changed"
    key = (root / "other_host_ed25519.pub").read_text().split()[:2]
    changed.write_text(f"[127.0.0.1]:{sshd.port} {' '.join(key)}\n[changed]:{sshd.port} {' '.join(key)}\n")
    closed, mute = doors
    special = {
        "badkey": ["HostName 127.0.0.1", f"IdentityFile {wrong}", f"UserKnownHostsFile {sshd.known_hosts}"],
        "changed": ["HostName 127.0.0.1", f"IdentityFile {sshd.client_key}", f"UserKnownHostsFile {changed}"],
        "closed": ["HostName 127.0.0.1", f"Port {closed}"],
        "slow": ["HostName 127.0.0.1", f"Port {mute}"],
        "nopy": ["HostName 127.0.0.3"],
        "oldpy": ["HostName 127.0.0.2"],
    }
    lines = []
    for name in [*FAILING, *(names or []), "good"]:
        lines.append(f"Host {name}")
        extra = special.get(name, ["HostName 127.0.0.1"])
        lines += [f"  {x}" for x in extra]
        if not any(x.startswith("IdentityFile") for x in extra):
            lines += [f"  IdentityFile {sshd.client_key}", f"  UserKnownHostsFile {sshd.known_hosts}"]
        lines += [f"  Port {sshd.port}", "  User root", "  IdentitiesOnly yes"]
    path = root / "failures_config"
    path.write_text("\n".join(lines) + "\n")
    return path


async def test_each_bootstrap_failure_names_the_host_and_its_cause(
    sshd: Sshd, doors: tuple[int, int], tmp_path: Path
) -> None:
    settings = Settings(runs_dir=str(tmp_path), ssh_config=str(_config(sshd, doors)), ssh_connect_timeout=3.0)
    controller = Controller(settings)
    try:
        with pytest.raises(PlushError) as exc:
            await controller.connect([Host(n, n, "ssh") for n in [*FAILING, "good"]])
        text = str(exc.value)
        assert text.startswith(f"{len(FAILING)} of {len(FAILING) + 1} host(s) did not connect: ")
        reasons = dict(part.split(": ", 1) for part in text.split(": ", 1)[1].split("; "))
        assert set(reasons) == set(FAILING)
        for name, words in FAILING.items():
            assert words in reasons[name], (name, reasons[name])
        assert [h.name for h in controller.mesh.joined()] == ["good"]  # type: ignore[union-attr]
    finally:
        await controller.quit()


SPEC = """
project: one
components:
  solo:
    hosts: 1
application:
  execution:
    solo:
      blocks:
        - {process: hello, run: [sh, -c, 'echo "hello from $PLUSH_HOST"']}
"""


def test_a_host_that_cannot_be_bootstrapped_is_replaced_and_said_in_the_output(
    sshd: Sshd, doors: tuple[int, int], tmp_path: Path
) -> None:
    config = _config(sshd, doors)
    pool = sshd.pool(tmp_path / "pool.xml", ["badkey", "good"])
    env = cli_env(PLUSH_SSH_CONFIG=str(config))
    result = run_cli(write_spec(tmp_path, SPEC), tmp_path / "runs", "-d", str(pool), env=env)
    assert result.returncode == 0, result.stderr
    assert "hello from good" in result.stdout
    failed = [e for e in events(only_run(tmp_path / "runs")) if e.name == "host.failed"]
    assert [e.host for e in failed] == ["badkey"]
    assert "authentication failed" in str(failed[0].data)
    assert "badkey" in result.stderr and "authentication failed" in result.stderr


async def test_twenty_hosts_behind_an_sshd_of_max_startups_2_all_join(tmp_path: Path) -> None:
    names = [f"m{k}" for k in range(1, 21)]
    with running_sshd(tmp_path / "server", ["MaxStartups 2"]) as server:
        settings = Settings(
            runs_dir=str(tmp_path / "runs"), ssh_config=str(_config(server, (1, 1), names)), ssh_connect_timeout=20.0
        )
        controller = Controller(settings)
        try:
            joined = await controller.connect([Host(n, n, "ssh") for n in names])
            assert sorted(joined) == sorted(names)
            launcher = controller.mesh.launcher  # type: ignore[union-attr]
            assert launcher.conns.retried > 0  # type: ignore[attr-defined]  # sshd did turn handshakes away
        finally:
            await controller.quit()


WAITING = """
project: waiting
components:
  solo:
    hosts: 1
application:
  execution:
    solo:
      blocks:
        - process: work
          run: [sh, -c, 'while [ ! -e "$PLUSH_RUN_DIR/release" ]; do sleep 0.05; done; echo "done on $PLUSH_HOST"']
"""


def _sessions_of(sshd: Sshd) -> list[int]:
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


@pytest.mark.parametrize("link", ["channel", "tcp"])
async def test_an_agent_outlives_its_ssh_connection_and_the_run_resumes(
    sshd: Sshd, doors: tuple[int, int], tmp_path: Path, link: str
) -> None:
    import asyncio
    import os
    import signal

    from plush.resources.host import Pool

    config = str(_config(sshd, doors))
    settings = Settings(runs_dir=str(tmp_path), ssh_config=config, reconnect_window=30.0, ssh_link=link)
    controller = Controller(settings)
    controller.load(write_spec(tmp_path, WAITING))
    watch = controller.subscribe(["process.started", "host.disconnected", "host.reconnected"])
    run = asyncio.get_running_loop().create_task(controller.run(pool=Pool([Host("good", "good", "ssh")])))
    try:
        seen: list[str] = []
        while "process.started" not in seen:
            event = await asyncio.wait_for(watch.get(), 60)
            assert event is not None
            seen.append(event.name)
        for pid in _sessions_of(sshd):  # the SSH connection dies (its sshd side killed)
            os.kill(pid, signal.SIGKILL)
        while "host.reconnected" not in seen:
            event = await asyncio.wait_for(watch.get(), 60)
            assert event is not None
            seen.append(event.name)
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
