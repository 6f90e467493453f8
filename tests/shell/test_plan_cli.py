"""``plush plan``: the matching, spares, DAG order and installs of a spec, in-process; it starts nothing."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

import plush.shell.commands  # noqa: F401  (registers the subcommands)
from plush.shell.cli import cli
from plush.spec import dag
from plush.spec.load import load_spec

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


def plan_json(*args: str) -> dict:
    result = invoke("plan", "--json", *args)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def write(tmp_path: Path, text: str, name: str = "spec.yaml") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


TWO = """\
project: p
components:
  senders: {{hosts: {senders}{require}}}
  receivers: {{hosts: {receivers}}}
application:
  execution:
    senders:
      blocks:
        - process: a
          run: ["true"]
        - process: b
          run: ["true"]
          after: [a]
    receivers:
      blocks:
        - process: c
          run: ["true"]
"""


def two(senders: str = "2", receivers: str = "3", require: str = "") -> str:
    return TWO.format(senders=senders, receivers=receivers, require=require)


def test_plan_names_hosts_as_the_run_does_and_shows_order_and_installs() -> None:
    result = invoke("plan", str(EXAMPLES / "filedist.yaml"))
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[:5] == [
        f"{EXAMPLES / 'filedist.yaml'}: valid",
        "plan on the local sandbox: 5 hosts, pool order; no host contacted",
        "components",
        "  senders  2 hosts (num_hosts 2): local-[1-2]  spares: none",
        "  receivers  3 hosts (num_hosts 3): local-[3-5]  spares: none",
    ]
    assert "  /filedist/senders  on senders (local-[1-2]): [prepare] → [bootstrap] → [serve] → [done]" in lines
    tarball = invoke("plan", str(EXAMPLES / "tarball.yaml"))
    assert "  hello  [tar]  files/hello.tar.gz  on local-[1-2]" in tarball.stdout.splitlines()


def test_plan_json_has_hosts_spares_order_and_installs() -> None:
    spec = EXAMPLES / "tarball.xml"
    data = plan_json(str(spec))
    assert data["components"] == {"workers": {"hosts": ["local-1", "local-2"], "spares": [], "software": ["hello"]}}
    assert data["installs"] == {"local-1": ["hello"], "local-2": ["hello"]}
    project = load_spec(spec)
    cb = project.application.component_blocks[0]
    assert data["order"] == {"/tarball/workers": {"component": "workers", "levels": dag.order(cb.blocks)}}
    assert data["pool"] == {"hosts": 2} and data["seed"] is None


def test_hosts_choose_the_counts_as_for_run(tmp_path: Path) -> None:
    spec = write(tmp_path, two(senders="1..4"))
    assert len(plan_json(spec)["components"]["senders"]["hosts"]) == 1  # the sandbox starts min
    data = plan_json("--hosts", "senders=4", spec)
    assert data["components"]["senders"]["hosts"] == ["local-1", "local-2", "local-3", "local-4"]
    assert data["components"]["receivers"]["hosts"] == ["local-5", "local-6", "local-7"]
    assert plan_json("--hosts", "3", spec)["pool"] == {"hosts": 6}


def test_a_seed_gives_the_same_plan_every_time(tmp_path: Path) -> None:
    spec = write(tmp_path, two(senders="3", receivers="3"))
    plans = [plan_json("--seed", str(seed), spec) for seed in (1, 1, 2, 3, 4)]
    assert plans[0] == plans[1] and plans[0]["seed"] == 1
    assert len({json.dumps(p["components"]) for p in plans}) > 1  # seeds permute the (identical) hosts


def test_no_matching_exits_2_with_the_matchers_message(tmp_path: Path) -> None:
    spec = write(tmp_path, two(require=', require: {mem_mb: ">=1000000000"}'))
    result = invoke("plan", spec)
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    assert result.stderr.startswith("plush: error: senders: need 2, 0 candidates: 5 hosts lack mem_mb>=1000000000 (")
    assert result.stderr.count("\n") == 1 and result.stdout == ""


def test_a_spec_that_run_refuses_plan_refuses_with_the_same_line(tmp_path: Path) -> None:
    spec = write(tmp_path, two())
    planned = invoke("plan", "--hosts", "senders=5", spec)
    checked = invoke("check", "--hosts", "senders=5", spec)
    assert planned.exit_code == checked.exit_code == 2
    problem = checked.stderr.splitlines()[0]
    assert planned.stderr == f"plush: error: {problem}\n"


def test_plan_says_which_components_name_other_resources(tmp_path: Path) -> None:
    spec = write(tmp_path, two().replace("{hosts: 3}", "{hosts: 3, resources: [{type: ssh, group: lab}]}"))
    result = invoke("plan", spec)
    assert result.exit_code == 0, result.output
    assert result.stderr == (
        "plush: notice: running on local sandbox hosts instead of the resources the spec names: "
        "receivers on 3 hosts (spec: ssh:lab)\n"
    )
    assert "  receivers  3 hosts (num_hosts 3): local-[3-5]  spares: none" in result.stdout


@pytest.fixture
def nothing_started(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[str]:
    """Every way to start a process or reach a host raises (and is recorded); cwd is an empty directory."""
    calls: list[str] = []

    def refuse(name: str) -> Callable[..., None]:
        def refused(*args: object, **kwargs: object) -> None:
            calls.append(name)
            raise AssertionError(f"{name} called")

        return refused

    monkeypatch.setattr(subprocess.Popen, "__init__", refuse("subprocess.Popen"))
    monkeypatch.setattr(asyncio, "create_subprocess_exec", refuse("asyncio.create_subprocess_exec"))
    for name in ("fork", "forkpty", "posix_spawn", "posix_spawnp", "execv", "execve", "execvp", "system"):
        monkeypatch.setattr(os, name, refuse(f"os.{name}"))
    for name in ("connect", "connect_ex", "bind", "listen"):
        monkeypatch.setattr(socket.socket, name, refuse(f"socket.{name}"))
    monkeypatch.chdir(tmp_path)
    return calls


def test_plan_starts_no_process_and_contacts_no_host(nothing_started: list[str], tmp_path: Path) -> None:
    for example in ("filedist.yaml", "tarball.xml", "workflow.yaml"):
        result = invoke("plan", str(EXAMPLES / example))
        assert result.exit_code == 0 and result.exception is None, result.output
        assert invoke("plan", "--json", str(EXAMPLES / example)).exit_code == 0
    assert nothing_started == []
    assert list(tmp_path.iterdir()) == []  # no run directory either
    # the guard works: a run under it is stopped at its first attempt to listen or start an agent
    ran = invoke("run", "--runs-dir", str(tmp_path / "runs"), str(EXAMPLES / "tarball.xml"))
    assert ran.exit_code != 0 and nothing_started, ran.output


def test_plan_on_a_pool_file_names_its_hosts_by_group_and_contacts_none(
    nothing_started: list[str], tmp_path: Path
) -> None:
    pool = str(EXAMPLES / "pools" / "local.xml")
    result = invoke("plan", "-d", pool, str(EXAMPLES / "filedist.yaml"))
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[1:5] == [
        f"plan on {pool}: 6 hosts, pool order; no host contacted",
        "components",
        "  senders  2 hosts (num_hosts 2): ucsd[1-2]  spares: epfl2",
        "  receivers  3 hosts (num_hosts 3): epfl1,mit[1-2]  spares: epfl2",
    ]
    assert "plush: notice:" not in result.stderr  # the pool's hosts, not a sandbox stand-in
    grouped = write(tmp_path, two().replace("hosts: 2}", "hosts: 2, resources: [{type: local, group: lab}]}"))
    assert invoke("plan", "--json", "--pool", pool, grouped).exit_code == 0
    assert nothing_started == []
    assert [p.name for p in tmp_path.iterdir()] == ["spec.yaml"]  # no run directory either


def test_plan_on_a_pool_too_small_exits_2_with_the_matchers_message(tmp_path: Path) -> None:
    pool = tmp_path / "nine.yaml"
    pool.write_text("defaults: {type: local}\nhosts:\n  - n[1-9]\n")
    spec = write(tmp_path, two(senders="10..800"))
    result = invoke("plan", "-d", str(pool), spec)
    assert result.exit_code == 2
    assert result.stderr.splitlines()[-1].startswith("plush: error: senders: need 10, 9 candidates")
    env_pool = CliRunner(env={"PLUSH_POOL": str(pool)}).invoke(cli, ["plan", spec])
    assert env_pool.exit_code == 2 and "senders: need 10" in env_pool.stderr


DISCOVER = f"{sys.executable} {EXAMPLES / 'pools' / 'discover.py'}"


def test_plan_on_a_discovery_command_takes_the_hosts_it_prints(tmp_path: Path) -> None:
    filedist = str(EXAMPLES / "filedist.yaml")
    plan = plan_json("--discover", f"{DISCOVER} 5", filedist)
    assert plan["pool"] == {"hosts": 5}
    assert plan["components"]["senders"]["hosts"] == ["found1", "found2"]
    assert plan["components"]["receivers"]["hosts"] == ["found3", "found4", "found5"]
    both = plan_json("-d", str(EXAMPLES / "pools" / "local.xml"), "--discover", f"{DISCOVER} 2", filedist)
    assert both["pool"] == {"hosts": 8}  # the file's six hosts, then the command's two
    result = invoke("plan", "--discover", f"{DISCOVER} 5", "--seed", "1", filedist)
    assert result.exit_code == 0, result.output
    shown = _shown(f"{DISCOVER} 5")
    assert result.stdout.splitlines()[1] == f"plan on discovery command {shown}: 5 hosts, seed 1; no host contacted"


def test_a_discovery_command_that_fails_or_cannot_be_split_is_one_error_line() -> None:
    filedist = str(EXAMPLES / "filedist.yaml")
    result = invoke("plan", "--discover", "sh -c 'exit 3'", filedist)
    assert result.exit_code == 2
    assert result.stderr == "plush: error: discovery command sh -c 'exit 3': exited with status 3\n"
    result = invoke("plan", "--discover", "find.py 'unclosed", filedist)
    assert result.exit_code == 2
    assert result.stderr.startswith('plush: error: discovery command "find.py \'unclosed": cannot split it')
    result = invoke("plan", "--discover", "echo $HOME", filedist)  # no shell: echo prints '$HOME'
    assert result.exit_code == 2 and "(output):1:1:" in result.stderr


def test_the_seed_setting_is_plan_s_seed(monkeypatch: pytest.MonkeyPatch) -> None:
    pool = str(EXAMPLES / "pools" / "local.xml")
    filedist = str(EXAMPLES / "filedist.yaml")
    monkeypatch.setenv("PLUSH_SEED", "7")
    assert plan_json("-d", pool, filedist) == plan_json("-d", pool, "--seed", "7", filedist)
    assert plan_json("-d", pool, filedist)["seed"] == 7


def _shown(command: str) -> str:
    """How a discovery command is named in a report: a long one (a deep checkout's path) keeps both ends."""
    import shlex

    from plush.resources.providers import DiscoveryCommand

    return DiscoveryCommand(shlex.split(command), timeout=1).name
