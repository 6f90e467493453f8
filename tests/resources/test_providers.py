"""Providers fill a pool and may be asked again: the local sandbox, pool files re-read, discovery commands
re-run as real processes (failures, deadlines, floods and cancellation included, and nothing they start
outlives them)."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest

from plush.resources import providers
from plush.resources.host import Host, Pool
from plush.resources.poolentry import PoolFileError
from plush.resources.providers import DiscoveryCommand, DiscoveryError, LocalSandbox, PoolFile, Provider, fill_pool
from plush.resources.sandbox import local_properties

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
DEADLINE = 60.0


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    with open(f"/proc/{pid}/stat") as fh:  # a zombie is gone too (its parent has not reaped it yet)
        return fh.read().rsplit(")", 1)[1].split()[0] == "Z"


async def wait_for(condition: object, what: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + DEADLINE
    while not condition():  # type: ignore[operator]
        assert loop.time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


async def test_local_sandbox_is_n_hosts_with_this_machines_properties() -> None:
    sandbox = LocalSandbox(3)
    assert (sandbox.name, sandbox.kind) == ("local sandbox", "local")
    hosts = await sandbox.hosts()
    assert [h.name for h in hosts] == ["local-1", "local-2", "local-3"]
    assert all(h.provider == "local" and h.address == "127.0.0.1" for h in hosts)
    assert dict(hosts[0].properties) == local_properties()
    assert await LocalSandbox(0).hosts() == []
    with pytest.raises(ValueError):
        LocalSandbox(-1)


async def test_a_pool_file_is_read_again_on_refresh_whatever_its_kind(tmp_path: Path) -> None:
    path = tmp_path / "pool"
    path.write_text('<plush><resource_manager type="local"><node hostname="a" vn="1"/></resource_manager></plush>')
    provider = PoolFile(path)
    assert (provider.name, provider.kind) == (str(path), "directory")
    assert await provider.hosts() == [Host("a", "127.0.0.1", properties={"vn": 1.0})]
    path.write_text("defaults: {type: local}\nhosts: [a, b]\n")
    assert [h.name for h in await provider.hosts()] == ["a", "b"]
    assert provider.kind == "inventory"
    path.write_text("hosts: [a]\n")
    with pytest.raises(PoolFileError, match="no type"):
        await provider.hosts()


def test_a_pool_file_provider_refuses_what_is_not_one_at_once(tmp_path: Path) -> None:
    with pytest.raises(PoolFileError, match="not a pool file"):
        PoolFile(EXAMPLES / "tarball.yaml")
    with pytest.raises(PoolFileError, match="cannot read the pool file"):
        PoolFile(tmp_path / "missing.xml")
    assert PoolFile(EXAMPLES / "pools" / "hosts.json").kind == "json"


async def test_the_example_discovery_command() -> None:
    provider = DiscoveryCommand([sys.executable, str(EXAMPLES / "pools" / "discover.py"), "4"])
    assert provider.kind == "command" and "discover.py 4" in provider.name
    hosts = await provider.hosts()
    assert [h.name for h in hosts] == ["found1", "found2", "found3", "found4"]
    assert hosts[3].get("vn") == 4.0 and isinstance(hosts[0].get("cpu_load"), float)


async def test_a_discovery_command_runs_again_on_refresh(tmp_path: Path) -> None:
    script = (
        "n=$(cat count 2>/dev/null || echo 0); n=$((n+1)); echo $n > count; "
        'printf \'[{"hostname": "h[1-%s]", "type": "local"}]\' $n'
    )
    provider = DiscoveryCommand(["sh", "-c", script], cwd=tmp_path)
    assert [h.name for h in await provider.hosts()] == ["h1"]
    assert [h.name for h in await provider.hosts()] == ["h1", "h2"]


async def test_discovery_failures_name_the_command() -> None:
    with pytest.raises(DiscoveryError) as exc:
        await DiscoveryCommand(["sh", "-c", "echo first >&2; echo no hosts today >&2; exit 3"]).hosts()
    assert exc.value.exit_status == 3 and exc.value.exit_code == 2
    assert str(exc.value) == (
        "discovery command sh -c 'echo first >&2; echo no hosts today >&2; exit 3': exited with status 3\n"
        "first\nno hosts today"
    )
    with pytest.raises(DiscoveryError, match="was killed by signal 9"):
        await DiscoveryCommand(["sh", "-c", "kill -9 $$"]).hosts()
    with pytest.raises(DiscoveryError, match="cannot start it: No such file or directory"):
        await DiscoveryCommand(["/nonexistent/discover"]).hosts()
    with pytest.raises(TypeError, match="argv list"):
        DiscoveryCommand("discover --all")  # type: ignore[arg-type]


async def test_discovery_output_that_is_not_a_host_list_is_a_problem_at_its_line() -> None:
    with pytest.raises(PoolFileError) as exc:
        await DiscoveryCommand(["printf", '[\\n {"hostname": "a", "type": "local"},\\n {"hostname": 7']).hosts()
    assert [str(p) for p in exc.value.problems] == [
        'printf \'[\\n {"hostname": "a", "type": "local"},\\n {"hostname": 7\' (output):3:16: '
        "malformed JSON: expected ',' or '}'"
    ]
    with pytest.raises(PoolFileError, match=r"\(output\):1: the output is not UTF-8"):
        await DiscoveryCommand(["printf", "\\377"]).hosts()
    assert await DiscoveryCommand(["echo", "[]"]).hosts() == []  # no host found now: not an error


async def test_a_discovery_command_past_its_deadline_is_killed_with_its_children(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    script = f"sleep 600 & echo $$ $! > {pids}.tmp; mv {pids}.tmp {pids}; wait"
    with pytest.raises(DiscoveryError, match=r"did not finish within 0\.5s"):
        await DiscoveryCommand(["sh", "-c", script], timeout=0.5).hosts()
    if pids.exists():  # (under heavy load the deadline may pass before the script wrote them)
        for pid in map(int, pids.read_text().split()):
            await wait_for(lambda pid=pid: gone(pid), f"process {pid} to be killed")


async def test_a_cancelled_discovery_kills_the_command_and_its_children(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    script = f"sleep 600 & echo $$ $! > {pids}.tmp; mv {pids}.tmp {pids}; wait"
    task = asyncio.create_task(DiscoveryCommand(["sh", "-c", script], timeout=DEADLINE).hosts())
    await wait_for(pids.exists, "the command to start")
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    for pid in map(int, pids.read_text().split()):
        await wait_for(lambda pid=pid: gone(pid), f"process {pid} to be killed")


async def test_a_discovery_command_that_floods_its_output_is_stopped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(providers, "MAX_DISCOVERY_OUTPUT", 100_000)
    with pytest.raises(DiscoveryError, match="printed more than 100000 bytes"):
        await DiscoveryCommand(["yes"], timeout=DEADLINE).hosts()


async def test_fill_pool_asks_every_provider_the_later_one_wins(tmp_path: Path) -> None:
    path = tmp_path / "pool.json"
    path.write_text('[{"hostname": "local-2", "type": "local", "site": "x"}, {"hostname": "w", "type": "local"}]')
    sources: list[Provider] = [LocalSandbox(2, properties={"cpus": 2.0}), PoolFile(path)]
    pool = await fill_pool(sources)
    assert pool.names() == ["local-1", "local-2", "w"]
    assert pool.get("local-2") == Host("local-2", "127.0.0.1", properties={"site": "x"})
    existing = Pool([Host("old", "10.0.0.9", "ssh")])
    assert (await fill_pool([LocalSandbox(1)], existing)).names() == ["old", "local-1"]


def test_a_long_command_name_keeps_its_program_and_its_arguments() -> None:
    deep = "/" + "/".join(["d" * 20] * 10) + "/python3"
    name = DiscoveryCommand([deep, "/" + "x" * 60 + "/discover.py", "4"]).name
    assert len(name) <= 80 and name.startswith("/dddd") and name.endswith("/discover.py 4")
