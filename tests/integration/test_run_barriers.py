"""Barriers and semaphores in whole runs, asserted through the journal's timestamps and events.

- a barrier shared by two components holds every phase-2 process until its ``barrier.released``;
- a partial barrier (``max``) releases with reason ``max``; a host that arrives afterwards (it waits, by
  construction, for a file that a released host writes) passes through as ``barrier.late``;
- a barrier with a ``timeout`` releases the hosts that arrived when the timeout fires (the other host is
  still busy and is stopped when the test aborts the run);
- a semaphore never admits more than ``capacity`` hosts between it and its ``until`` block;
- examples/partial.xml's report.html holds its timeline: each released host's wait up to the release, and the
  late hosts' waits and late passes.
"""

from __future__ import annotations

import asyncio
import json
import stat
import sys
from pathlib import Path
from typing import Any

from integration_support import events, first, run_in_process, write_spec

from plush.controller.api import Controller
from plush.controller.results import RunResults

PY = sys.executable
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

SHARED = """\
project: phases
components:
  left:
    hosts: 2
  right:
    hosts: 1
application:
  execution:
    left:
      blocks:
        - process: one
          run: [sh, -c, 'echo "$PLUSH_HOST" >> "$PLUSH_RUN_DIR/arrived"']
        - barrier: sync
          after: [one]
        - process: two
          after: [sync]
          run: [sh, -c, 'wc -l < "$PLUSH_RUN_DIR/arrived"']
    right:
      blocks:
        - process: one
          run: [sh, -c, 'sleep 1; echo "$PLUSH_HOST" >> "$PLUSH_RUN_DIR/arrived"']
        - barrier: sync
          after: [one]
        - process: two
          after: [sync]
          run: [sh, -c, 'wc -l < "$PLUSH_RUN_DIR/arrived"']
"""


async def test_shared_barrier_holds_phase_two_until_every_host_arrived(tmp_path: Path) -> None:
    result = await run_in_process(write_spec(tmp_path, SHARED), tmp_path / "runs")
    assert result.ok, result.outcome.reason
    root = result.rundir.root
    evs = events(root)
    released = [e for e in evs if e.name == "barrier.released"]
    assert len(released) == 1
    rel = released[0]
    assert rel.data["barrier"] == "sync" and rel.data["reason"] == "all"
    assert sorted(rel.data["hosts"]) == ["local-1", "local-2", "local-3"]
    arrivals = [e for e in evs if e.name == "barrier.arrived"]
    assert sorted(e.host or "" for e in arrivals) == ["local-1", "local-2", "local-3"]
    assert all(e.seq < rel.seq and e.at <= rel.at for e in arrivals)
    phase1 = [e for e in evs if e.name == "process.exited" and (e.block or "").endswith("/one/one")]
    phase2 = [e for e in evs if e.name == "process.started" and (e.block or "").endswith("/two/two")]
    assert len(phase1) == 3 and len(phase2) == 3
    assert all(e.at <= rel.at for e in phase1)
    assert all(e.seq > rel.seq and e.at >= rel.at for e in phase2)
    # every phase-2 process saw the three arrivals in the shared directory
    for host in ("local-1", "local-2", "local-3"):
        cb = "right" if host == "local-3" else "left"
        assert (root / "hosts" / host / "logs" / f"{cb}.two.two.1.stdout").read_text().strip() == "3"


PARTIAL = """\
project: partial
components:
  racers:
    hosts: 3
application:
  execution:
    racers:
      blocks:
        - process: work
          run:
            - sh
            - -c
            - |
              if [ "$PLUSH_HOST_INDEX" = 2 ]; then
                # the slow racer: arrives only once another racer has passed the barrier
                i=0
                until ls "$PLUSH_RUN_DIR"/passed-* >/dev/null 2>&1; do
                  i=$((i+1)); [ $i -gt 1200 ] && exit 9
                  sleep 0.05
                done
              fi
        - barrier: quorum
          after: [work]
          max: 2
        - process: report
          after: [quorum]
          run: [sh, -c, 'touch "$PLUSH_RUN_DIR/passed-$PLUSH_HOST"']
"""


async def test_partial_barrier_releases_at_max_and_the_last_host_passes_late(tmp_path: Path) -> None:
    result = await run_in_process(write_spec(tmp_path, PARTIAL), tmp_path / "runs")
    assert result.ok, result.outcome.reason
    evs = events(result.rundir.root)
    rel = first(evs, "barrier.released", barrier="quorum")
    assert rel.data["reason"] == "max"
    assert sorted(rel.data["hosts"]) == ["local-1", "local-2"]
    late = [e for e in evs if e.name == "barrier.late"]
    assert [(e.host, e.data["barrier"]) for e in late] == [("local-3", "quorum")]
    assert late[0].seq > rel.seq
    assert len([e for e in evs if e.name == "barrier.released"]) == 1
    reports = [e for e in evs if e.name == "process.started" and e.block == "/partial/racers/report/report"]
    assert sorted(e.host or "" for e in reports) == ["local-1", "local-2", "local-3"]
    assert sorted(p.name for p in result.rundir.shared.iterdir()) == [
        "passed-local-1",
        "passed-local-2",
        "passed-local-3",
    ]


TIMEOUT = """\
project: slowpoke
components:
  hosts:
    hosts: 2
application:
  execution:
    hosts:
      blocks:
        - process: work
          run: [sh, -c, 'if [ "$PLUSH_HOST_INDEX" = 1 ]; then exec sleep 30; fi']
        - barrier: meet
          after: [work]
          timeout: 0.5
        - process: after
          after: [meet]
          run: [sh, -c, 'echo passed']
"""


async def test_barrier_timeout_releases_the_hosts_that_arrived(tmp_path: Path) -> None:
    def abort_after_the_released_host_went_on(controller: Controller) -> None:
        subscription = controller.subscribe()

        async def watch() -> None:
            async for event in subscription:
                if event.name == "process.exited" and event.block == "/slowpoke/hosts/after/after":
                    controller.abort("the test has seen enough")
                    break
            subscription.close()

        asyncio.get_running_loop().create_task(watch())

    result = await run_in_process(
        write_spec(tmp_path, TIMEOUT), tmp_path / "runs", on_controller=abort_after_the_released_host_went_on
    )
    assert not result.ok and result.outcome.reason == "the test has seen enough"
    evs = events(result.rundir.root)
    rel = first(evs, "barrier.released", barrier="meet")
    assert rel.data["reason"] == "timeout"
    assert rel.data["hosts"] == ["local-1"]
    after = first(evs, "process.started", block="/slowpoke/hosts/after/after")
    assert after.host == "local-1" and after.seq > rel.seq
    # the host that never arrived was stopped (its sleep killed by a signal), and never passed the barrier
    sleeper = [e for e in evs if e.name == "process.exited" and e.host == "local-2"]
    assert len(sleeper) == 1 and sleeper[0].data.get("signal") is not None
    assert not [e for e in evs if e.name == "barrier.arrived" and e.host == "local-2"]


SEMAPHORE = """\
project: sem
components:
  workers:
    hosts: 4
application:
  execution:
    workers:
      blocks:
        - semaphore: gate
          capacity: 2
          until: work
        - process: work
          after: [gate]
          run:
            - {py}
            - -c
            - |
              import os, time
              log = os.path.join(os.environ["PLUSH_RUN_DIR"], "gate.log")
              def mark(what):
                  with open(log, "a") as f:
                      f.write("%s %s %r\\n" % (what, os.environ["PLUSH_HOST"], time.time()))
              mark("enter")
              time.sleep(0.4)  # the work: long enough for a third host to squeeze in, were it let in
              mark("leave")
        - process: done
          after: [work]
          run: [sh, -c, 'echo done']
"""


async def test_semaphore_never_admits_more_than_its_capacity(tmp_path: Path) -> None:
    result = await run_in_process(write_spec(tmp_path, SEMAPHORE.format(py=PY)), tmp_path / "runs")
    assert result.ok, result.outcome.reason
    lines = (result.rundir.shared / "gate.log").read_text().splitlines()
    assert len(lines) == 8
    inside, most = 0, 0
    for line in lines:
        inside += 1 if line.startswith("enter") else -1
        most = max(most, inside)
    assert 1 <= most <= 2

    evs = events(result.rundir.root)
    admitted = [e for e in evs if e.name == "barrier.admitted"]
    assert sorted(e.host or "" for e in admitted) == ["local-1", "local-2", "local-3", "local-4"]
    # the k-th admission (k > capacity) follows at least k - capacity completions of the `until` block
    completions = [e for e in evs if e.name == "block.completed" and e.block == "/sem/workers/work"]
    for k, adm in enumerate(admitted, start=1):
        done_before = sum(1 for c in completions if c.seq < adm.seq)
        assert done_before >= k - 2, (k, done_before)
    # no host started its work before being admitted
    for adm in admitted:
        work = first(evs, "process.started", host=adm.host, block="/sem/workers/work/work")
        assert work.seq > adm.seq


def page_timeline(page: Path) -> dict[str, Any]:
    """The timeline JSON a report.html holds."""
    text = page.read_text()
    start = text.index(">", text.index('<script type="application/json" id="plush-timeline-data"')) + 1
    data: dict[str, Any] = json.loads(text[start : text.index("</script>", start)])
    return data


async def test_the_partial_example_s_report_html_shows_the_waits_and_the_late_passes(tmp_path: Path) -> None:
    result = await run_in_process(EXAMPLES / "partial.xml", tmp_path / "runs")
    assert result.ok, result.outcome.reason
    root = result.rundir.root
    evs = events(root)
    t0 = first(evs, "run.started").at
    released = first(evs, "barrier.released", barrier="quorum")
    late = {e.host: round(e.at - t0, 3) for e in evs if e.name == "barrier.late"}
    assert len(late) == 2 and len(released.data["hosts"]) == 3

    page = root / "report.html"
    assert stat.S_IMODE(page.stat().st_mode) == 0o600  # the results' mode (private)
    data = page_timeline(page)
    assert data == RunResults(tmp_path / "runs").timeline(root.name)  # what GET /v1/runs/{run}/timeline answers
    span, mark = data["fields"]["span"], data["fields"]["mark"]
    [group] = data["groups"]
    rows = {row["hosts"]: row for row in group["rows"]}
    assert group["component"] == "racers" and sorted(rows) == [f"local-{n}" for n in range(1, 6)]
    for host, row in rows.items():
        waits = [dict(zip(span, s, strict=True)) for s in row["spans"] if s[0] == "wait"]
        processes = [dict(zip(span, s, strict=True)) for s in row["spans"] if s[0] == "process"]
        assert [p["outcome"] for p in processes] == ["ok", "ok"] and len(waits) == 1, row
        if host in late:
            assert (waits[0]["outcome"], waits[0]["end"]) == ("late", late[host])
            assert [dict(zip(mark, m, strict=True))["kind"] for m in row["marks"]] == ["late"]
        else:
            assert (waits[0]["outcome"], waits[0]["end"]) == ("released", round(released.at - t0, 3))
    assert ["release", round(released.at - t0, 3)] in [m[:2] for m in data["marks"]]
