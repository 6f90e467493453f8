"""The run directory: layout, run ids (unique, in creation order), and the modes of what Plush writes."""

import os
import re
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from plush.controller.events import Event
from plush.controller.journal import Journal
from plush.controller.rundir import RunDir, new_run_id, newest_run, next_run_id
from plush.spec.model import Application, Project


def test_layout_and_escape_guard(tmp_path: Path) -> None:
    rd = RunDir.create(tmp_path / "runs", "r1")
    assert rd.shared.is_dir() and rd.root.name == "r1"
    assert rd.log("local-1", "/app/senders/serve/srv", 2, "stdout").name == "senders.serve.srv.2.stdout"
    assert rd.output("local-1", "res/a.csv").is_relative_to(rd.host("local-1"))
    with pytest.raises(ValueError, match="escapes"):
        rd.output("local-1", "../../x")
    with pytest.raises(FileExistsError):
        RunDir.create(tmp_path / "runs", "r1")


def test_run_ids_sort_by_time() -> None:
    assert new_run_id(1000.0) < new_run_id(2_000_000_000.0)


# --- run ids: unique and in creation order (issue 7, item 12) -------------------------------------------

_ALLOCATE = """
import sys
from plush.controller.rundir import RunDir
for _ in range(int(sys.argv[2])):
    print(RunDir.create(sys.argv[1]).run_id, flush=True)
"""


def test_concurrent_allocations_are_distinct_and_sort_in_allocation_order(tmp_path: Path) -> None:
    """Regression: ids were ``second + 16 random bits``: runs of one second sorted at random and collided.

    Threads and processes allocate run directories at once (most in the same second); every id is distinct,
    and each allocator's ids sort in the order it got them."""
    runs = tmp_path / "runs"
    per, threads = 60, 4
    procs = [
        subprocess.Popen([sys.executable, "-c", _ALLOCATE, str(runs), str(per)], stdout=subprocess.PIPE, text=True)
        for _ in range(3)
    ]
    results: list[list[str]] = [[] for _ in range(threads)]

    def allocate(k: int) -> None:
        for _ in range(per):
            results[k].append(RunDir.create(runs).run_id)

    pool = [threading.Thread(target=allocate, args=(k,)) for k in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    for proc in procs:
        out, _ = proc.communicate(timeout=120)
        assert proc.returncode == 0
        results.append(out.split())
    every = [run_id for ids in results for run_id in ids]
    assert len(every) == len(set(every)) == per * (threads + len(procs))
    assert any(not i.endswith("-0001") for i in every)  # some did share a second
    for ids in results:
        assert ids == sorted(ids)
        assert all(re.fullmatch(r"\d{8}-\d{6}-\d{4}", i) for i in ids)
    assert sorted(p.name for p in runs.iterdir()) == sorted(every)


@given(
    existing=st.lists(st.integers(0, 3).map(lambda s: 1_700_000_000 + s), max_size=30),
    counters=st.lists(st.integers(1, 9999), max_size=30),
    now=st.integers(0, 4).map(lambda s: 1_700_000_000 + s - 1),
)
def test_next_run_id_sorts_after_every_existing_id(existing: list[int], counters: list[int], now: int) -> None:
    """Same second, a clock gone back, a full counter, legacy random suffixes: the next id sorts last."""
    names = [f"{new_run_id(float(s))[:15]}-{c:04d}" for s, c in zip(existing, counters, strict=False)]
    names += [f"{new_run_id(float(s))[:15]}-ffff" for s in existing[len(counters) :]] + ["notes", ".lock"]
    nxt = next_run_id(names, float(now))
    assert re.fullmatch(r"\d{8}-\d{6}-\d{4}", nxt)
    assert all(nxt > n for n in names if re.match(r"\d{8}-\d{6}-", n))
    assert nxt[:15] >= new_run_id(float(now))[:15]


def test_newest_run_is_the_last_allocated_with_a_journal(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    assert newest_run(runs) is None
    made = [RunDir.create(runs) for _ in range(5)]
    assert newest_run(runs) == made[-1].root
    (made[-1].root / "journal.sqlite").unlink()  # a directory that is no run (yet)
    (runs / "zzz-not-a-run").mkdir()
    assert newest_run(runs) == made[-2].root


# --- modes: results are private unless shared (issue 7, item 7) ------------------------------------------


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


@pytest.mark.parametrize(("mode", "dirs", "files"), [("private", 0o700, 0o600), ("shared", 0o755, 0o644)])
def test_what_plush_writes_has_the_results_mode_whatever_the_umask(
    tmp_path: Path, mode: str, dirs: int, files: int
) -> None:
    old = os.umask(0o002)  # a permissive umask must not widen anything, a strict one not narrow shared
    try:
        rd = RunDir.create(tmp_path / "runs", mode=mode)
        spec = tmp_path / "spec.yaml"
        spec.write_text("project: p\n")
        rd.save_spec(Project(name="p", application=Application(name="a"), source=str(spec)))
        rd.write_file("report.txt", b"report\n")
        with rd.open_log("local-1", "/a/cb/p", 1, "stdout") as fh:
            fh.write(b"x")
        journal = Journal(rd.journal)
        journal(Event(name="run.started", at=1.0))
        journal.flush()
        wal_shm = [Path(str(rd.journal) + s) for s in ("-wal", "-shm")]
        assert [_mode(p) for p in wal_shm] == [files, files]  # SQLite gives them the database's mode
        journal.close()
    finally:
        os.umask(old)
    walked = {p: _mode(p) for p in rd.root.rglob("*")} | {rd.root: _mode(rd.root)}
    assert {p: m for p, m in walked.items() if m != (dirs if p.is_dir() else files)} == {}
    made = {"journal.sqlite", "spec.json", "spec.yaml", "report.txt", "cb.p.1.stdout", "hosts", "shared", "logs"}
    assert {p.name for p in walked} >= made


def test_collected_outputs_never_widen_the_source_mode(tmp_path: Path) -> None:
    for mode, source, expected in [
        ("private", 0o640, 0o600),
        ("private", 0o755, 0o700),
        ("private", 0o400, 0o400),
        ("shared", 0o640, 0o640),
        ("shared", 0o777, 0o755),
        ("shared", None, 0o644),
    ]:
        rd = RunDir.create(tmp_path / mode, mode=mode)
        target = rd.output("local-1", "sub/f")
        with rd.create_output(target) as fh:
            fh.write(b"data")
        rd.seal_output(target, source)
        assert (_mode(target), _mode(target.parent)) == (expected, 0o700 if mode == "private" else 0o755)
        with rd.create_output(target) as fh:  # collected again (a rerun): replaced, whatever its mode was
            fh.write(b"again")
        assert target.read_bytes() == b"again"
