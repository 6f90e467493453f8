"""Runs on hosts reached by SSH only: a private OpenSSH sshd on 127.0.0.1-3 (``sshd_support``), a directory file
of ``type="ssh"`` hosts, ``plush run -d`` bootstrapping each host over SSH (the agent zipapp copied once, then
cached), the examples as written; then the failures of a bootstrap, each in words naming the host.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from integration_support import cli_env, events, only_run, run_cli
from sshd_support import ADDRESSES, Sshd, running_sshd

pytestmark = pytest.mark.sshd

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture(scope="module")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sshd]:
    with running_sshd(tmp_path_factory.mktemp("sshd")) as server:
        yield server


#: the pool's names: six logical hosts on the three loopback addresses (two per machine and account)
NAMES = [f"n{k}" for k in range(1, 7)]
#: the examples, as written (``examples/*.xml``)
EXAMPLE_FILES = ["tarball.xml", "filedist.xml", "modelnet.xml", "workflow.xml", "policies.xml", "partial.xml"]


def _zipapps(sshd: Sshd) -> list[Path]:
    return sorted((sshd.home / ".cache" / "plush").glob("agent-*.pyz"))


def _aliases(sshd: Sshd) -> None:
    """``n1`` .. ``n6`` reach 127.0.0.1, .2, .3 in turn (an OpenSSH client config ``Host`` entry each)."""
    extra = []
    for k, name in enumerate(NAMES):
        extra += [f"Host {name}", f"  HostName {ADDRESSES[k % 3]}"]
    sshd.write_client_config()
    text = sshd.client_config.read_text().replace("Host 127.0.0.* localhost", "Host 127.0.0.* localhost n*")
    sshd.client_config.write_text(text + "\n".join(extra) + "\n")


@pytest.mark.slow
def test_examples_run_on_three_ssh_hosts_then_again_with_the_zipapp_cached(sshd: Sshd, tmp_path: Path) -> None:
    _aliases(sshd)
    pool = sshd.pool(tmp_path / "ssh.xml", NAMES)
    env = cli_env(**sshd.env())
    for zipapp in _zipapps(sshd):
        zipapp.unlink()
    first = run_cli(EXAMPLES / "tarball.yaml", tmp_path / "cold", "-q", "-d", str(pool), env=env)
    assert first.returncode == 0, first.stderr
    (zipapp,) = _zipapps(sshd)  # copied once, for all three machines' (one account's) hosts
    known = sshd.known_hosts.read_text()  # accept-new: the hosts never seen were added
    assert all(f"[{a}]:{sshd.port} ssh-ed25519 " in known for a in ADDRESSES[:2])
    copied = zipapp.stat()
    for name in EXAMPLE_FILES:
        runs = tmp_path / name
        result = run_cli(EXAMPLES / name, runs, "-q", "-d", str(pool), env=env)
        assert result.returncode == 0, f"{name}: {result.stderr}"
        evs = events(only_run(runs))
        assert evs[-1].name == "run.finished" and evs[-1].data["ok"] is True
        finished = {e.host for e in evs if e.name == "host.finished"}
        assert finished <= set(NAMES) and len(finished) == evs[0].data["hosts"]
        # each logical host had a directory of its own on its machine
        run_id = only_run(runs).name
        assert {p.name for p in (sshd.home / ".plush" / run_id / "hosts").iterdir()} == finished
    now = zipapp.stat()  # nothing copied again: the same file, untouched
    assert (now.st_ino, now.st_mtime_ns) == (copied.st_ino, copied.st_mtime_ns)
    assert _zipapps(sshd) == [zipapp]
