"""A run stopped on request (Ctrl-C, ``quit``) is reported STOPPED: no root cause, nothing the stop killed.

The events are those of :meth:`RunEngine.stop`: ``app.stopped`` at the request, then the processes that the
stop ended (SIGTERM, or killed after ``stop_grace``), then ``run.finished`` with ``stopped``.
"""

from __future__ import annotations

from plush.controller.events import Event
from plush.controller.report import FailureReport, build_report

T0 = 1_700_000_000.0
PROC = "/svc/w/serve/serve"


def _stopped_service(*, failed_before: bool = False) -> list[Event]:
    evs = [Event(name="run.started", at=T0, data={"run": "20240101-120000-0001", "hosts": 2})]
    for n, host in enumerate(("local-1", "local-2"), 1):
        evs.append(Event(name="process.started", at=T0 + n, host=host, block=PROC, instance=1, data={"pid": n}))
    if failed_before:
        evs.append(
            Event(
                name="process.exited",
                at=T0 + 3,
                host="local-2",
                block=PROC,
                instance=1,
                data={"code": 2, "action": "restart_process", "rule": "service default"},
            )
        )
        evs.append(Event(name="process.started", at=T0 + 4, host="local-2", block=PROC, instance=2, data={"pid": 9}))
    evs += [
        Event(name="app.stopped", at=T0 + 5, data={"reason": "stopped by request (SIGINT)"}),
        Event(name="process.exited", at=T0 + 6, host="local-1", block=PROC, instance=1, data={"signal": 9}),
        Event(name="process.exited", at=T0 + 6, host="local-2", block=PROC, instance=2, data={"code": 143}),
        Event(
            name="run.finished",
            at=T0 + 7,
            data={"ok": False, "stopped": True, "reason": "stopped by request (SIGINT)", "timings": {}},
        ),
    ]
    return evs


def test_a_stopped_run_is_stopped_with_no_root_cause_and_no_failure() -> None:
    report = build_report(_stopped_service())
    assert report.outcome == "stopped" and report.stopped and not report.ok and report.finished
    assert report.root_cause is None and report.entries == ()
    text = report.render_text()
    assert text.splitlines()[0].startswith("Plush run 20240101-120000-0001: STOPPED after 7.0s")
    assert "reason: stopped by request (SIGINT)" in text and "No failures." in text
    assert FailureReport.from_dict(report.to_dict()) == report
    assert report.to_dict()["outcome"] == "stopped"


def test_failures_before_the_stop_are_still_listed() -> None:
    report = build_report(_stopped_service(failed_before=True))
    assert report.outcome == "stopped" and report.root_cause is None
    assert [(e.kind, e.code, e.action) for e in report.entries] == [("exit", 2, "restart_process")]
