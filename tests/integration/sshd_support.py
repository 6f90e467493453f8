"""A private OpenSSH sshd for the SSH tests: loopback only, everything in the test's temporary directory.

:func:`start_sshd` writes a host key, a client key, ``authorized_keys`` and an ``sshd_config`` under a directory
of the test, and starts ``/usr/sbin/sshd -D -f CONFIG -e`` listening on 127.0.0.1, 127.0.0.2 and 127.0.0.3 (one
free port); :class:`Sshd` also writes the client side: an OpenSSH client config (the ``ssh_config`` setting)
whose ``Host`` entries give the port, the user, the key and a known_hosts file of the test. Remote sessions get
``HOME`` inside the test's directory (``SetEnv``), so what the SSH launcher writes on "the host" (the zipapp
cache, the hosts' directories) stays there. No system sshd is started or touched.

``sshd_or_skip()`` skips a test when there is no sshd, with how to get one (``tests/setup-system.sh`` as root
installs openssh-server; ``make test`` runs it).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

SSHD = Path("/usr/sbin/sshd")
PRIVSEP = Path("/run/sshd")
ADDRESSES = ("127.0.0.1", "127.0.0.2", "127.0.0.3")


def sshd_or_skip() -> None:
    """Skip unless a private sshd can run here."""
    if not SSHD.is_file() or shutil.which("ssh-keygen") is None:
        pytest.skip("no OpenSSH sshd: run `bash tests/setup-system.sh` as root (installs openssh-server)")
    if os.geteuid() == 0 and not PRIVSEP.is_dir():
        pytest.skip(f"sshd needs {PRIVSEP}: run `bash tests/setup-system.sh` as root")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _keygen(path: Path) -> None:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)


@dataclass
class Sshd:
    """A running private sshd and the client files that reach it."""

    root: Path
    port: int
    process: subprocess.Popen[bytes]
    client_key: Path
    known_hosts: Path
    client_config: Path
    home: Path

    def write_client_config(self, extra: Sequence[str] = (), key: Path | None = None) -> Path:
        """The OpenSSH client config of the tests: every loopback address at this sshd as root."""
        lines = [
            "Host 127.0.0.* localhost",
            f"  Port {self.port}",
            "  User root",
            f"  IdentityFile {key or self.client_key}",
            "  IdentitiesOnly yes",
            f"  UserKnownHostsFile {self.known_hosts}",
            *extra,
        ]
        self.client_config.write_text("\n".join(lines) + "\n")
        return self.client_config

    def env(self) -> dict[str, str]:
        """What a controller process needs to use this sshd (and no ssh-agent of the caller's)."""
        env = {"PLUSH_SSH_CONFIG": str(self.client_config), "PLUSH_SSH_CONNECT_TIMEOUT": "20"}
        return env

    def pool(self, path: Path, names: Sequence[str], **attrs: str) -> Path:
        """A directory file of ``type="ssh"`` hosts at ``names`` (``attrs`` on each node)."""
        extra = "".join(f' {k}="{v}"' for k, v in attrs.items())
        nodes = "".join(f'    <node hostname="{n}"{extra}/>\n' for n in names)
        path.write_text(f'<plush>\n  <resource_manager type="ssh">\n{nodes}  </resource_manager>\n</plush>\n')
        return path

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_sshd(root: Path, extra: Sequence[str] = (), env: Mapping[str, Mapping[str, str]] | None = None) -> Sshd:
    """Start a private sshd under ``root`` (``extra``: more sshd_config lines, e.g. ``MaxStartups 2``; ``env``:
    variables the sessions reached at one address get, e.g. a ``PATH`` without python3 on 127.0.0.3)."""
    sshd_or_skip()
    root.mkdir(parents=True, exist_ok=True)
    host_key, client_key = root / "host_ed25519", root / "client_ed25519"
    _keygen(host_key)
    _keygen(client_key)
    (root / "authorized_keys").write_text((root / "client_ed25519.pub").read_text())
    home = root / "home"
    home.mkdir(exist_ok=True)
    port = _free_port()
    config = root / "sshd_config"
    lines = [
        f"Port {port}",
        *(f"ListenAddress {a}" for a in ADDRESSES),
        f"HostKey {host_key}",
        f"AuthorizedKeysFile {root / 'authorized_keys'}",
        "PidFile none",
        "StrictModes no",
        "UsePAM no",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "PubkeyAuthentication yes",
        "PermitRootLogin prohibit-password",
        "AllowTcpForwarding yes",
        "LogLevel ERROR",
        *extra,
    ]
    # sshd keeps the first SetEnv it meets: each address's own (Match) first, then everyone's
    for address, variables in (env or {}).items():
        pairs = " ".join(f"{k}={v}" for k, v in variables.items())
        lines += [f"Match LocalAddress {address}", f"  SetEnv HOME={home} {pairs}"]
    lines += ["Match all", f"  SetEnv HOME={home}"]
    config.write_text("\n".join(lines) + "\n")
    log = open(root / "sshd.log", "ab")  # noqa: SIM115 (the sshd's stderr for its lifetime)
    process = subprocess.Popen([str(SSHD), "-D", "-f", str(config), "-e"], stdout=log, stderr=log)
    log.close()
    deadline = time.monotonic() + 10
    while True:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.3", port), timeout=1):
            break
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"sshd did not start: {(root / 'sshd.log').read_text()}")
        time.sleep(0.05)
    sshd = Sshd(root, port, process, client_key, root / "known_hosts", root / "ssh_config", home)
    sshd.write_client_config()
    return sshd


@contextlib.contextmanager
def running_sshd(
    root: Path, extra: Sequence[str] = (), env: Mapping[str, Mapping[str, str]] | None = None
) -> Iterator[Sshd]:
    sshd = start_sshd(root, extra, env)
    try:
        yield sshd
    finally:
        sshd.stop()
