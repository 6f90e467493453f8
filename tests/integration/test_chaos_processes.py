"""Chaos on application processes, with real agents: the exit policies and application restarts.

- kill -9 of a process: the ``signal`` exit policy restarts it in place; instance 2 runs and completes;
- a hung process: its liveness check fails, the tree is killed, the exit counts as a signal, restart;
- a crash loop: restarts with back-off up to ``max_restarts``, then abort; the report names the root cause;
- ``restart_application``: every host stops and starts from the top (barriers and block states reset),
  instance numbers keep growing; past ``max_application_restarts`` the run aborts, naming the limit.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

from chaos_support import Watch, process_events, run_chaos
from integration_support import events, run_processes

KILLED = """\
project: k9
components:
  w:
    hosts: 1
application:
  execution:
    w:
      blocks:
        - process: serve
          run: [sh, -c, 'echo "instance $PLUSH_INSTANCE"; if [ "$PLUSH_INSTANCE" = 1 ]; then exec sleep 60; fi']
          exit:
            - {code: signal, action: restart_process, max_restarts: 1}
"""


async def test_kill_9_of_a_process_restarts_it_in_place_as_instance_2(tmp_path: Path) -> None:
    async def script(w: Watch) -> None:
        started = await w.event("process.started", instance=1)
        os.kill(started.data["pid"], signal.SIGKILL)

    result = await run_chaos(KILLED, tmp_path, script, restart_backoff_initial=0.05)
    assert result.ok, result.outcome
    evs = process_events(events(result.rundir.root), "/k9/w/serve/serve")
    exits = [e for e in evs if e.name == "process.exited"]
    assert exits[0].instance == 1 and exits[0].data["signal"] == signal.SIGKILL
    assert exits[0].data["action"] == "restart_process"
    assert exits[1].instance == 2 and exits[1].data.get("code") == 0
    log = result.rundir.log("local-1", "/k9/w/serve/serve", 2, "stdout")
    assert log.read_text() == "instance 2\n"


HUNG = """\
project: hung
components:
  w:
    hosts: 1
application:
  execution:
    w:
      blocks:
        - process: stuck
          run: [sh, -c, 'if [ "$PLUSH_INSTANCE" = 1 ]; then touch hung-1; exec sleep 60; fi; echo unstuck']
          liveness:
            run: [sh, -c, 'test ! -e "hung-$PLUSH_INSTANCE"']
            interval: 0.2
          exit:
            - {code: signal, action: restart_process, max_restarts: 2}
"""


async def test_a_hung_process_is_killed_by_its_liveness_check_and_restarted(tmp_path: Path) -> None:
    async def script(w: Watch) -> None:
        await w.event("process.exited", instance=2)

    result = await run_chaos(HUNG, tmp_path, script, restart_backoff_initial=0.05)
    assert result.ok, result.outcome
    exits = [e for e in events(result.rundir.root, "process.exited") if e.block == "/hung/w/stuck/stuck"]
    assert [e.instance for e in exits] == [1, 2]
    assert exits[0].data["signal"] is not None and exits[0].data["action"] == "restart_process"
    assert exits[1].data.get("code") == 0
    assert result.rundir.log("local-1", "/hung/w/stuck/stuck", 2, "stdout").read_text() == "unstuck\n"
    killed = events(result.rundir.root, "process.liveness_failed")
    assert [(e.block, e.instance) for e in killed] == [("/hung/w/stuck/stuck", 1)]
    assert killed[0].data["reason"].startswith("liveness")


CRASH_LOOP = """\
project: loop
components:
  w:
    hosts: 1
application:
  execution:
    w:
      blocks:
        - process: crasher
          run: [sh, -c, 'echo "cannot open /etc/crasher.conf (try $PLUSH_INSTANCE)" >&2; exit 7']
          exit:
            - {code: 7, action: restart_process, max_restarts: 3}
"""


async def test_a_crash_loop_backs_off_then_aborts_naming_the_root_cause(tmp_path: Path) -> None:
    async def script(w: Watch) -> None:
        await w.event("app.aborted")

    result = await run_chaos(CRASH_LOOP, tmp_path, script, restart_backoff_initial=0.05, restart_backoff_max=0.2)
    assert not result.ok
    exits = events(result.rundir.root, "process.exited")
    assert [e.instance for e in exits] == [1, 2, 3, 4]
    assert [e.data["action"] for e in exits] == ["restart_process"] * 3 + ["abort"]
    assert "/loop/w/crasher" in result.outcome.reason and result.outcome.host == "local-1"
    report = result.report
    assert report is not None and report.root_cause is not None
    root = report.root_cause
    assert root.block == "/loop/w/crasher/crasher" and root.code == 7
    assert any("cannot open /etc/crasher.conf (try 4)" in line for line in root.stderr_tail)
    assert run_processes(result.rundir.run_id, result.rundir.root) == []


RESTART_APP = """\
project: again
components:
  w:
    hosts: 2
application:
  execution:
    w:
      blocks:
        - process: work
          run:
            - sh
            - -c
            - |
              if [ "$PLUSH_HOST_INDEX" = 0 ] && [ ! -e "$PLUSH_RUN_DIR/failed-once" ]; then
                touch "$PLUSH_RUN_DIR/failed-once"; exit 5
              fi
              echo "work $PLUSH_INSTANCE"
          exit:
            - {code: 5, action: restart_application}
        - barrier: meet
          after: [work]
        - process: after
          after: [meet]
          run: [sh, -c, 'echo "after $PLUSH_INSTANCE"']
"""


async def test_restart_application_starts_every_host_again_with_growing_instances(tmp_path: Path) -> None:
    async def script(w: Watch) -> None:
        await w.event("app.restarted", count=1)

    result = await run_chaos(RESTART_APP, tmp_path, script)
    assert result.ok, result.outcome
    evs = events(result.rundir.root)
    restarted = [e for e in evs if e.name == "app.restarted"]
    assert len(restarted) == 1 and restarted[0].host == "local-1"
    work = "/again/w/work/work"
    for host in ("local-1", "local-2"):
        works = [e.instance for e in evs if e.name == "process.started" and e.host == host and e.block == work]
        # the second execution numbers on from the first: never instance 1 twice on a host
        assert works == sorted(set(works)) and works[-1] >= 2, (host, works)
        finished = [e for e in evs if e.name == "host.finished" and e.host == host]
        assert finished and finished[-1].data["ok"] is True
    released = [e for e in evs if e.name == "barrier.released"]
    assert released and released[-1].seq > restarted[0].seq  # the fresh barrier released after the restart
    assert result.report is not None and result.report.app_restarts == 1


ALWAYS_RESTART = """\
project: forever
components:
  w:
    hosts: 1
application:
  execution:
    w:
      blocks:
        - process: work
          run: [sh, -c, 'exit 5']
          exit:
            - {code: 5, action: restart_application}
"""


async def test_too_many_application_restarts_abort_the_run(tmp_path: Path) -> None:
    async def script(w: Watch) -> None:
        await w.event("app.aborted")

    result = await run_chaos(ALWAYS_RESTART, tmp_path, script, max_application_restarts=2)
    assert not result.ok
    evs = events(result.rundir.root)
    assert [e.data["count"] for e in evs if e.name == "app.restarted"] == [1, 2]
    starts = [e.instance for e in evs if e.name == "process.started"]
    assert starts == [1, 2, 3]
    assert "max_application_restarts=2" in result.outcome.reason
    assert result.outcome.block == "/forever/w/work"
