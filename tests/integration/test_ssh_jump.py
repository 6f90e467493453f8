"""Hosts behind a jump host (``ProxyJump`` in the OpenSSH client config): a second private sshd is the bastion.

- six hosts behind a bastion that takes 2 handshakes at a time (``MaxStartups 2``) all join: the bastion's
  connection (opened with the ``ssh_config`` setting's entry for it) is shared by every host behind it, and
  the handshakes through it are bounded per jump host (``ssh_handshakes`` = 2), so nothing is turned away;
- a closed port behind the bastion, a port there that never speaks SSH, and a bastion that is not there fail
  each in words naming the cause, within ``ssh_connect_timeout`` (it holds end to end, jump included).
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from sshd_support import ADDRESSES, Sshd, running_sshd

from plush import Controller
from plush.config import Settings
from plush.errors import PlushError
from plush.resources.host import Host

pytestmark = pytest.mark.sshd

BEHIND = [f"b{k}" for k in range(1, 7)]


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Sshd, Sshd]]:
    root = tmp_path_factory.mktemp("jump")
    with running_sshd(root / "target") as target, running_sshd(root / "bastion", ["MaxStartups 2"]) as bastion:
        yield target, bastion


@pytest.fixture(scope="module")
def doors() -> Iterator[tuple[int, int]]:
    """A closed port, and a port that accepts TCP but never answers."""
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    mute = socket.socket()
    mute.bind(("127.0.0.1", 0))
    mute.listen(16)
    try:
        yield closed.getsockname()[1], mute.getsockname()[1]
    finally:
        closed.close()
        mute.close()


def _config(target: Sshd, bastion: Sshd, doors: tuple[int, int], path: Path) -> Path:
    """``bastion`` (its key known), ``b1`` .. ``b6`` behind it on the target sshd's three addresses, ``closed``
    and ``mute`` behind it, and ``nobastion`` behind a jump host where nothing listens."""
    key = (bastion.root / "host_ed25519.pub").read_text().split()[:2]
    known = path.parent / "jump_known_hosts"
    known.write_text(f"[127.0.0.1]:{bastion.port} {' '.join(key)}\n")
    common = ["User root", f"IdentityFile {target.client_key}", "IdentitiesOnly yes"]
    lines = ["Host bastion", "  HostName 127.0.0.1", f"  Port {bastion.port}", f"  UserKnownHostsFile {known}"]
    lines += [f"  {c}" for c in common]
    lines += ["Host deadbastion", "  HostName 127.0.0.1", f"  Port {doors[0]}", f"  UserKnownHostsFile {known}"]
    lines += [f"  {c}" for c in common]
    closed, mute = doors
    places = {n: (ADDRESSES[k % 3], target.port, "bastion") for k, n in enumerate(BEHIND)}
    places |= {"closed": ("127.0.0.1", closed, "bastion"), "mute": ("127.0.0.1", mute, "bastion")}
    places["nobastion"] = ("127.0.0.1", target.port, "deadbastion")
    for name, (address, port, jump) in places.items():
        lines += [f"Host {name}", f"  HostName {address}", f"  Port {port}", f"  ProxyJump {jump}"]
        lines += [f"  UserKnownHostsFile {target.known_hosts}", *(f"  {c}" for c in common)]
    path.write_text("\n".join(lines) + "\n")
    # the bastion authorizes the target's client key too
    (bastion.root / "authorized_keys").write_text((target.root / "client_ed25519.pub").read_text())
    return path


async def test_six_hosts_behind_a_bastion_of_max_startups_2_all_join(
    servers: tuple[Sshd, Sshd], doors: tuple[int, int], tmp_path: Path
) -> None:
    target, bastion = servers
    config = _config(target, bastion, doors, tmp_path / "ssh_config")
    settings = Settings(runs_dir=str(tmp_path / "runs"), ssh_config=str(config), ssh_handshakes=2)
    controller = Controller(settings)
    try:
        joined = await controller.connect([Host(n, n, "ssh") for n in BEHIND])
        assert sorted(joined) == BEHIND
        launcher = controller.mesh.launcher  # type: ignore[union-attr]
        conns = launcher.conns  # type: ignore[attr-defined]
        assert conns.retried == 0  # the bastion never turned one away
        assert [t.address for t in conns.open_targets()].count("bastion") == 1  # one connection, shared
    finally:
        await controller.quit()


async def test_failures_behind_a_bastion_are_said_within_the_connect_timeout(
    servers: tuple[Sshd, Sshd], doors: tuple[int, int], tmp_path: Path
) -> None:
    target, bastion = servers
    config = _config(target, bastion, doors, tmp_path / "ssh_config")
    settings = Settings(runs_dir=str(tmp_path / "runs"), ssh_config=str(config), ssh_connect_timeout=2.0)
    controller = Controller(settings)
    names = ["closed", "mute", "nobastion"]
    try:
        with pytest.raises(PlushError) as exc:
            await asyncio.wait_for(controller.connect([Host(n, n, "ssh") for n in names]), 30)
        text = str(exc.value)
        reasons = dict(part.split(": ", 1) for part in text.split(": ", 1)[1].split("; "))
        assert "connection refused" in reasons["closed"] and "through the jump host bastion" in reasons["closed"]
        assert "timed out connecting to 127.0.0.1" in reasons["mute"] and "after 2 s" in reasons["mute"]
        assert "jump host deadbastion" in reasons["nobastion"] and "connection refused" in reasons["nobastion"]
    finally:
        await controller.quit()
