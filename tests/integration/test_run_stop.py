"""How a run stops: ``stop_grace`` is honoured at every layer, and a stop on request is a normal end.

- ``stop_grace``: a process that traps SIGTERM and takes a few seconds to finish its work after it finishes
  cleanly (its own exit 0) when ``stop_grace`` leaves it the time, and is SIGKILLed when it does not;
- Ctrl-C (one SIGINT to ``plush run``) of a service, or of an application that has not completed: exit 130,
  the report says STOPPED (by request), not FAILED, and the outputs of the stopped blocks are collected;
- :meth:`Controller.stop` (the path of the terminal's and the API's ``quit``): the run ends STOPPED.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from pathlib import Path

from chaos_support import Watch, run_chaos
from integration_support import events, interrupt, kill_session, only_run, start_cli, wait_until, write_spec

#: after SIGTERM it says so, works for {work} s, writes "finished cleanly" and exits 0
TRAPPER = """\
project: trapper
components:
  w:
    hosts: 1
application:
  execution:
    w:
      blocks:
        - process: trap
          run:
            - {py}
            - -c
            - |
              import os, signal, sys, time
              shared = os.environ["PLUSH_RUN_DIR"]
              def on_term(sig, frame):
                  open(os.path.join(shared, "got-term"), "w").close()
                  time.sleep({work})
                  with open(os.path.join(shared, "finished"), "w") as f:
                      f.write("finished cleanly")
                  sys.exit(0)
              signal.signal(signal.SIGTERM, on_term)
              open(os.path.join(shared, "ready"), "w").close()
              while True:
                  time.sleep(1)
"""


async def _wait_file(path: Path, timeout: float = 60.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not path.exists():
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {path}")
        await asyncio.sleep(0.05)


async def _stop_once_ready(watch: Watch) -> None:
    await watch.event("process.started")
    await _wait_file(watch.engine.rundir.shared / "ready")
    watch.controller.abort("the test stops the run")


async def test_stop_grace_lets_a_process_that_traps_term_finish(tmp_path: Path) -> None:
    result = await run_chaos(TRAPPER.format(py=sys.executable, work=3), tmp_path, _stop_once_ready, stop_grace=60.0)
    shared = result.rundir.shared
    assert (shared / "got-term").exists()
    assert (shared / "finished").read_text() == "finished cleanly"
    [exited] = events(result.rundir.root, "process.exited")
    assert exited.data.get("code") == 0 and exited.data.get("signal") is None, exited.data


async def test_a_short_stop_grace_kills_a_process_that_traps_term(tmp_path: Path) -> None:
    result = await run_chaos(TRAPPER.format(py=sys.executable, work=60), tmp_path, _stop_once_ready, stop_grace=0.5)
    shared = result.rundir.shared
    assert (shared / "got-term").exists()
    assert not (shared / "finished").exists()
    [exited] = events(result.rundir.root, "process.exited")
    assert exited.data.get("signal") == signal.SIGKILL, exited.data


#: a service: each host's daemon writes a heartbeat file (an output) until it is stopped
SERVICE = """\
project: beats
components:
  servers:
    hosts: 2..4
application:
  service: true
  execution:
    servers:
      blocks:
        - process: daemon
          run:
            - sh
            - -c
            - |
              beat=0
              while true; do
                beat=$((beat+1))
                echo "$PLUSH_HOST heartbeat $beat" >> heartbeat.log
                [ $beat -eq 2 ] && touch "$PLUSH_RUN_DIR/beating-$PLUSH_HOST"
                sleep 0.2
              done
          outputs: [heartbeat.log]
"""

#: not a service: a first block writes a result and then waits (forever) for something that never comes
PLAIN = """\
project: plain
components:
  w:
    hosts: 1
application:
  execution:
    w:
      blocks:
        - process: work
          run:
            - sh
            - -c
            - |
              echo partial result > result.txt
              touch "$PLUSH_RUN_DIR/working-$PLUSH_HOST"
              exec sleep 1000
          outputs: [result.txt]
        - process: after
          after: [work]
          run: [sh, -c, 'echo never']
"""


def _ctrl_c_when(tmp_path: Path, spec_text: str, markers: list[str]) -> tuple[int, str, Path]:
    runs = tmp_path / "runs"
    proc = start_cli(write_spec(tmp_path, spec_text), runs, "-q")
    try:
        root = wait_until(lambda: runs.is_dir() and next(runs.iterdir(), None), 60, "the run directory", proc=proc)
        wait_until(lambda: all((root / "shared" / m).exists() for m in markers), 90, f"{markers}", proc=proc)
        code, _, err = interrupt(proc)
    finally:
        kill_session(proc)
    return code, err, only_run(runs)


def _assert_stopped_by_request(root: Path, err: str) -> None:
    report = json.loads((root / "report.json").read_text())
    assert report["outcome"] == "stopped", report
    assert "stopped by request" in report["reason"], report
    assert report["root_cause"] is None and report["entries"] == [], report
    text = (root / "report.txt").read_text()
    assert "STOPPED" in text and "FAILED" not in text, text
    assert "FAILED" not in err and "stopped by request" in err, err
    finished = events(root, "run.finished")[-1]
    assert finished.data["ok"] is False and finished.data.get("stopped") is True, finished.data


def test_ctrl_c_of_a_service_is_a_stop_by_request_and_collects_outputs(tmp_path: Path) -> None:
    code, err, root = _ctrl_c_when(tmp_path, SERVICE, ["beating-local-1", "beating-local-2"])
    assert code == 130, err
    _assert_stopped_by_request(root, err)
    for host in ("local-1", "local-2"):
        beats = (root / "hosts" / host / "outputs" / "heartbeat.log").read_text().splitlines()
        assert len(beats) >= 2 and beats[0] == f"{host} heartbeat 1", beats
    collected = {e.host for e in events(root, "output.collected") if e.data.get("ok")}
    assert collected == {"local-1", "local-2"}


def test_ctrl_c_of_an_application_is_a_stop_by_request_and_collects_outputs(tmp_path: Path) -> None:
    code, err, root = _ctrl_c_when(tmp_path, PLAIN, ["working-local-1"])
    assert code == 130, err
    _assert_stopped_by_request(root, err)
    assert (root / "hosts" / "local-1" / "outputs" / "result.txt").read_text() == "partial result\n"
    started = [e.block for e in events(root, "process.started")]
    assert started == ["/plain/w/work/work"]  # the stop started nothing new


async def test_controller_stop_ends_a_service_as_stopped(tmp_path: Path) -> None:
    async def stop_when_running(watch: Watch) -> None:
        await watch.each("process.started", {"local-1", "local-2"})
        watch.controller.stop()

    result = await run_chaos(SERVICE, tmp_path, stop_when_running)
    assert result.outcome.stopped and not result.ok, result.outcome
    assert result.outcome.reason == "stopped by request"
    assert result.report is not None and result.report.outcome == "stopped" and not result.report.entries
