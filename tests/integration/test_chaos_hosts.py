"""Chaos on hosts, with real agents: the failure ladder (restart → rematch → continue → abort).

- kill -9 of an agent: host failure at once; its agent is restarted in place (the host runs its blocks
  again, instance numbers going on, and passes the barrier it missed late); killed again, the host is
  replaced by a new local host; the application completes; no process of the dead agents survives;
- SIGSTOP of an agent: liveness declares it failed; SIGCONT afterwards changes nothing (the old agent and
  its processes were killed), and the application completes;
- the live hosts of a component falling below its min with no spare: a clean abort naming the component
  and the numbers, no orphan process;
- a host over its component's limits (min_free_mem) for a sustained window is replaced, again and again,
  until the replacement budget is spent; then the run aborts;
- a workflow item held by a killed agent goes back to the queue and is done exactly once;
- ``fail_host`` on a host without a spare: the application goes on with its min; in service mode the
  pool refresh (every ``reconnect_interval``) restarts the failed host;
- the refresh never invents hosts: a service started on 2 sandbox hosts (max 800) keeps 2 live agents,
  across refreshes and a rematch;
- a run never kills another run's processes: a process of a run of another runs directory with the same run
  id and host name (ids are unique per runs directory only) survives this run's host failure and its end.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from pathlib import Path

from chaos_support import Watch, agent_alive, run_chaos
from integration_support import events, first, run_processes

#: every host runs ``work`` until the test creates ``$PLUSH_RUN_DIR/release``, then meets at ``done``
WAITING = """\
project: ladder
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
              sleep 300 &
              echo $! > "$PLUSH_WORKDIR/child-$PLUSH_INSTANCE.pid"
              while [ ! -e "$PLUSH_RUN_DIR/release" ]; do sleep 0.05; done
              echo "done $PLUSH_HOST $PLUSH_INSTANCE"
        - barrier: done
          after: [work]
        - process: after
          after: [done]
          run: [sh, -c, 'echo "after $PLUSH_HOST"']
"""


def _release(w: Watch) -> None:
    (Path(w.engine.rundir.shared) / "release").touch()


async def test_kill_9_of_an_agent_restarts_it_then_replaces_the_host(tmp_path: Path) -> None:
    killed: list[int] = []

    async def script(w: Watch) -> None:
        await w.each("process.started", {"local-1", "local-2"}, instance=1)
        first = w.engine.agent_pid("local-1")
        os.kill(first, signal.SIGKILL)
        killed.append(first)
        failed = await w.event("host.failed", host="local-1")
        assert "agent exited" in failed.data["reason"]
        await w.event("host.restarted", host="local-1")
        restarted = await w.event("process.started", host="local-1")
        assert restarted.instance == 2  # numbering goes on across the host restart
        second = w.engine.agent_pid("local-1")
        assert second not in (None, first)
        os.kill(second, signal.SIGKILL)
        killed.append(second)
        rematched = await w.event("host.rematched", host="local-1")
        assert rematched.data["replacement"] == "local-3"
        await w.event("process.started", host="local-3", instance=1)
        _release(w)

    result = await run_chaos(WAITING, tmp_path, script)
    assert result.ok, result.outcome
    evs = events(result.rundir.root)
    finished = {e.host for e in evs if e.name == "host.finished" and e.data["ok"]}
    assert finished == {"local-2", "local-3"}
    assert not [e for e in evs if e.name == "host.finished" and e.host == "local-1"]
    assert not any(agent_alive(pid) for pid in killed)
    # the children the killed agents' processes had started did not survive them
    workdir = result.rundir.workdir("local-1")
    for pidfile in workdir.glob("child-*.pid"):
        assert not agent_alive(int(pidfile.read_text())), pidfile
    assert run_processes(result.rundir.run_id, result.rundir.root) == []
    report = result.report
    assert report is not None and report.ok
    actions = sorted(e.action or "" for e in report.entries if e.kind == "host")
    assert actions == ["rematch", "restart_host"]


async def test_sigstop_of_an_agent_is_detected_and_sigcont_does_not_corrupt_the_run(tmp_path: Path) -> None:
    stopped: list[int] = []

    async def script(w: Watch) -> None:
        await w.each("process.started", {"local-1", "local-2"}, instance=1)
        pid = w.engine.agent_pid("local-1")
        os.kill(pid, signal.SIGSTOP)
        stopped.append(pid)
        await w.event("host.failed", host="local-1")
        with contextlib.suppress(ProcessLookupError):  # too late: the hung agent was killed with its processes
            os.kill(pid, signal.SIGCONT)
        await w.event("host.restarted", host="local-1")
        await w.event("process.started", host="local-1", instance=2)
        _release(w)

    result = await run_chaos(
        WAITING, tmp_path, script, heartbeat_interval=0.2, silence_timeout=1.0, ping_timeout=1.0, host_restarts=1
    )
    assert result.ok, result.outcome
    assert stopped and not agent_alive(stopped[0])
    evs = events(result.rundir.root)
    failed = [e for e in evs if e.name == "host.failed" and e.host == "local-1"]
    assert failed
    # after its failure nothing of the old execution (instance 1) of local-1 was reported again
    work = "/ladder/w/work/work"
    late = [e for e in evs if e.host == "local-1" and e.block == work and e.instance == 1 and e.seq > failed[0].seq]
    assert late == []
    done = [e for e in evs if e.name == "host.finished" and e.data["ok"]]
    assert {e.host for e in done} == {"local-1", "local-2"}
    assert run_processes(result.rundir.run_id, result.rundir.root) == []


BELOW_MIN = """\
project: below
components:
  w:
    hosts: 2
application:
  execution:
    w:
      blocks:
        - process: work
          run: [sh, -c, 'sleep 300 & sleep 300; wait']
"""


async def test_live_hosts_below_min_without_spare_abort_cleanly(tmp_path: Path) -> None:
    async def script(w: Watch) -> None:
        await w.each("process.started", {"local-1", "local-2"})
        os.kill(w.engine.agent_pid("local-2"), signal.SIGKILL)
        await w.event("app.aborted")

    # no restart in place, and no spare: the run may start only its 2 local hosts
    result = await run_chaos(BELOW_MIN, tmp_path, script, host_restarts=0, max_local_hosts=2)
    assert not result.ok
    reason = result.outcome.reason
    assert "'w'" in reason and "1 live host" in reason and "min of 2" in reason, reason
    assert result.outcome.host == "local-2"
    assert run_processes(result.rundir.run_id, result.rundir.root) == []
    report = result.report
    assert report is not None and report.root_cause is not None
    assert report.root_cause.kind == "host" and report.root_cause.first_host == "local-2"


LIMITS = """\
project: limits
components:
  w:
    hosts: {min: 1, max: 2}
    min_free_mem: 1000000000
application:
  execution:
    w:
      blocks:
        - process: work
          run: [sleep, '300']
"""


async def test_a_host_over_its_limits_is_replaced_until_no_spare_is_left(tmp_path: Path) -> None:
    async def script(w: Watch) -> None:
        await w.event("app.aborted")

    result = await run_chaos(LIMITS, tmp_path, script, hostmon_interval=0.1, limit_samples=2)
    assert not result.ok
    evs = events(result.rundir.root)
    told = ("host.", "app.", "process.")
    story = [(e.name, e.host, e.data.get("reason")) for e in evs if e.name.startswith(told) and e.name != "host.sample"]
    over = [e.host for e in evs if e.name == "host.over_limits"]
    assert over == ["local-1", "local-2", "local-3"], (result.outcome, story)
    assert all("min_free_mem" in r for e in evs if e.name == "host.over_limits" for r in e.data["reasons"])
    assert [e.data["replacement"] for e in evs if e.name == "host.rematched"] == ["local-2", "local-3"]
    assert not [e for e in evs if e.name == "host.restarted"]  # a host over its limits is not restarted
    assert "'w'" in result.outcome.reason and "0 live host" in result.outcome.reason
    assert run_processes(result.rundir.run_id, result.rundir.root) == []


SERVICE = """\
project: pool
components:
  w:
    hosts: {min: 1, max: 3}
application:
  service: true
  reconnect_interval: 0.5
  execution:
    w:
      blocks:
        - process: serve
          run: [sleep, '300']
"""


async def test_a_service_revives_a_failed_host_at_its_refresh(tmp_path: Path) -> None:
    async def script(w: Watch) -> None:
        await w.each("process.started", {"local-1", "local-2"})
        w.controller.fail_host("local-1")
        dropped = await w.event("host.dropped", host="local-1")  # max_local_hosts=2: no spare
        assert "goes on with 1 live" in dropped.data["reason"]
        revived = await w.until(
            lambda e: e.name == "pool.refreshed" and e.data["revived"] == ["local-1"], "local-1 revived"
        )
        assert revived.data["added"] == []
        again = await w.event("process.started", host="local-1")
        assert again.instance == 2
        w.controller.stop("the service was refilled")

    result = await run_chaos(SERVICE, tmp_path, script, hosts={"w": 2}, max_local_hosts=2)
    assert result.outcome.stopped and result.outcome.reason == "the service was refilled"
    evs = events(result.rundir.root)
    failed = [e for e in evs if e.name == "host.failed"]
    assert [(e.host, e.data["reason"]) for e in failed] == [("local-1", "marked failed by the user")]
    assert all(e.data["live"] <= 2 for e in evs if e.name == "pool.refreshed")
    assert run_processes(result.rundir.run_id, result.rundir.root) == []


#: the SWORD example's shape: a service whose component allows far more hosts than the run started with
WIDE_SERVICE = """\
project: sword
components:
  servers:
    hosts: 2..800
application:
  service: true
  reconnect_interval: 0.3
  execution:
    servers:
      blocks:
        - process: daemon
          run: [sleep, '300']
"""


async def test_a_service_refresh_never_adds_hosts_beyond_those_it_started_with(tmp_path: Path) -> None:
    live_agents: list[int] = []

    async def refreshes(w: Watch, count: int) -> None:
        for _ in range(count):
            refreshed = await w.event("pool.refreshed")
            live_agents.append(len(w.engine._launcher.alive()))
            assert refreshed.data["added"] == [] and refreshed.data["live"] == 2, refreshed.data

    async def script(w: Watch) -> None:
        await w.each("process.started", {"local-1", "local-2"})
        await refreshes(w, 3)
        w.controller.fail_host("local-1")
        rematched = await w.event("host.rematched", host="local-1")  # a replacement keeps the count
        await w.event("process.started", host=rematched.data["replacement"])
        await refreshes(w, 3)  # local-1 is not revived: the pool has its 2 hosts
        w.controller.stop()

    # max_local_hosts bounds what the old refresh would fork (it filled up to max: 798 agents here)
    result = await run_chaos(WIDE_SERVICE, tmp_path, script, max_local_hosts=6)
    assert result.outcome.stopped, result.outcome
    evs = events(result.rundir.root)
    assert sorted({e.host or "" for e in evs if e.name == "host.joined"}) == ["local-1", "local-2", "local-3"]
    assert max(live_agents) <= 2, live_agents
    assert not [e for e in evs if e.name == "pool.refreshed" and (e.data["added"] or e.data["revived"])]
    assert run_processes(result.rundir.run_id, result.rundir.root) == []


WORKFLOW = """\
project: flow
components:
  w:
    hosts: 2
application:
  execution:
    w:
      blocks:
        - workflow: items
          data: [data/a.txt, data/b.txt, data/c.txt, data/d.txt]
          task:
            process: task
            run:
              - sh
              - -c
              - |
                if [ "$PLUSH_HOST" = local-1 ] && [ ! -e "$PLUSH_RUN_DIR/held" ]; then
                  touch "$PLUSH_RUN_DIR/held"; exec sleep 300
                fi
                cat "$0"
"""


async def test_the_work_item_of_a_killed_agent_is_done_again_exactly_once(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    for name in "abcd":
        (tmp_path / "data" / f"{name}.txt").write_text(f"item {name}\n")
    held: list[str] = []

    async def script(w: Watch) -> None:
        taken = await w.event("work.taken", host="local-1")
        held.append(taken.data["item"])
        await w.event("process.started", host="local-1")
        os.kill(w.engine.agent_pid("local-1"), signal.SIGKILL)
        await w.event("host.failed", host="local-1")

    result = await run_chaos(WORKFLOW, tmp_path, script)
    assert result.ok, result.outcome
    evs = events(result.rundir.root)
    done = [e.data["item"] for e in evs if e.name == "work.done" and e.data["accepted"]]
    assert sorted(done) == ["data/a.txt", "data/b.txt", "data/c.txt", "data/d.txt"]
    failed = first(evs, "host.failed", host="local-1")
    # the held item was taken again after the failure (by local-2 or the restarted local-1) and done
    retaken = [e for e in evs if e.name == "work.taken" and e.data["item"] == held[0] and e.seq > failed.seq]
    assert retaken
    assert run_processes(result.rundir.run_id, result.rundir.root) == []


RELEASED = """\
project: twin
components:
  w:
    hosts: {min: 1, max: 2}
application:
  execution:
    w:
      blocks:
        - process: work
          run: [sh, -c, 'while [ ! -e "$PLUSH_RUN_DIR/release" ]; do sleep 0.05; done']
"""


async def test_a_run_never_kills_the_processes_of_another_run_with_the_same_id(tmp_path: Path) -> None:
    twins: list[asyncio.subprocess.Process] = []

    def environ(pid: int) -> bytes:
        with contextlib.suppress(OSError):
            return Path(f"/proc/{pid}/environ").read_bytes()
        return b""

    async def script(w: Watch) -> None:
        await w.each("process.started", {"local-1", "local-2"})
        # a process of a twin run: another runs directory whose run started in the same second (same id, same
        # host names), started by another launcher (not this run's PLUSH_SANDBOX_RUN token)
        env = dict(
            os.environ,
            PLUSH_RUN_ID=w.engine.rundir.run_id,
            PLUSH_RUN_DIR=str(tmp_path / "twin" / "shared"),
            PLUSH_SANDBOX_RUN="run-twin",
        )
        for host in ("local-1", "local-2"):
            twins.append(await asyncio.create_subprocess_exec("sleep", "300", env=dict(env, PLUSH_HOST=host)))
        deadline = asyncio.get_running_loop().time() + 30.0
        while not all(b"PLUSH_HOST=" in environ(t.pid) for t in twins):  # in /proc once they have exec'd
            assert asyncio.get_running_loop().time() < deadline, "the twins' environments never showed"
            await asyncio.sleep(0.01)
        w.controller.fail_host("local-1")
        await w.event("host.dropped", host="local-1")
        _release(w)

    try:
        result = await run_chaos(RELEASED, tmp_path, script, hosts={"w": 2}, max_local_hosts=2)
        assert result.ok, result.outcome
        assert first(events(result.rundir.root), "host.failed", host="local-1")
        assert [agent_alive(t.pid) for t in twins] == [True, True]  # neither the host's sweep nor the final one
    finally:
        for twin in twins:
            with contextlib.suppress(ProcessLookupError):
                twin.kill()
            await twin.wait()
