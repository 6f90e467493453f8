"""``plush cluster``: hosts as network namespaces with their own address, sshd and files, reached by the SSH
launcher from the cluster's directory file; faults injected mid-run; ``down`` leaves nothing behind.

Needs root, ``ip netns`` and OpenSSH's sshd (skipped with the reason otherwise; CI runs as root). The cluster's
state lives in the test's directory (``XDG_STATE_HOME``); its name and private range are drawn at random so
that a cluster of the machine's user is never touched.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import pwd
import random
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sshd_support import sshd_or_skip

from plush import Controller
from plush.config import Settings
from plush.controller.events import Event
from plush.resources.directory import parse_directory
from plush.resources.host import Pool

pytestmark = pytest.mark.netns

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def netns_or_skip() -> None:
    """Skip unless this process may create network namespaces and run sshds in them."""
    if os.geteuid() != 0:
        pytest.skip("plush cluster needs root (network namespaces, a bridge, veths): run the tests as root")
    sshd_or_skip()
    for tool in ("ip", "unshare", "setsid", "tc"):
        if shutil.which(tool) is None:
            pytest.skip(f"no {tool} here (iproute2, util-linux)")
    probe = f"plush-probe-{os.getpid()}"
    made = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True, check=False)
    if made.returncode != 0:
        pytest.skip(f"cannot create a network namespace: {made.stderr.strip()}")
    subprocess.run(["ip", "netns", "del", probe], check=True)


def plush(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "plush", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@dataclass
class Cluster:
    name: str
    directory: Path
    env: dict[str, str]
    runs: Path
    state: Path

    def address(self, host: str) -> str:
        (shown,) = json.loads(self.cli("status", "--json", self.name).stdout)["clusters"]
        return str(next(h["address"] for h in shown["hosts"] if h["name"] == host))

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        done = plush("cluster", *args, env=self.env)
        assert done.returncode == 0, done.stderr
        return done


def _subnet() -> str:
    return f"10.{random.randint(100, 250)}.{random.randint(0, 255)}.0/24"


def cluster_up(root: Path, count: int, *extra: str) -> Cluster:
    netns_or_skip()
    state = root / "state"
    runs = root / "runs"
    runs.mkdir(parents=True)
    env = {"XDG_STATE_HOME": str(state)}
    name = "t" + secrets.token_hex(2)
    for _ in range(3):  # another range when this one is in use here
        done = plush(
            "cluster", "up", str(count), "--name", name, "--subnet", _subnet(), "--share", str(runs), *extra, env=env
        )
        if "is in use here" not in done.stderr:
            break
    assert done.returncode == 0, done.stderr
    return Cluster(name, Path(done.stdout.strip()), env, runs, state)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    root = tmp_path_factory.mktemp("cluster")
    made = cluster_up(root, 9, "--bandwidth", "1gbit")
    try:
        yield made
    finally:
        plush("cluster", "down", made.name, env=made.env)


def _out(*argv: str) -> str:
    return subprocess.run(argv, capture_output=True, text=True, check=False).stdout


def _mounts_anywhere(name: str) -> list[str]:
    """The mounts named after cluster ``name``'s hosts (their tmpfs) in any process's mount namespace."""
    found = []
    for mounts in Path("/proc").glob("[0-9]*/mounts"):
        try:
            found += [f"{mounts.parent.name}: {m}" for m in mounts.read_text().splitlines() if f"plush-{name}-" in m]
        except OSError:
            continue  # a process gone meanwhile
    return found


def leftovers(name: str, state: Path) -> list[str]:
    """Whatever of cluster ``name`` is still on this machine: namespaces, links, mounts (the hosts' tmpfs in
    their own mount namespaces too), processes."""
    found = [n for n in _out("ip", "netns", "list").split() if f"plush-{name}-" in n]
    found += [line.split(":")[1].strip() for line in _out("ip", "-o", "link").splitlines() if f"-{name}" in line]
    found += [m for m in Path("/proc/mounts").read_text().splitlines() if f"plush-{name}-" in m or str(state) in m]
    found += _mounts_anywhere(name)
    found += [p for p in _out("ps", "-eo", "pid,args").splitlines() if str(state) in p or f"plush-{name}-" in p]
    return found


def host_root(netns: str) -> Path:
    """The root directory as a process of the host of network namespace ``netns`` sees it (its mount
    namespace: its own home and /tmp), read from outside through ``/proc/PID/root``."""
    for pid in sorted(int(p) for p in _out("ip", "netns", "pids", netns).split()):
        root = Path(f"/proc/{pid}/root")
        if (root / "tmp").is_dir():
            return root
    raise AssertionError(f"no process in {netns}")


async def test_filedist_runs_across_the_cluster_a_cut_host_is_rematched_a_frozen_one_fails(
    cluster: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    from plush.cluster import manage

    monkeypatch.setenv("XDG_STATE_HOME", cluster.env["XDG_STATE_HOME"])
    hosts = parse_directory(cluster.directory.read_text(), file=str(cluster.directory))
    assert len(hosts) == 9 and {h.provider for h in hosts} == {"ssh"}
    settings = Settings(
        runs_dir=str(cluster.runs),
        ssh_config="",  # none: each host of the directory file names the cluster's own (ssh_config attribute)
        ssh_connect_timeout=5.0,
        heartbeat_interval=0.5,
        silence_timeout=1.0,
        ping_timeout=0.5,
        reconnect_window=2.0,
        host_restarts=0,
    )
    controller = Controller(settings)
    controller.load(EXAMPLES / "filedist.xml")
    receivers: list[str] = []
    faults: dict[str, str] = {}
    replaced: dict[str, str] = {}
    states: dict[str, str] = {}

    def mid_run(event: Event) -> None:
        """Called by the event bus, before the run goes on. At the senders' first process, while every receiver
        waits at the barrier that process opens: cut one receiver's link, freeze another. Once both are
        replaced: their states as ``status`` tells them, then the link restored and the host thawed (a host left
        unreachable holds the run's end for the SSH launcher's timeouts, ~20 s)."""
        if event.name == "host.joined" and event.data.get("component") == "receivers":
            receivers.append(str(event.host))
        elif event.name == "process.started" and not faults:
            faults["cut"], faults["frozen"] = sorted(receivers)[:2]
            manage.cut(faults["cut"])
            manage.freeze(faults["frozen"])
        elif event.name == "host.rematched":
            replaced[str(event.host)] = event.data["replacement"]
            if set(faults.values()) <= set(replaced):
                (shown,) = manage.status(cluster.name)
                states.update({h["name"]: h["state"] for h in shown["hosts"]})
                manage.cut(faults["cut"], restore=True)  # the run's end reaches their agents quickly
                manage.freeze(faults["frozen"], thaw=True)

    controller.bus.add_sink(mid_run)
    watch = controller.subscribe(["host.failed", "host.joined"])
    try:
        result = await asyncio.wait_for(controller.run(pool=Pool(hosts)), 120)
    finally:
        await controller.quit()
    seen = watch.drain_nowait()
    assert result.ok, result
    cut, frozen = faults["cut"], faults["frozen"]
    assert {cut, frozen} <= {e.host for e in seen if e.name == "host.failed"}
    assert {cut, frozen} <= set(replaced)  # each by a spare of the pool: a host that had no part in the run yet
    first = {e.host for e in seen if e.name == "host.joined"} - set(replaced.values())
    assert first.isdisjoint({replaced[cut], replaced[frozen]})
    assert (states[cut], states[frozen]) == ("cut", "frozen")
    status = cluster.cli("status", cluster.name).stdout
    assert [line.split()[2] for line in status.splitlines()[1:]] == ["up"] * 9


def test_hosts_share_nothing_and_links_are_limited_when_asked(cluster: Cluster) -> None:
    config = str(cluster.directory.parent / "ssh_config")

    def on(host: str, script: str) -> list[str]:
        ssh = ["ssh", "-F", config, "-o", "BatchMode=yes", host, script]
        return subprocess.run(ssh, capture_output=True, text=True, timeout=30, check=True).stdout.split()

    h1, h2 = f"{cluster.name}-h1", f"{cluster.name}-h2"
    for host in (h1, h2):
        script = f"hostname; echo {host} > /tmp/mine; echo {host} > ~/mine; getent hosts {h1}"
        assert on(host, script) == [host, cluster.address(h1), h1]
    assert on(h1, "cat /tmp/mine ~/mine") == [h1, h1]  # h2 wrote its own
    # each host's home, /tmp and /var/tmp are one tmpfs of its own (the default: --fs tmpfs)
    kinds = {host: on(host, "stat -f -c '%T %i' ~ /tmp /var/tmp") for host in (h1, h2)}
    assert kinds[h1][0::2] == kinds[h2][0::2] == ["tmpfs"] * 3
    assert len(set(kinds[h1][1::2])) == 1 and kinds[h1][1] != kinds[h2][1]
    note = cluster.runs.parent / "note.txt"
    note.write_text("copied\n")
    scp = ["scp", "-F", config, "-o", "BatchMode=yes", str(note), f"{h2}:note.txt"]  # sftp, as any host serves
    subprocess.run(scp, capture_output=True, timeout=30, check=True)
    assert on(h2, "cat ~/note.txt") == ["copied"]
    # seen from outside only through a process of the host: the state directory holds an empty mount point
    assert (host_root(f"plush-{cluster.name}-h1") / "tmp" / "mine").read_text() == f"{h1}\n"
    home = Path(pwd.getpwuid(0).pw_dir).relative_to("/")
    assert (host_root(f"plush-{cluster.name}-h2") / home / "mine").read_text() == f"{h2}\n"
    fs = cluster.state / "plush" / "clusters" / cluster.name / "hosts" / h1 / "fs"
    assert fs.is_dir() and list(fs.iterdir()) == []
    outside = _out("tc", "qdisc", "show", "dev", f"pv-{cluster.name}-1")
    inside = _out("tc", "-n", f"plush-{cluster.name}-h1", "qdisc", "show", "dev", "eth0")
    assert "tbf" in outside and "1Gbit" in outside and "tbf" in inside


def ssh_on(made: Cluster, host: str, script: str) -> subprocess.CompletedProcess[str]:
    ssh = ["ssh", "-F", str(made.directory.parent / "ssh_config"), "-o", "BatchMode=yes", host, script]
    return subprocess.run(ssh, capture_output=True, text=True, timeout=30, check=False)


def test_a_host_s_tmpfs_holds_fs_size_and_more_than_the_memory_is_warned_about(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``up 1 --fs-size 8m`` on a machine said to have 4 MiB of memory (the only stub: its MemTotal): one warning
    line, the cluster is made anyway; its host's /tmp is a tmpfs of 8 MiB: writing 9 MiB says no space."""
    from plush.shell.commands import main

    netns_or_skip()
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.setattr("plush.cluster.machine.mem_total", lambda: 4 * 2**20)
    name = "t" + secrets.token_hex(2)
    try:
        for _ in range(3):  # another range when this one is in use here
            with pytest.raises(SystemExit) as done:
                main(["cluster", "up", "1", "--name", name, "--subnet", _subnet(), "--fs-size", "8m"])
            said = capsys.readouterr()
            if "is in use here" not in said.err:
                break
        assert done.value.code == 0, said.err
        warnings = [line for line in said.err.splitlines() if line.startswith("plush: warning: ")]
        assert len(warnings) == 1 and "1 host with a tmpfs of 8m each may hold 8m" in warnings[0], said.err
        assert f"cluster {name}: 1 hosts {name}-h1..{name}-h1 in" in said.err and "a tmpfs of 8m each" in said.err
        made = Cluster(name, Path(said.out.strip()), {"XDG_STATE_HOME": str(tmp_path / "state")}, tmp_path, tmp_path)
        full = ssh_on(made, f"{name}-h1", "df -k --output=size /tmp | tail -1; head -c 9M /dev/zero > /tmp/big")
        assert full.returncode != 0 and full.stdout.split() == ["8192"], full
        assert "No space left on device" in full.stderr, full.stderr
        (shown,) = json.loads(made.cli("status", "--json", name).stdout)["clusters"]
        assert (shown["fs"], shown["fs_size"]) == ("tmpfs", "8m")
    finally:
        plush("cluster", "down", name, env={"XDG_STATE_HOME": str(tmp_path / "state")})
    assert leftovers(name, tmp_path / "state") == []  # the tmpfs went with the host's mount namespace


def test_fs_machine_keeps_the_hosts_files_in_the_state_directory_on_this_machine_s_disk(tmp_path: Path) -> None:
    made = cluster_up(tmp_path, 1, "--fs", "machine")
    try:
        h1 = f"{made.name}-h1"
        wrote = ssh_on(made, h1, f"echo {h1} > /tmp/mine; echo home > ~/mine; stat -f -c %T /tmp")
        private = made.state / "plush" / "clusters" / made.name / "hosts" / h1
        assert wrote.stdout.split() == [_out("stat", "-f", "-c", "%T", str(private)).strip()], wrote
        assert (private / "tmp" / "mine").read_text() == f"{h1}\n"
        assert (private / "home" / "mine").read_text() == "home\n"
        status = made.cli("status", made.name).stdout
        assert "directories on this machine's disk" in status.splitlines()[0]
    finally:
        plush("cluster", "down", made.name, env=made.env)


async def test_cluster_hosts_fetch_a_copy_from_each_other_and_a_killed_parent_s_children_fall_back(
    cluster: Cluster, tmp_path: Path
) -> None:
    """A copy to the cluster's 9 hosts leaves the controller once (relay_fanout 2: the others fetch from each
    other, over TLS, checked by sha256); then a parent's agent is killed as soon as a host is told to fetch
    from it: its children go on with their grandparent or the controller, every other host gets the file."""
    hosts = parse_directory(cluster.directory.read_text(), file=str(cluster.directory))
    controller = Controller(Settings(runs_dir=str(cluster.runs), ssh_config="", relay_fanout=2))
    payload = tmp_path / "payload.bin"
    payload.write_bytes(os.urandom(6 * 1024 * 1024))
    sha = hashlib.sha256(payload.read_bytes()).hexdigest()
    try:
        await asyncio.wait_for(controller.connect(hosts), 60)
        transfers = controller.mesh.transfers
        first = await asyncio.wait_for(controller.copy(str(payload), "relayed.bin"), 60)
        assert first.ok, first.reasons
        stats = transfers.statistics()
        assert stats["bytes_streamed"] == payload.stat().st_size  # once: the 8 others from their peers
        assert stats["told_peers"] == 8 and stats["asked_again"] == 0
        sums = await controller.exec(["sha256sum", "relayed.bin"])
        assert sums.status == 0 and {r.stdout.split()[0] for r in sums.results.values()} == {sha.encode()}

        killed: list[str] = []
        serve = transfers.message

        def kill_the_parent(name: str, msg: Any) -> None:
            serve(name, msg)
            if msg.type == "copy.fetch" and not killed and controller.mesh.transfers.copies:
                (job,) = controller.mesh.transfers.copies.values()
                assert job.plan is not None
                parents = job.plan.ancestors(name)
                if parents:  # ``name`` was just told to fetch from its parent: the parent's agent dies
                    agent = controller.mesh.launcher.agent(parents[0])
                    killed.append(parents[0])
                    os.kill(agent.pid, signal.SIGKILL)

        transfers.message = kill_the_parent  # type: ignore[method-assign]
        payload.write_bytes(os.urandom(6 * 1024 * 1024))  # a new file: every cache misses
        sha = hashlib.sha256(payload.read_bytes()).hexdigest()
        second = await asyncio.wait_for(controller.copy(str(payload), "relayed.bin", timeout=60), 90)
        (parent,) = killed
        ok = {name for name, outcome in second.results.items() if outcome.ok}
        assert ok == {h.name for h in hosts} - {parent}, second.reasons
        assert parent in second.unreachable
        assert transfers.statistics()["asked_again"] >= 1  # its children: the rest from the controller
        sums = await controller.exec(["sha256sum", "relayed.bin"], hosts=sorted(ok))
        assert {r.stdout.split()[0] for r in sums.results.values()} == {sha.encode()}
    finally:
        await controller.quit()


SOFTWARE_SPEC = """<plush><project name="relayed-install">
  <software name="soft" type="tar">
    <package name="soft.tgz" type="local"><path>{tarball}</path></package>
  </software>
  <component name="all"><rspec><num_hosts>{n}</num_hosts></rspec><software name="soft"/></component>
  <application_block name="check"><execution><component_block name="all"><component name="all"/>
    <process_block name="check"><process name="check"><path>sh</path><cmdline>
      <arg>-c</arg><arg>echo "{sha}  soft/data.bin" | sha256sum -c &amp;&amp; ! ls -d .plush-unpack-* 2>/dev/null</arg>
    </cmdline></process></process_block>
  </component_block></execution></application_block>
</project></plush>
"""


@pytest.mark.parametrize("agents", ["connected", "started by the run"])
async def test_a_tar_software_installed_on_the_cluster_s_hosts_leaves_the_controller_once(
    cluster: Cluster, tmp_path: Path, agents: str
) -> None:
    """A run whose tar software is installed on the cluster's 9 hosts, whether their agents were connected
    before or the run starts them (a cold run: its mesh, CA and launcher start after the run's files are
    hashed): the package leaves the controller once (relay_fanout 2: the other hosts fetch it from each other,
    checked by sha256), and every host unpacks it (its process checks the unpacked file's sha256, and that no
    staging directory is left)."""
    hosts = parse_directory(cluster.directory.read_text(), file=str(cluster.directory))
    data = os.urandom(3 * 1024 * 1024)
    (tmp_path / "soft").mkdir()
    (tmp_path / "soft" / "data.bin").write_bytes(data)
    with tarfile.open(tmp_path / "soft.tgz", "w:gz") as tar:
        tar.add(tmp_path / "soft", "soft")
    spec = tmp_path / "spec.xml"
    sha = hashlib.sha256(data).hexdigest()
    spec.write_text(SOFTWARE_SPEC.format(tarball=tmp_path / "soft.tgz", n=len(hosts), sha=sha))
    controller = Controller(Settings(runs_dir=str(cluster.runs), ssh_config="", relay_fanout=2))
    try:
        if agents == "connected":
            await asyncio.wait_for(controller.connect(hosts), 60)
        controller.load(spec)
        sent = controller.subscribe(["file.sent"])
        result = await asyncio.wait_for(controller.run(pool=None if agents == "connected" else Pool(hosts)), 90)
        assert result.ok, result
        served = [e.host for e in sent.drain_nowait() if e.data["key"] == "pkg:soft/soft.tgz"]
        assert len(served) == 1, served  # once: the 8 others from their peers
    finally:
        await controller.quit()


def test_down_leaves_no_namespace_link_mount_or_process_and_again_does_nothing(cluster: Cluster) -> None:
    assert leftovers(cluster.name, cluster.state)  # the cluster is there
    done = cluster.cli("down", cluster.name)
    assert f"cluster {cluster.name} removed" in done.stderr
    assert leftovers(cluster.name, cluster.state) == []
    assert not (cluster.state / "plush" / "clusters" / f"{cluster.name}.json").exists()
    again = cluster.cli("down", cluster.name)
    assert f"no cluster {cluster.name} left" in again.stderr


def test_leftovers_of_a_crashed_up_are_refused_then_removed_by_down(tmp_path: Path) -> None:
    netns_or_skip()
    env = {"XDG_STATE_HOME": str(tmp_path / "state")}
    name = "t" + secrets.token_hex(2)
    subprocess.run(["ip", "netns", "add", f"plush-{name}-h1"], check=True)
    subprocess.run(["ip", "link", "add", f"pv-{name}-1", "type", "veth", "peer", "name", f"px-{name}-1"], check=True)
    try:
        refused = plush("cluster", "up", "2", "--name", name, "--subnet", _subnet(), env=env)
        assert refused.returncode == 2 and f"leftovers of a cluster {name}" in refused.stderr
        assert refused.stderr.count("plush: error: ") == 1
        done = plush("cluster", "down", name, env=env)
        assert done.returncode == 0, done.stderr
        assert leftovers(name, tmp_path / "state") == []
    finally:
        subprocess.run(["ip", "netns", "del", f"plush-{name}-h1"], capture_output=True, check=False)
        subprocess.run(["ip", "link", "del", f"pv-{name}-1"], capture_output=True, check=False)


NETNS_SPEC = """\
project: leased
components:
  workers:
    hosts: 3
    resources: [netns]
application:
  execution:
    workers:
      blocks:
        - process: where
          run: [sh, -c, 'echo $(hostname) $(stat -f -c %T /tmp ~) > "$PLUSH_RUN_DIR/$PLUSH_HOST.where"']
"""


async def test_a_spec_s_netns_resource_makes_hosts_for_the_run_and_its_end_removes_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``<resource type="netns">`` with no pool: a cluster is made for the run (each host its own namespace,
    hostname and tmpfs), the run succeeds on it, and the run's end leaves nothing of it behind."""
    netns_or_skip()
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    spec = tmp_path / "leased.yaml"
    spec.write_text(NETNS_SPEC)
    controller = Controller(Settings(runs_dir=str(tmp_path / "runs"), ssh_config=""))
    controller.load(spec)
    notices: list[str] = []
    try:
        result = await asyncio.wait_for(controller.run(on_notice=notices.append), 120)
    finally:
        await controller.quit()
    assert result.ok, result
    (cluster,) = [n.split()[-1] for n in notices if "hosts made for this run: cluster" in n]
    made = sorted(p.stem for p in (result.rundir.shared).glob("*.where"))
    assert made == [f"{cluster}-h{k}" for k in (1, 2, 3)]
    assert all((result.rundir.shared / f"{h}.where").read_text().split() == [h, "tmpfs", "tmpfs"] for h in made)
    assert leftovers(cluster, tmp_path / "state") == []
    assert not (tmp_path / "state" / "plush" / "clusters" / f"{cluster}.json").exists()


def test_the_cluster_of_a_run_that_died_goes_with_the_next_down(tmp_path: Path) -> None:
    """A run's cluster whose owner died without removing it (a crash) is removed by ``plush cluster down``."""
    netns_or_skip()
    env = {"XDG_STATE_HOME": str(tmp_path / "state")}
    make = "from plush.cluster.lease import lease_up; print(lease_up(1, purpose='a run that crashes').plan.name)"
    made = subprocess.run(
        [sys.executable, "-c", make], env={**os.environ, **env}, capture_output=True, text=True, timeout=60, check=False
    )
    assert made.returncode == 0, made.stderr
    name = made.stdout.strip()
    try:
        assert leftovers(name, tmp_path / "state")
        done = plush("cluster", "down", env=env)
        assert done.returncode == 0, done.stderr
        assert f"cluster {name} removed (its run ended without removing it)" in done.stderr
        assert leftovers(name, tmp_path / "state") == []
    finally:
        plush("cluster", "down", name, env=env)


def test_plush_create_resources_against_a_running_controller_and_its_next_run_ends_the_lease(tmp_path: Path) -> None:
    """``plush create-resources`` makes the loaded spec's netns hosts and connects them; ``plush run`` runs on
    them; its end removes them (``plush info nodes`` lists none, no namespace is left)."""
    netns_or_skip()
    from integration_support import RUN_TIMEOUT, cli_env, wait_until

    env = cli_env(XDG_STATE_HOME=str(tmp_path / "state"))
    (tmp_path / "leased.yaml").write_text(NETNS_SPEC)

    def ok(*args: str) -> subprocess.CompletedProcess[str]:
        argv = [sys.executable, "-m", "plush", *args]
        done = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False)
        assert done.returncode == 0, f"plush {' '.join(args)}: {done.stderr}"
        return done

    with open(tmp_path / "serve.err", "w") as err:
        serve = subprocess.Popen(
            [sys.executable, "-m", "plush", "serve", "--runs-dir", str(tmp_path / "runs")],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=err,
            start_new_session=True,
        )
    try:
        wait_until(lambda: "plush: serving" in (tmp_path / "serve.err").read_text(), RUN_TIMEOUT, "serve", proc=serve)
        ok("load", "leased.yaml")
        said = ok("create-resources").stderr
        cluster = re.search(r"\(cluster (l[a-z0-9]{5}),", said)
        assert cluster is not None, said
        name = cluster.group(1)
        assert f"plush: connected {name}-h[1-3]" in said
        nodes = json.loads(ok("info", "nodes", "--json").stdout)
        assert {(n["name"], n["state"]) for n in nodes} == {(f"{name}-h{k}", "joined") for k in (1, 2, 3)}
        ok("run")
        assert sorted(p.name for p in (tmp_path / "runs").glob("*/shared/*.where")) == [
            f"{name}-h{k}.where" for k in (1, 2, 3)
        ]
        assert json.loads(ok("info", "nodes", "--json").stdout) == []
        assert leftovers(name, tmp_path / "state") == []
        ok("quit")
        assert serve.wait(timeout=RUN_TIMEOUT) == 0
    finally:
        if serve.poll() is None:
            os.killpg(serve.pid, 9)
            serve.wait()
