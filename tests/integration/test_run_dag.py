"""The per-host DAG in whole runs: siblings without edges overlap, predecessors order, workflows run each
item exactly once.

Processes record wall-clock stamps (``time.time()``) in files; the tests compare them for order and overlap
only, never for durations. Overlap is also forced by a rendezvous: each parallel sibling waits (bounded)
for the other to have started, which only succeeds when both run at once.
"""

from __future__ import annotations

import hashlib
import sys
from collections import Counter
from pathlib import Path

from integration_support import events, run_in_process, write_spec

PY = sys.executable

# each block records "start" and "end" stamps; a and b wait for each other's start file
STAMP = """
import os, sys, time
me, other = sys.argv[1], sys.argv[2]
shared = os.environ["PLUSH_RUN_DIR"]
host = os.environ["PLUSH_HOST"]
def mark(what):
    now, path = time.time(), os.path.join(shared, "%s-%s-%s" % (host, me, what))
    with open(path + ".tmp", "w") as f:
        f.write(repr(now))
    os.replace(path + ".tmp", path)  # the stamp exists only once it holds its time
mark("start")
if other != "-":
    deadline = time.monotonic() + 60
    while not os.path.exists(os.path.join(shared, "%s-%s-start" % (host, other))):
        if time.monotonic() > deadline:
            sys.exit("never saw %s start: the siblings did not run in parallel" % other)
        time.sleep(0.02)
mark("end")
"""

DAG = """\
project: dag
components:
  workers:
    hosts: 2
application:
  execution:
    workers:
      blocks:
        - process: a
          run: [{py}, -c, {script}, a, b]
        - process: b
          run: [{py}, -c, {script}, b, a]
        - process: c
          after: [a, b]
          run: [{py}, -c, {script}, c, '-']
        - process: d
          after: [c]
          run: [{py}, -c, {script}, d, '-']
"""


def _stamp(shared: Path, host: str, block: str, what: str) -> float:
    return float((shared / f"{host}-{block}-{what}").read_text())


async def test_siblings_overlap_and_predecessors_order(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, DAG.format(py=PY, script=_yaml_quote(STAMP)))
    result = await run_in_process(spec, tmp_path / "runs")
    assert result.ok, result.outcome.reason
    shared = result.rundir.shared
    for host in ("local-1", "local-2"):
        a = (_stamp(shared, host, "a", "start"), _stamp(shared, host, "a", "end"))
        b = (_stamp(shared, host, "b", "start"), _stamp(shared, host, "b", "end"))
        assert a[0] <= b[1] and b[0] <= a[1], "a and b did not overlap"
        c_start = _stamp(shared, host, "c", "start")
        assert c_start >= max(a[1], b[1])
        assert _stamp(shared, host, "d", "start") >= _stamp(shared, host, "c", "end")

    evs = events(result.rundir.root)
    for host in ("local-1", "local-2"):
        mine = [e for e in evs if e.host == host]
        exited = {e.block.rsplit("/", 2)[1]: e.at for e in mine if e.name == "process.exited" and e.block}
        started = {e.block.rsplit("/", 2)[1]: e.at for e in mine if e.name == "process.started" and e.block}
        assert started["c"] >= max(exited["a"], exited["b"])
        assert started["d"] >= exited["c"]
        completed = [e.block for e in mine if e.name == "block.completed"]
        assert completed.index("/dag/workers/c") > max(
            completed.index("/dag/workers/a"), completed.index("/dag/workers/b")
        )


def _yaml_quote(text: str) -> str:
    """A Python script as a YAML double-quoted scalar."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


WORKFLOW = f"""\
project: wf
components:
  workers:
    hosts: 2
application:
  execution:
    workers:
      blocks:
        - workflow: digest
          data: [items/i1.txt, items/i2.txt, items/i3.txt, items/i4.txt]
          task:
            process: sum
            run: [{PY}, -c, {{script}}]
            outputs: ["*.sha"]
        - process: after
          after: [digest]
          run: [sh, -c, 'ls *.sha | sort | tr "\\n" " "']
"""

SUM = """
import hashlib, os, sys
name = sys.argv[1]
data = open(name, "rb").read()
open(name + ".sha", "w").write(hashlib.sha256(data).hexdigest())
with open(os.path.join(os.environ["PLUSH_RUN_DIR"], "processed.log"), "a") as f:
    f.write(name + " " + os.environ["PLUSH_HOST"] + "\\n")
"""


async def test_workflow_runs_every_item_exactly_once_over_two_hosts(tmp_path: Path) -> None:
    items = tmp_path / "items"
    items.mkdir()
    contents = {f"i{k}.txt": (f"item {k}\n" * (1000 * k)).encode() for k in range(1, 5)}
    for name, data in contents.items():
        (items / name).write_bytes(data)
    spec = write_spec(tmp_path, WORKFLOW.format(script=_yaml_quote(SUM)))
    result = await run_in_process(spec, tmp_path / "runs")
    assert result.ok, result.outcome.reason
    root = result.rundir.root

    done = events(root, "work.done")
    assert sorted(e.data["item"] for e in done) == [f"items/i{k}.txt" for k in range(1, 5)]
    assert all(e.data["accepted"] for e in done)
    assert events(root, "work.failed") == []
    taken = Counter(e.data["item"] for e in events(root, "work.taken"))
    assert set(taken.values()) == {1}
    processed = (result.rundir.shared / "processed.log").read_text().split("\n")[:-1]
    assert sorted(line.split()[0] for line in processed) == sorted(contents)

    # each item's digest came back as an output of the host that processed it
    for line in processed:
        name, host = line.split()
        out = root / "hosts" / host / "outputs" / (name + ".sha")
        assert out.read_text() == hashlib.sha256(contents[name]).hexdigest()
    # the block after the workflow ran once per host, after the workflow completed there
    after = events(root, "process.started")
    assert sorted(e.host or "" for e in after if e.block == "/wf/workers/after/after") == ["local-1", "local-2"]
