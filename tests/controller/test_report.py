"""The failure report: grouping, root cause vs cascade, recovery, rendering, JSON and files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from plush.controller.events import Event
from plush.controller.journal import Journal
from plush.controller.report import FailureReport, build_report, load_report, write_report

T0 = 1_700_000_000.0
PROC = "/app/workers/crunch/worker"
BLOCK = "/app/workers/crunch"


class Run:
    """Builds a synthetic event sequence with increasing timestamps."""

    def __init__(self, hosts: int = 5, run_id: str = "20240101-120000-abcd") -> None:
        self.events: list[Event] = []
        self.t = T0
        self.started = self.add("run.started", data={"run": run_id, "hosts": hosts}).at
        for n in range(1, hosts + 1):
            self.add("host.joined", host=f"local-{n}", data={"component": "workers"})

    def add(self, name: str, **fields: Any) -> Event:
        self.t += 0.25
        event = Event(name=name, at=self.t, **fields)
        self.events.append(event)
        return event

    def exit(self, host: str, instance: int, **data: Any) -> None:
        self.add("process.started", host=host, block=PROC, instance=instance, data={"pid": 100 + instance})
        self.add("process.exited", host=host, block=PROC, instance=instance, data=data)

    def stopping(self) -> float:
        """The ``stopping`` timing of a stop that happens just after now (seconds since run.started)."""
        return self.t - self.started + 0.1

    def finish(self, ok: bool, reason: str = "", stopping: float | None = None) -> None:
        timings = {} if stopping is None else {"stopping": stopping}
        self.add("run.finished", data={"ok": ok, "reason": reason, "timings": timings})


def crash_loop() -> Run:
    """5 hosts crash-loop; local-1 exhausts its restarts first and aborts; the others are killed by the stop."""
    run = Run()
    rule = "exit_policy nonzero (max_restarts=3)"
    for instance in (1, 2, 3):
        for n in range(1, 6):
            run.exit(f"local-{n}", instance, code=1, action="restart_process", rule=rule, stderr_tail="boom\n")
    run.exit(
        "local-1",
        4,
        code=1,
        action="abort",
        rule="application on_failure",
        stderr_tail=[f"line {i}" for i in range(15)],
    )
    run.add("block.failed", host="local-1", block=BLOCK, data={"reason": "exit 1 (...)", "action": "abort"})
    for n in range(2, 6):  # the cascade: killed by the stop, blocks fail, hosts finish badly
        run.add("process.exited", host=f"local-{n}", block=PROC, instance=4, data={"signal": 15})
        run.add("block.failed", host=f"local-{n}", block=BLOCK, data={"reason": "killed", "action": "abort"})
        run.add("host.finished", host=f"local-{n}", data={"ok": False})
    run.add("host.failed", host="local-5", data={"reason": "connection lost"})
    run.finish(False, f"block {BLOCK} failed on local-1: exit 1 -> abort")
    return run


def test_clean_run_is_ok_with_no_entries() -> None:
    run = Run(hosts=2)
    for n in (1, 2):
        run.exit(f"local-{n}", 1, code=0, action="success")
        run.add("block.completed", host=f"local-{n}", block=BLOCK)
        run.add("host.finished", host=f"local-{n}", data={"ok": True})
    run.finish(True, stopping=run.stopping())
    run.add("process.exited", host="local-1", block="/app/workers/daemon/d", instance=1, data={"signal": 15})

    report = build_report(run.events)
    assert report.ok
    assert report.outcome == "ok"
    assert report.entries == ()
    assert report.root_cause is None
    assert report.run_id == "20240101-120000-abcd"
    assert report.duration is not None
    assert report.duration > 0
    text = report.render_text()
    assert "20240101-120000-abcd: OK" in text
    assert "No failures." in text


def test_crash_loop_on_five_hosts_folds_into_one_entry() -> None:
    report = build_report(crash_loop().events)
    restarts = [e for e in report.entries if e.action == "restart_process"]
    assert len(restarts) == 1
    entry = restarts[0]
    assert str(entry.hosts) == "local-[1-5]"
    assert entry.count == 15
    assert entry.instances == (1, 2, 3)
    assert entry.status == "exit 1"
    assert not entry.recovered
    assert entry.stderr_tail == ("boom",)
    assert entry.first_at < entry.last_at


def test_root_cause_is_the_first_abort_not_the_cascade() -> None:
    report = build_report(crash_loop().events)
    assert not report.ok
    root = report.root_cause
    assert root is not None
    assert root.kind == "exit"
    assert root.action == "abort"
    assert str(root.hosts) == "local-1"
    assert root.block == PROC
    assert root.instances == (4,)
    assert root.rule == "application on_failure"
    assert root.stderr_tail == tuple(f"line {i}" for i in range(5, 15))  # the last 10 lines
    assert "hosts/local-1/logs/workers.crunch.worker.4.stderr" in root.hint
    assert "exit_policy" in root.hint
    # the cascade (signal exits, later block failures, the host lost at the stop) is not reported
    assert {e.kind for e in report.entries} == {"exit"}
    assert len(report.entries) == 2
    assert report.entries[-1] == root


def test_processes_stopped_by_plush_are_not_failures() -> None:
    run = Run(hosts=2)
    run.exit("local-1", 1, code=2, action="abort", rule="exit_policy #1 match=2 spent max_restarts=2")
    run.add("process.exited", host="local-2", block=PROC, instance=1, data={"signal": 15, "action": "stopped"})
    run.add("process.exited", host="local-2", block=PROC, instance=2, data={"code": 1, "action": "stopped"})
    run.finish(False, "aborted")
    report = build_report(run.events)
    assert report.root_cause is not None
    assert report.entries == (report.root_cause,)
    assert "raise max_restarts" in report.root_cause.hint


def test_abort_exits_on_other_hosts_fold_into_the_root_cause() -> None:
    run = Run(hosts=3)
    for n in (1, 2, 3):
        run.exit(f"local-{n}", 1, code=2, action="abort", rule="exit_policy 2")
    run.finish(False, "aborted")
    report = build_report(run.events)
    assert report.root_cause is not None
    assert str(report.root_cause.hosts) == "local-[1-3]"
    assert report.root_cause.first_host == "local-1"
    assert len(report.entries) == 1


def test_different_status_or_rule_do_not_fold() -> None:
    run = Run(hosts=3)
    run.exit("local-1", 1, code=1, action="ignore", rule="exit_policy nonzero")
    run.exit("local-2", 1, code=1, action="ignore", rule="exit_policy nonzero")
    run.exit("local-3", 1, code=2, action="ignore", rule="exit_policy nonzero")
    run.exit("local-3", 2, code=1, action="ignore", rule="exit_policy 1")
    run.finish(True)
    report = build_report(run.events)
    assert report.ok
    assert report.root_cause is None
    assert [(str(e.hosts), e.status, e.rule) for e in report.entries] == [
        ("local-[1-2]", "exit 1", "exit_policy nonzero"),
        ("local-3", "exit 2", "exit_policy nonzero"),
        ("local-3", "exit 1", "exit_policy 1"),
    ]
    assert all("ignored" in e.did for e in report.entries)


def test_restart_then_success_is_a_recovered_failure() -> None:
    run = Run(hosts=1)
    run.exit("local-1", 1, signal=9, action="restart_process", rule="exit_policy signal")
    run.exit("local-1", 2, code=0, action="success")
    run.add("block.completed", host="local-1", block=BLOCK)
    run.finish(True)
    report = build_report(run.events)
    assert report.ok
    assert report.root_cause is None
    (entry,) = report.entries
    assert entry.kind == "signal"
    assert entry.status == "killed by SIGKILL (9)"
    assert entry.action == "restart_process"
    assert entry.recovered
    assert entry.did == "restarted the process, and it recovered"
    assert "recovered" in entry.hint
    assert "1 recovered" in report.render_text()


def test_restart_without_later_success_is_not_recovered() -> None:
    run = Run(hosts=2)
    run.exit("local-1", 1, code=3, action="restart_process", rule="r")
    run.exit("local-2", 1, code=0, action="success")  # success elsewhere does not count
    run.finish(True)
    (entry,) = build_report(run.events).entries
    assert not entry.recovered


def test_host_failure_with_rematch() -> None:
    run = Run(hosts=3)
    run.add("host.failed", host="local-2", data={"reason": "connection lost"})
    run.add("host.rematched", host="local-2", data={"replacement": "local-7"})
    run.finish(True)
    report = build_report(run.events)
    assert report.ok
    (entry,) = report.entries
    assert entry.kind == "host"
    assert entry.action == "rematch"
    assert entry.replacements == (("local-2", "local-7"),)
    assert "local-2 -> local-7" in entry.did
    assert "local-7" in entry.hint
    assert "hosts/local-2/agent.log" in entry.hint


def test_host_lost_without_spare_is_the_root_cause() -> None:
    run = Run(hosts=3)
    run.exit("local-1", 1, code=1, action="restart_process", rule="r")
    run.add("host.failed", host="local-3", data={"reason": "heartbeat timeout"})
    run.add("app.aborted", data={"reason": "no spare host for local-3", "host": "local-3"})
    run.add("process.exited", host="local-1", block=PROC, instance=2, data={"signal": 15})
    run.add("host.failed", host="local-2", data={"reason": "stopped"})
    run.finish(False, "no spare host for local-3")
    report = build_report(run.events)
    root = report.root_cause
    assert root is not None
    assert root.kind == "host"
    assert root.status == "host lost: heartbeat timeout"
    assert root.action == "abort"
    assert "agent.log" in root.hint
    assert [e.kind for e in report.entries] == ["exit", "host"]


def test_liveness_kill_is_reported_as_liveness() -> None:
    run = Run(hosts=1)
    run.add("process.liveness_failed", host="local-1", block=PROC, instance=1, data={"reason": "no answer in 5s"})
    run.add(
        "process.exited", host="local-1", block=PROC, instance=1, data={"signal": 9, "action": "abort", "rule": "d"}
    )
    run.finish(False, "aborted")
    report = build_report(run.events)
    root = report.root_cause
    assert root is not None
    assert root.kind == "liveness"
    assert "no answer in 5s" in root.status
    assert "liveness command" in root.hint
    assert len(report.entries) == 1


def test_block_failure_on_its_own_is_reported() -> None:
    run = Run(hosts=1)
    run.add("block.failed", host="local-1", block="/app/workers/sync", data={"reason": "barrier timed out"})
    run.finish(False, "block failed")
    root = build_report(run.events).root_cause
    assert root is not None
    assert root.kind == "block"
    assert root.status == "block failed: barrier timed out"
    assert root.action == "abort"


def test_install_failure_is_the_root_cause() -> None:
    run = Run(hosts=2)
    run.add("host.install_failed", host="local-2", data={"software": "tool", "reason": "sha256 mismatch"})
    run.add("host.failed", host="local-1", data={"reason": "stopped"})
    run.finish(False, "installing software 'tool' failed")
    report = build_report(run.events)
    assert report.root_cause is not None
    assert report.root_cause.kind == "install"
    assert report.root_cause.reason == "sha256 mismatch"
    assert "'tool'" in report.root_cause.hint
    assert len(report.entries) == 1


def test_join_timeout_gives_a_synthetic_root_cause() -> None:
    run = Run(hosts=2)
    run.finish(False, "2 host(s) did not join within 30s: local-1, local-2")
    report = build_report(run.events, rundir_root=Path("/runs/x"))
    root = report.root_cause
    assert root is not None
    assert root.kind == "run"
    assert root.status.startswith("2 host(s) did not join")
    assert "/runs/x/hosts" in root.hint
    assert report.entries == (root,)


def test_interrupted_run_ignores_the_processes_the_stop_killed() -> None:
    run = Run(hosts=2)
    run.add("process.started", host="local-1", block=PROC, instance=1, data={"pid": 5})
    stopping = run.stopping()
    run.add("process.exited", host="local-1", block=PROC, instance=1, data={"signal": 15})
    run.add("process.exited", host="local-2", block=PROC, instance=1, data={"code": 143})
    run.finish(False, "interrupted by the user", stopping=stopping)
    report = build_report(run.events)
    assert report.root_cause is not None
    assert report.root_cause.kind == "run"
    assert "stopped by the user" in report.root_cause.hint
    assert len(report.entries) == 1


def test_restart_application_window_hides_the_killed_processes() -> None:
    run = Run(hosts=2)
    run.exit("local-1", 1, code=1, action="restart_application", rule="exit_policy 1")
    run.add("block.failed", host="local-1", block=BLOCK, data={"reason": "exit 1", "action": "restart_application"})
    run.add("process.exited", host="local-2", block=PROC, instance=1, data={"signal": 15})
    run.add("app.restarted", data={"count": 1})
    for n in (1, 2):
        run.exit(f"local-{n}", 2, code=0, action="success")
    run.finish(True)
    report = build_report(run.events)
    assert report.ok
    assert report.app_restarts == 1
    (entry,) = report.entries
    assert entry.action == "restart_application"
    assert entry.recovered
    assert "restarted 1 time(s)" in report.render_text()


def test_unfinished_journal() -> None:
    run = Run(hosts=1)
    run.exit("local-1", 1, code=1, action="restart_process", rule="r")
    report = build_report(run.events)
    assert not report.ok
    assert report.outcome == "unfinished"
    assert report.duration is None
    assert len(report.entries) == 1
    assert "UNFINISHED" in report.render_text()


def test_work_failures_fold_with_their_items() -> None:
    run = Run(hosts=2)
    for n, item in ((1, "a.dat"), (2, "b.dat"), (1, "c.dat")):
        run.add("work.failed", host=f"local-{n}", block="/app/workers/wf", data={"item": item, "accepted": True})
    run.finish(True)
    (entry,) = build_report(run.events).entries
    assert entry.kind == "work"
    assert entry.items == ("a.dat", "b.dat", "c.dat")
    assert str(entry.hosts) == "local-[1-2]"


def test_text_rendering_holds_the_key_facts() -> None:
    report = build_report(crash_loop().events)
    text = report.render_text(width=80)
    for fact in (
        "20240101-120000-abcd: FAILED",
        "Root cause:",
        "local-[1-5] (15 times)",
        PROC,
        "#1-3",
        "exit 1",
        "rule: exit_policy nonzero (max_restarts=3)",
        "aborted the run",
        "the root cause (above)",
        "| line 14",
        "next: see",
        "Failures (2), by time:",
    ):
        assert fact in text, fact
    assert "| line 4" not in text
    assert text.index("Root cause:") < text.index("Failures (2)")
    assert all(len(line) <= 80 for line in text.splitlines()), text


def test_json_round_trip() -> None:
    report = build_report(crash_loop().events)
    data = json.loads(json.dumps(report.to_dict()))
    assert data == report.to_dict()
    assert data["outcome"] == "failed"
    assert data["root_cause"]["hosts"] == "local-1"
    assert data["entries"][0]["hosts"] == "local-[1-5]"
    assert FailureReport.from_dict(data) == report


def test_write_and_load_report_through_the_journal(tmp_path: Path) -> None:
    events = crash_loop().events
    journal = Journal(tmp_path / "journal.sqlite")
    for event in events:
        journal(event)
    journal.close()

    report = load_report(tmp_path / "journal.sqlite")
    assert report == build_report(events, rundir_root=tmp_path)
    assert report.root_cause is not None
    assert str(tmp_path / "hosts" / "local-1" / "logs") in report.root_cause.hint

    text_path, json_path = write_report(tmp_path, report)
    assert text_path == tmp_path / "report.txt"
    assert text_path.read_text().startswith("Plush run 20240101-120000-abcd: FAILED")
    assert FailureReport.from_dict(json.loads(json_path.read_text())) == report


# --- any event sequence -----------------------------------------------------------------------------------

_NAMES = [
    "run.started",
    "run.finished",
    "process.exited",
    "process.liveness_failed",
    "block.completed",
    "block.failed",
    "host.failed",
    "host.over_limits",
    "host.install_failed",
    "host.restarted",
    "host.rematched",
    "work.failed",
    "app.restarted",
    "app.aborted",
    "host.finished",
]
_data = st.fixed_dictionaries(
    {},
    optional={
        "code": st.integers(0, 3),
        "signal": st.sampled_from([9, 15, 99]),
        "action": st.sampled_from(["success", "ignore", "restart_process", "restart_application", "abort", "stopped"]),
        "rule": st.sampled_from(["r1", "r2"]),
        "reason": st.sampled_from(["x", "y"]),
        "stderr_tail": st.one_of(st.text(max_size=30), st.lists(st.text(max_size=5), max_size=12)),
        "ok": st.booleans(),
        "run": st.just("r1"),
        "replacement": st.just("local-9"),
        "reasons": st.lists(st.just("load"), max_size=2),
        "item": st.sampled_from(["a", "b"]),
        "software": st.just("tool"),
        "host": st.sampled_from(["local-1", "local-2"]),
        "timings": st.fixed_dictionaries({"stopping": st.floats(0, 5)}),
    },
)
_event = st.builds(
    lambda name, dt, host, block, instance, data: (name, dt, host, block, instance, data),
    st.sampled_from(_NAMES),
    st.floats(0, 1),
    st.sampled_from([None, "local-1", "local-2", "local-3"]),
    st.sampled_from([None, BLOCK, PROC, "/app/other"]),
    st.sampled_from([None, 1, 2]),
    _data,
)


@settings(max_examples=200, deadline=None)
@given(st.lists(_event, max_size=30))
def test_any_event_sequence_gives_a_consistent_report(raw: list[tuple[Any, ...]]) -> None:
    events, at = [], T0
    for name, dt, host, block, instance, data in raw:
        at += dt
        events.append(Event(name=name, at=at, host=host, block=block, instance=instance, data=data))
    report = build_report(events)
    data = json.loads(json.dumps(report.to_dict()))
    assert FailureReport.from_dict(data) == report
    assert report.root_cause is None or report.root_cause in report.entries
    assert not (report.ok and report.root_cause is not None)
    assert [e.first_at for e in report.entries] == sorted(e.first_at for e in report.entries)
    assert all(e.count >= 1 and e.first_at <= e.last_at for e in report.entries)
    assert report.render_text().startswith("Plush run ")


def test_over_limits_failures_and_their_rematches_are_each_listed() -> None:
    """Regression (issue 7, item 11): host.over_limits + host.failed of one host are one failure, and each
    keeps its rematch; the last one (no spare) is the root cause."""
    run = Run(hosts=1)
    for old, new in (("local-1", "local-2"), ("local-2", "local-3"), ("local-3", None)):
        reason = f"free memory 5 MB < min_free_mem 9 MB ({old})"
        run.add("host.over_limits", host=old, data={"reasons": [reason]})
        run.add("host.failed", host=old, data={"reason": "over its limits: " + reason, "component": "workers"})
        if new is not None:
            run.add("host.rematched", host=old, data={"replacement": new, "component": "workers"})
    run.add("app.aborted", data={"reason": "no spare host is left", "host": "local-3"})
    run.finish(False, "no spare host is left")
    report = build_report(run.events)
    assert sorted(h for e in report.entries for h in e.hosts) == ["local-1", "local-2", "local-3"]
    assert sorted(p for e in report.entries for p in e.replacements) == [("local-1", "local-2"), ("local-2", "local-3")]
    assert report.root_cause is not None and str(report.root_cause.hosts) == "local-3"
    assert {e.kind for e in report.entries} == {"limits"}


def test_an_exit_by_itself_during_the_stop_is_its_own_failure() -> None:
    """Regression (issue 7, item 11): ``unhandled`` exits are never cascade, nor "stopped by plush"."""
    run = Run(hosts=1)
    run.exit("local-1", 1, code=1, action="abort", rule="application on_failure")
    run.add(
        "process.exited", host="local-1", block=BLOCK + "/other", instance=1, data={"code": 3, "action": "unhandled"}
    )
    run.add("block.failed", host="local-1", block=BLOCK, data={"reason": "exit 1", "action": "abort"})
    run.finish(False, "aborted")
    report = build_report(run.events)
    assert report.root_cause is not None and report.root_cause.block == PROC
    (other,) = [e for e in report.entries if e.block == BLOCK + "/other"]
    assert other.status == "exit 3" and "exited by itself" in other.did
