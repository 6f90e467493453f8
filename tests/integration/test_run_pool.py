"""``plush run SPEC -d POOLFILE``: the matcher chooses each component's hosts from a pool file; ``type="local"``
hosts run here under the pool's names, and every host property reaches the processes on that host.

A pool too small for a component refuses the run before anything starts (exit 2, the matcher's message,
no run directory, no agent). ``--discover COMMAND`` fills the pool with what a discovery command prints;
``--seed N`` gives the matching ``plush plan --seed N`` shows; a failed host's replacement is the spare the
matcher prefers with the live samples of now."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from chaos_support import Watch, run_chaos
from integration_support import cli_env, events, only_run, run_cli, write_spec

from plush.resources.host import Pool
from plush.resources.matcher import LiveSample
from plush.resources.poolfile import read_pool

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

PROPS = """
project: props
components:
  nodes:
    hosts: 1..10
application:
  execution:
    nodes:
      blocks:
        - {process: show, run: [sh, -c, 'echo "$PLUSH_HOST vip=$PLUSH_VIP vn=$PLUSH_VN site=$PLUSH_PROP_SITE"']}
"""

#: a directory file of type="local" hosts with properties, two groups the spec does not name
DIRECTORY = """<?xml version="1.0"?>
<plush>
  <resource_manager type="local">
    <node hostname="node[1-3]" group="west" site="ucsd" cpu_mhz="2400"/>
    <node hostname="node[4-6]" group="east" site="mit" cpu_mhz="3000"/>
  </resource_manager>
</plush>
"""


def test_every_host_property_reaches_the_processes_of_its_host(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, PROPS)
    proc = run_cli(spec, tmp_path / "runs", "-q", "-d", str(EXAMPLES / "pools" / "local.xml"))
    assert proc.returncode == 0, proc.stderr
    assert "plush: notice:" not in proc.stderr  # no sandbox stand-in: these are the pool's hosts
    root = only_run(tmp_path / "runs")
    logs = {p.parent.parent.name: p.read_text() for p in root.glob("hosts/*/logs/nodes.show.show.1.stdout")}
    assert logs == {
        "ucsd1": "ucsd1 vip=10.0.0.1 vn=1 site=ucsd\n",
        "ucsd2": "ucsd2 vip=10.0.0.2 vn=2 site=ucsd\n",
        "mit1": "mit1 vip=10.0.0.3 vn=3 site=mit\n",
        "mit2": "mit2 vip=10.0.0.4 vn=4 site=mit\n",
        "epfl1": "epfl1 vip=10.0.0.5 vn=5 site=epfl\n",
        "epfl2": "epfl2 vip=10.0.0.6 vn=6 site=epfl\n",
    }


def test_filedist_runs_on_the_hosts_of_a_directory_file(tmp_path: Path) -> None:
    pool = tmp_path / "lab.xml"
    pool.write_text(DIRECTORY)
    proc = run_cli(EXAMPLES / "filedist.yaml", tmp_path / "runs", "-q", "-d", str(pool))
    assert proc.returncode == 0, proc.stderr
    finished = events(only_run(tmp_path / "runs"), "run.finished")
    assert finished and finished[-1].data["ok"], finished
    hosts = {p.name for p in (only_run(tmp_path / "runs") / "hosts").iterdir()}
    assert hosts == {"node1", "node2", "node3", "node4", "node5"}  # 2 + 3 hosts, in pool order


def test_the_pool_setting_from_the_environment_is_a_run_s_pool(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, PROPS.replace("1..10", "2"))
    env = cli_env(PLUSH_POOL=str(EXAMPLES / "pools" / "local.xml"))
    proc = run_cli(spec, tmp_path / "runs", "-q", env=env)
    assert proc.returncode == 0, proc.stderr
    assert {p.name for p in (only_run(tmp_path / "runs") / "hosts").iterdir()} == {"ucsd1", "ucsd2"}


def test_a_component_the_pool_cannot_serve_does_not_start(tmp_path: Path) -> None:
    pool = tmp_path / "nine.yaml"
    pool.write_text("defaults: {type: local}\nhosts:\n  - n[1-9]\n")
    spec = write_spec(tmp_path, PROPS.replace("1..10", "10..800"))
    runs = tmp_path / "runs"
    proc = run_cli(spec, runs, "-d", str(pool))
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.splitlines()[-1].startswith("plush: error: nodes: need 10, 9 candidates"), proc.stderr
    assert "Traceback" not in proc.stderr
    assert not runs.exists() or not any(runs.iterdir())  # no run directory, so no agent was started


def test_a_file_that_is_not_a_pool_is_refused_before_anything_starts(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, PROPS)
    proc = run_cli(spec, tmp_path / "runs", "-d", str(spec))
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("plush: error: "), proc.stderr
    assert not (tmp_path / "runs").exists()


WAITING = """\
project: spare
components:
  w:
    hosts: 2
application:
  execution:
    w:
      blocks:
        - process: work
          run: [sh, -c, 'while [ ! -e "$PLUSH_RUN_DIR/release" ]; do sleep 0.05; done; echo "$PLUSH_HOST $PLUSH_VIP"']
"""


async def test_a_failed_pool_host_is_replaced_by_the_next_spare_of_the_matching(tmp_path: Path) -> None:
    _, hosts = read_pool(EXAMPLES / "pools" / "local.xml")

    async def script(w: Watch) -> None:
        await w.each("process.started", {"ucsd1", "ucsd2"}, instance=1)
        os.kill(w.engine.agent_pid("ucsd1"), signal.SIGKILL)
        rematched = await w.event("host.rematched", host="ucsd1")
        assert rematched.data["replacement"] == "mit1"  # the first spare, in pool order
        await w.event("process.started", host="mit1", instance=1)
        (Path(w.engine.rundir.shared) / "release").touch()

    result = await run_chaos(WAITING, tmp_path, script, pool=Pool(hosts), host_restarts=0)
    assert result.ok, result.outcome
    logs = {p.parent.parent.name: p.read_text() for p in result.rundir.root.glob("hosts/*/logs/w.work.work.1.stdout")}
    assert logs["ucsd2"] == "ucsd2 10.0.0.2\n" and logs["mit1"] == "mit1 10.0.0.3\n"


async def test_a_spare_over_the_live_limits_is_not_the_replacement(tmp_path: Path) -> None:
    _, hosts = read_pool(EXAMPLES / "pools" / "local.xml")
    spec = WAITING.replace("    hosts: 2\n", "    hosts: 2\n    max_load: 1000\n")

    async def script(w: Watch) -> None:
        # the seam: the controller's table of live samples (on one machine every monitor reads the same load)
        w.controller.samples["mit1"] = LiveSample(load=5000.0)
        await w.each("process.started", {"ucsd1", "ucsd2"}, instance=1)
        os.kill(w.engine.agent_pid("ucsd1"), signal.SIGKILL)
        rematched = await w.event("host.rematched", host="ucsd1")
        assert rematched.data["replacement"] == "mit2"  # mit1, the first spare, is over max_load now
        await w.event("process.started", host="mit2", instance=1)
        (Path(w.engine.rundir.shared) / "release").touch()

    result = await run_chaos(spec, tmp_path, script, pool=Pool(hosts), host_restarts=0)
    assert result.ok, result.outcome
    assert not (result.rundir.root / "hosts" / "mit1").exists()  # never started


#: every process says which component it serves on which host
WHO = """
project: who
components:
  a:
    hosts: 2
  b:
    hosts: 1..2
application:
  execution:
    a:
      blocks:
        - {process: who, run: [sh, -c, 'echo "$PLUSH_COMPONENT $PLUSH_HOST"']}
    b:
      blocks:
        - {process: who, run: [sh, -c, 'echo "$PLUSH_COMPONENT $PLUSH_HOST"']}
"""


def _plan(spec: Path, *args: str) -> dict[str, list[str]]:
    argv = [sys.executable, "-m", "plush", "plan", str(spec), "--json", *args]
    proc = subprocess.run(argv, env=cli_env(), capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    return {c: sorted(v["hosts"]) for c, v in json.loads(proc.stdout)["components"].items()}


def _ran(runs: Path) -> dict[str, list[str]]:
    """The hosts each component's processes ran on, as they printed them."""
    seen: dict[str, list[str]] = {}
    for log in only_run(runs).glob("hosts/*/logs/*.who.who.1.stdout"):
        component, host = log.read_text().split()
        seen.setdefault(component, []).append(host)
    return {c: sorted(h) for c, h in seen.items()}


def test_run_with_a_seed_uses_the_matching_plan_shows_with_that_seed(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, WHO)
    pool = str(EXAMPLES / "pools" / "local.xml")
    planned = _plan(spec, "-d", pool, "--seed", "7")
    assert planned != _plan(spec, "-d", pool)  # the seed changes the matching
    proc = run_cli(spec, tmp_path / "runs", "-q", "-d", pool, "--seed", "7")
    assert proc.returncode == 0, proc.stderr
    assert _ran(tmp_path / "runs") == planned


def test_the_seed_setting_on_the_sandbox_gives_the_hosts_plan_shows(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, WHO)
    planned = _plan(spec, "--seed", "3")
    assert planned != _plan(spec)  # on the sandbox a seed permutes the local-K names among components
    proc = run_cli(spec, tmp_path / "runs", "-q", env=cli_env(PLUSH_SEED="3"))
    assert proc.returncode == 0, proc.stderr
    assert _ran(tmp_path / "runs") == planned


def test_a_discovery_command_fills_the_pool_of_a_run(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, PROPS)
    command = f"{sys.executable} {EXAMPLES / 'pools' / 'discover.py'} 3"
    proc = run_cli(spec, tmp_path / "runs", "-q", "--discover", command)
    assert proc.returncode == 0, proc.stderr
    root = only_run(tmp_path / "runs")
    logs = {p.parent.parent.name: p.read_text() for p in root.glob("hosts/*/logs/nodes.show.show.1.stdout")}
    assert logs == {f"found{k}": f"found{k} vip= vn={k} site=here\n" for k in (1, 2, 3)}


def test_a_failing_discovery_command_is_one_error_line_and_starts_nothing(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, PROPS)
    runs = tmp_path / "runs"
    proc = run_cli(spec, runs, "--discover", "sh -c 'echo no monitor here >&2; exit 3'")
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.splitlines()
    assert lines[0] == "plush: error: discovery command sh -c 'echo no monitor here >&2; exit 3': exited with status 3"
    assert lines[1:] == ["  no monitor here"] and "Traceback" not in proc.stderr
    assert not runs.exists() or not any(runs.iterdir())
