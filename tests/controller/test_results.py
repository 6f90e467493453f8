"""The runs' results as the HTTP API serves them (plush.controller.results): the list of runs and their files,
and the boundary of a result file's path, which comes from a request.

Hypothesis tries to break out of the run directory with paths built from ``..``, ``.``, empty components,
absolute paths, NUL and control characters, backslashes, and names of traps laid in the run directory: a
symbolic link to a file outside, to a directory outside, a host directory that is a link, a link to another
host's log, a FIFO, a run directory that is a link. Whatever the path, opening it either refuses
(BadResultPath / NoSuchResult) or gives one of the run's real logs and outputs, nothing else.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from plush.controller.results import BadResultPath, NoSuchResult, RunResults, result_path

RUN = "20260101-120000-0001"
LINKED_RUN = "20260101-120000-0002"
SECRET = b"the secret outside the results"
#: the files a path may reach: (path, content)
SERVED = {
    "hosts/h1/logs/b.p.0.stdout": b"out of h1\n",
    "hosts/h1/logs/b.p.0.stderr": b"",
    "hosts/h1/outputs/result.txt": b"result of h1\n",
    "hosts/h1/outputs/sub/deep.bin": bytes(range(256)),
    "hosts/h2/logs/b.p.0.stdout": b"out of h2\n",
}


@pytest.fixture
def runs(tmp_path: Path) -> Path:
    """A runs directory with one run and its traps (see the module), the secret beside it."""
    (tmp_path / "secret").write_bytes(SECRET)
    outside = tmp_path / "outside"
    (outside / "logs").mkdir(parents=True)
    (outside / "logs" / "b.p.0.stdout").write_bytes(SECRET)
    runs = tmp_path / "runs"
    root = runs / RUN
    for path, data in SERVED.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_bytes(data)
    (root / "journal.sqlite").write_bytes(b"")
    (root / "report.txt").write_bytes(b"not a log nor an output")
    logs = root / "hosts" / "h1" / "logs"
    (logs / "secret").symlink_to(tmp_path / "secret")
    (logs / "other").symlink_to("../../h2/logs/b.p.0.stdout")
    os.mkfifo(logs / "fifo")
    (root / "hosts" / "h1" / "outputs" / "away").symlink_to(tmp_path)
    (root / "hosts" / "h3").symlink_to(outside)
    (root / "hosts" / "h1" / "work").mkdir()
    (root / "hosts" / "h1" / "work" / "private").write_bytes(SECRET)
    (runs / LINKED_RUN).symlink_to(root)
    return runs


NAMES = ["hosts", "h1", "h2", "h3", "logs", "outputs", "work", "sub", "away", "secret", "other", "fifo", "private"]
FILES = ["b.p.0.stdout", "result.txt", "deep.bin", "report.txt", "journal.sqlite", RUN, "runs"]
TRICKS = ["..", ".", "", "...", "%2e%2e", "\x00", "a\x00b", "\\", "..\\..", "~", "\n", "h1/../h2", "//"]
COMPONENTS = st.sampled_from([*NAMES, *FILES, *TRICKS])
PATHS = st.builds(
    lambda lead, parts, sep: lead + sep.join(parts),
    st.sampled_from(["", "/", "./", "../", "hosts/h1/"]),
    st.lists(COMPONENTS, max_size=7),
    st.sampled_from(["/", "\\", "//"]),
) | st.sampled_from(list(SERVED))
RUNS = st.sampled_from([RUN, LINKED_RUN, "..", f"{RUN}/..", f"../{RUN}", "", "current", f"{RUN}\x00"])


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(run=RUNS, path=PATHS)
def test_no_path_reaches_anything_but_the_runs_logs_and_outputs(runs: Path, run: str, path: str) -> None:
    results = RunResults(runs)
    try:
        handle = results.open(run, path)
    except (BadResultPath, NoSuchResult) as exc:
        assert str(exc)  # a refusal says why, in one line
        assert "\n" not in str(exc).replace("\\n", "")
        return
    with handle:
        data = handle.read()
        real = Path(os.readlink(f"/proc/self/fd/{handle.fileno()}"))
    assert run == RUN and path in SERVED, (run, path)
    assert data == SERVED[path] and SECRET not in data
    assert real == (runs / RUN / path).resolve()


def test_a_result_path_is_a_plain_path_under_a_hosts_logs_or_outputs() -> None:
    assert result_path("hosts/h1/logs/b.p.0.stdout") == ("hosts", "h1", "logs", "b.p.0.stdout")
    assert result_path("hosts/h1/outputs/sub/deep.bin")[-2:] == ("sub", "deep.bin")
    for bad in ["", "/etc/passwd", "hosts/h1/../h2/logs/x", "hosts/h1/logs/sub/x", "hosts/h1/work/x", "report.txt"]:
        with pytest.raises(BadResultPath):
            result_path(bad)
    for bad in ["hosts/h1/logs/a\x00b", "hosts\\h1\\logs\\x", "hosts/h1/logs/", "hosts//h1/logs/x"]:
        with pytest.raises(BadResultPath):
            result_path(bad)


def test_the_files_of_a_run_are_its_regular_logs_and_outputs_no_link_followed(runs: Path) -> None:
    results = RunResults(runs)
    files = results.files(RUN)
    assert [f["path"] for f in files] == sorted(SERVED)
    assert {f["path"]: f["size"] for f in files} == {p: len(d) for p, d in SERVED.items()}
    assert {(f["host"], f["kind"]) for f in files} == {("h1", "log"), ("h1", "output"), ("h2", "log")}
    for path, data in SERVED.items():
        with results.open(RUN, path) as handle:
            assert handle.read() == data
    with pytest.raises(NoSuchResult):
        results.files(LINKED_RUN)  # a run directory that is a link is no run
    with pytest.raises(NoSuchResult):
        results.files("20260101-120000-0009")
    listed = results.runs()
    assert [r["run"] for r in listed] == [RUN]
    assert listed[0]["state"] == "unknown"  # no status file


def test_a_run_s_timeline_is_built_from_its_journal_and_a_held_run_reaches_now(tmp_path: Path) -> None:
    from plush.controller.events import Event
    from plush.controller.journal import Journal
    from plush.controller.runstatus import RunStatus

    root = tmp_path / RUN
    root.mkdir()
    journal = Journal(root / "journal.sqlite")
    journal(Event(name="run.started", at=100.0, data={"run": RUN, "hosts": 1}))
    journal(Event(name="host.joined", at=100.5, host="h1", data={"component": "c"}))
    journal(Event(name="process.started", at=101.0, host="h1", block="/a/c/p/p", instance=1, data={"pid": 1}))
    journal.close()
    results = RunResults(tmp_path)
    status = RunStatus.create(root, RUN)  # a controller holds the run: it goes on until now
    try:
        held = results.timeline(RUN)
    finally:
        status.close()
    assert held["finished"] is False and held["duration"] > 1000  # now, not the last event
    [process] = held["groups"][0]["rows"][0]["spans"]
    assert process[:4] == ["process", 1.0, held["duration"], "open"]
    dead = results.timeline(RUN)  # nobody holds it: it ends at its last event
    assert dead["duration"] == 1.0 and dead["groups"][0]["component"] == "c"
    with pytest.raises(NoSuchResult):
        results.timeline("20260101-120000-0009")


def test_a_run_s_report_html_is_read_without_following_a_link_and_its_absence_says_why(runs: Path) -> None:
    results = RunResults(runs)
    with pytest.raises(NoSuchResult, match=r"has no report\.html .*plush report --html"):
        results.page(RUN)
    (runs / RUN / "report.html").symlink_to(runs.parent / "secret")
    with pytest.raises(NoSuchResult):
        results.page(RUN)
    (runs / RUN / "report.html").unlink()
    (runs / RUN / "report.html").write_bytes(b"<!DOCTYPE html><p>the page</p>")
    assert results.page(RUN) == b"<!DOCTYPE html><p>the page</p>"
    with pytest.raises(NoSuchResult):
        results.page(LINKED_RUN)  # a run directory that is a link is no run
    with pytest.raises(NoSuchResult, match="no run"):
        results.page("20260101-120000-0009")
