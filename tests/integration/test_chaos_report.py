"""The failure report of real runs lists every failure (issue 7, item 11).

- three hosts over their limits, two of them rematched, then an abort: the report lists the three host
  failures (two replaced, naming their replacements; the last the root cause), not one;
- a process that exited non-zero by itself while its block was being stopped (a sibling failed) is
  reported with its own exit, not as "stopped by plush".
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from chaos_support import Watch, run_chaos
from integration_support import events, pid_alive, run_processes

#: every host is over its limits at once (no machine has that much free memory): replaced until none is left
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


async def test_three_host_failures_and_two_rematches_are_all_in_the_report(tmp_path: Path) -> None:
    async def script(w: Watch) -> None:
        await w.event("app.aborted")

    result = await run_chaos(LIMITS, tmp_path, script, hostmon_interval=0.1, limit_samples=2)
    assert not result.ok
    evs = events(result.rundir.root)
    assert [e.data["replacement"] for e in evs if e.name == "host.rematched"] == ["local-2", "local-3"]
    report = result.report
    assert report is not None
    failed_hosts = sorted(h for e in report.entries if e.kind in ("host", "limits") for h in e.hosts)
    assert failed_hosts == ["local-1", "local-2", "local-3"], report.render_text()
    replacements = sorted(pair for e in report.entries for pair in e.replacements)
    assert replacements == [("local-1", "local-2"), ("local-2", "local-3")], report.render_text()
    assert report.root_cause is not None and str(report.root_cause.hosts) == "local-3"
    text = report.render_text()
    assert "local-1 -> local-2" in text and "local-2 -> local-3" in text
    assert run_processes(result.rundir.run_id, result.rundir.root) == []


#: ``quits`` exits 3 by itself while a child of it keeps its stdout open (so its exit is not handled yet);
#: then ``boom`` fails, which stops the block: ``quits``'s exit must be reported as it is
SIBLINGS = """\
project: siblings
components:
  w:
    hosts: 1
application:
  execution:
    w:
      blocks:
        - process: pair
          processes:
            - name: quits
              run: [sh, -c, '(while :; do echo tick; sleep 0.2; done) & exit 3']
            - name: boom
              run: [sh, -c, 'while [ ! -e "$PLUSH_RUN_DIR/go" ]; do sleep 0.05; done; echo boom >&2; exit 1']
"""


async def test_a_process_that_exited_by_itself_during_an_abort_is_reported_as_it_exited(tmp_path: Path) -> None:
    async def script(w: Watch) -> None:
        started = await w.event("process.started", block="/siblings/w/pair/quits")
        await w.event("process.started", block="/siblings/w/pair/boom")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 30.0
        while pid_alive(started.data["pid"]):  # the shell itself exited (its child still writes)
            assert loop.time() < deadline, "quits did not exit"
            await asyncio.sleep(0.05)
        (Path(w.engine.rundir.shared) / "go").touch()
        await w.event("app.aborted")

    result = await run_chaos(SIBLINGS, tmp_path, script)
    assert not result.ok
    quits = [e for e in events(result.rundir.root, "process.exited") if e.block == "/siblings/w/pair/quits"]
    assert len(quits) == 1
    assert quits[0].data.get("code") == 3, quits[0]
    assert quits[0].data.get("action") != "stopped", quits[0]
    report = result.report
    assert report is not None and report.root_cause is not None
    assert report.root_cause.block == "/siblings/w/pair/boom"
    (entry,) = [e for e in report.entries if e.block == "/siblings/w/pair/quits"]
    assert entry.status == "exit 3"
    assert "stopped by plush" not in report.render_text()
    assert run_processes(result.rundir.run_id, result.rundir.root) == []
