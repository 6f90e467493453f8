"""``plush serve`` and the commands that talk to a controller, as real processes (issue 11).

A ``plush serve`` subprocess connects its hosts; other ``plush`` subprocesses, started in the same directory,
find it (the only controller started there), load a spec, run it twice on the same agents (the agent pids of
``plush info nodes --json`` do not change), run it detached, read ``plush info control --json`` and quit it.
A batch ``plush run SPEC`` of a service answers ``plush info`` and ends STOPPED, exit 0, on ``plush quit``.
Without a controller, or with several, a client says so in one line with its documented exit status.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from integration_support import RUN_TIMEOUT, cli_env, pid_alive, wait_until, write_spec

from plush.api.runtime import Registration, live_controllers

TWICE = """\
project: twice
components:
  workers:
    hosts: {min: 1, max: 3}
application:
  execution:
    workers:
      blocks:
        - process: note
          run: [sh, -c, 'echo "$PLUSH_RUN_ID" >> runs.txt; echo "runs here: $(wc -l < runs.txt)"']
"""

SERVICE = """\
project: svc
components:
  workers:
    hosts: 2
application:
  service: true
  execution:
    workers:
      blocks:
        - process: loop
          run: [sh, -c, 'echo up; exec sleep 600']
"""


def plush(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "plush", *args],
        cwd=cwd,
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        check=False,
    )


def ok(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    done = plush(cwd, *args)
    assert done.returncode == 0, f"plush {' '.join(args)}: exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done


def start(cwd: Path, *args: str) -> subprocess.Popen[str]:
    """A long-lived plush in its own session, stdout and stderr to ``cwd/COMMAND.out|err`` (read while it runs)."""
    with open(cwd / f"{args[0]}.out", "w") as out, open(cwd / f"{args[0]}.err", "w") as err:
        return subprocess.Popen(
            [sys.executable, "-m", "plush", *args],
            cwd=cwd,
            env=cli_env(),
            stdout=out,
            stderr=err,
            text=True,
            start_new_session=True,
        )


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def test_serve_load_run_twice_on_the_same_agents_info_and_quit(
    tmp_path: Path, processes: list[subprocess.Popen[str]]
) -> None:
    write_spec(tmp_path, TWICE)
    serve = start(tmp_path, "serve", "--hosts", "3", "--runs-dir", str(tmp_path / "runs"))
    processes.append(serve)
    err = tmp_path / "serve.err"
    serving = re.compile(r"plush: serving (\S+): 3 hosts connected")
    line = wait_until(lambda: serving.search(err.read_text()), RUN_TIMEOUT, "serving", proc=serve)
    name = line.group(1)
    assert name == tmp_path.name  # the default name: the directory's

    assert "plush: loaded twice from" in ok(tmp_path, "load", "spec.yaml").stderr
    agents = {n["name"]: n["agent_pid"] for n in json.loads(ok(tmp_path, "info", "nodes", "--json").stdout)}
    assert sorted(agents) == ["local-1", "local-2", "local-3"] and all(isinstance(p, int) for p in agents.values())

    for k in (1, 2):
        done = ok(tmp_path, "run")
        assert sorted(done.stdout.splitlines()) == [
            f"[local-{h} /twice/workers/note/note] runs here: {k}" for h in (1, 2, 3)
        ], done.stdout
        assert re.search(r"plush: run \S+ completed in", done.stderr.splitlines()[-1])
    nodes = json.loads(ok(tmp_path, "info", "nodes", "--json").stdout)
    assert {n["name"]: n["agent_pid"] for n in nodes} == agents  # the same agents: none started by a run
    assert "local-2  joined" in ok(tmp_path, "info", "nodes").stdout

    run_id = ok(tmp_path, "run", "--detach", "--controller", name).stdout.strip()
    assert re.fullmatch(r"\d{8}-\d{6}-\d+", run_id)
    control = wait_until(
        lambda: (c := json.loads(ok(tmp_path, "info", "control", "--json").stdout))["running"] is False and c,
        RUN_TIMEOUT,
        "the detached run's end",
    )
    assert (control["application"], control["runs"], control["run"]) == ("twice", 3, run_id)
    assert control["settings"]["runs_dir"] == str(tmp_path / "runs")

    assert ok(tmp_path, "quit").stderr == f"plush: {name} quit\n"
    assert serve.wait(timeout=RUN_TIMEOUT) == 0
    assert f"plush: {name} quit (stopped by plush quit)" in err.read_text()
    assert not any(pid_alive(pid) for pid in agents.values())
    assert live_controllers() == [] and list((Path(os.environ["XDG_RUNTIME_DIR"]) / "plush").iterdir()) == []


def test_quit_against_a_batch_run_of_a_service_stops_it_and_it_exits_0(
    tmp_path: Path, processes: list[subprocess.Popen[str]]
) -> None:
    write_spec(tmp_path, SERVICE)
    batch = start(tmp_path, "run", "spec.yaml", "--runs-dir", str(tmp_path / "runs"), "--name", "svc")
    processes.append(batch)

    def running() -> int:
        done = plush(tmp_path, "info", "app", "--json")  # exit 5 until the run has taken its name
        return json.loads(done.stdout).get("run", {}).get("states", {}).get("running") if done.returncode == 0 else 0

    wait_until(
        lambda: running() == 2,
        RUN_TIMEOUT,
        "both hosts running",
        proc=batch,
    )
    nodes = json.loads(ok(tmp_path, "info", "nodes", "--json").stdout)
    assert sorted(n["name"] for n in nodes) == ["local-1", "local-2"]
    refused = plush(tmp_path, "load", "spec.yaml")
    assert (refused.returncode, refused.stderr.count("plush: error: ")) == (2, 1)
    assert "'load' is not served by a batch run" in refused.stderr

    assert ok(tmp_path, "quit").stderr == "plush: svc quit\n"
    assert batch.wait(timeout=RUN_TIMEOUT) == 0
    last = (tmp_path / "run.err").read_text().splitlines()[-1]
    assert re.fullmatch(r"plush: run \S+ STOPPED after [\d.]+s: stopped by plush quit", last), last
    (root,) = (tmp_path / "runs").iterdir()
    assert json.loads((root / "report.json").read_text())["outcome"] == "stopped"


def test_without_a_controller_or_with_several_a_client_says_which_and_how_to_choose(tmp_path: Path) -> None:
    none = plush(tmp_path, "info", "nodes")
    assert none.returncode == 5 and none.stderr.count("\n") == 1
    assert none.stderr.startswith(f"plush: error: no controller was started in {tmp_path}")
    held = [Registration.take(None, kind="serve", cwd=str(tmp_path)) for _ in range(2)]
    try:
        several = plush(tmp_path, "quit")
        assert several.returncode == 6 and several.stderr.count("\n") == 1
        assert f"{tmp_path.name}, {tmp_path.name}-2; choose one with --controller NAME" in several.stderr
        mute = plush(tmp_path, "abort", "--controller", held[0].name)  # its entry is live, its socket is not
        assert mute.returncode == 5 and "does not answer" in mute.stderr and mute.stderr.count("\n") == 1
    finally:
        for registration in held:
            registration.release()


def test_a_run_on_a_controller_stops_on_ctrl_c_and_abort_fails_the_next(
    tmp_path: Path, processes: list[subprocess.Popen[str]]
) -> None:
    """The client ``plush run``: Ctrl-C stops the run on the controller (STOPPED, 130, as a batch run); ``plush
    abort`` from another terminal fails it (exit 1); the controller serves on."""
    write_spec(tmp_path, SERVICE)
    serve = start(tmp_path, "serve", "--hosts", "2", "--runs-dir", str(tmp_path / "runs"), "--name", "s")
    processes.append(serve)
    wait_until(lambda: "2 hosts connected" in (tmp_path / "serve.err").read_text(), RUN_TIMEOUT, "serving", proc=serve)
    ok(tmp_path, "load", "spec.yaml")

    def running() -> bool:
        app = json.loads(ok(tmp_path, "info", "app", "--json").stdout)
        return bool(app.get("run", {}).get("states", {}).get("running") == 2 and not app["run"]["finished"])

    for how, status, last in (
        ("ctrl-c", 130, r"STOPPED after [\d.]+s: stopped by request \(SIGINT\)"),
        ("abort", 1, r"FAILED: aborted by the user \(plush abort\)"),
    ):
        client = start(tmp_path, "run")
        processes.append(client)
        wait_until(running, RUN_TIMEOUT, "the run's hosts running", proc=client)
        if how == "ctrl-c":
            client.send_signal(signal.SIGINT)
        else:
            ok(tmp_path, "abort")
        assert client.wait(timeout=RUN_TIMEOUT) == status
        err = (tmp_path / "run.err").read_text()
        assert "[local-1 /svc/workers/loop/loop] up" in (tmp_path / "run.out").read_text()
        assert re.search(r"plush: run \S+ " + last, err.splitlines()[-1 if how == "ctrl-c" else -2]), err
    ok(tmp_path, "quit")
    assert serve.wait(timeout=RUN_TIMEOUT) == 0
