"""How runs end: Ctrl-C leaves no orphan, a failed process aborts the run, a bad spec never starts one.

- Ctrl-C (one SIGINT to ``plush run``) while a process has forked children and two daemonised grandchildren
  (double fork + ``setsid``; one keeps the environment, one execs with an empty one so that only the agent's
  subreaper can find it): exit 130, and none of them, nor any agent, survives;
- a process failing under the default policy (``abort``): exit 1, the message names the block path and
  the host, and the processes of the other hosts are stopped;
- a spec error: exit 2, ``file:line:`` on stderr, no run directory created.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest
from integration_support import (
    events,
    interrupt,
    kill_session,
    only_run,
    pid_alive,
    run_cli,
    run_processes,
    start_cli,
    wait_until,
    write_spec,
)

DAEMON = f"""
import os, sys
kind = sys.argv[1]
pidfile = os.path.join(os.environ["PLUSH_RUN_DIR"], "daemon-" + kind + ".pid")
if os.fork():
    sys.exit(0)
os.setsid()
if os.fork():
    os._exit(0)
null = os.open(os.devnull, os.O_RDWR)
for fd in (0, 1, 2):
    os.dup2(null, fd)
with open(pidfile + ".tmp", "w") as f:
    f.write(str(os.getpid()))
os.replace(pidfile + ".tmp", pidfile)
env = {{}} if kind == "scrubbed" else dict(os.environ)
os.execve({shutil.which("sleep")!r}, ["sleep", "1000"], env)
"""

FORKER = """\
project: forker
components:
  w:
    hosts: 1
application:
  execution:
    w:
      blocks:
        - process: spawn
          run:
            - sh
            - -c
            - |
              sleep 1000 &
              echo $! > "$PLUSH_RUN_DIR/child.pid"
              {py} -c "$DAEMON" tagged
              {py} -c "$DAEMON" scrubbed
              echo spawned
              wait
          env:
            DAEMON: {daemon}
"""


def _yaml_quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


@pytest.mark.slow
def test_ctrl_c_leaves_no_orphan(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, FORKER.format(py=sys.executable, daemon=_yaml_quote(DAEMON)))
    runs = tmp_path / "runs"
    proc = start_cli(spec, runs, "-q")
    try:
        root = wait_until(lambda: runs.is_dir() and next(runs.iterdir(), None), 60, "the run directory", proc=proc)
        pidfiles = [root / "shared" / n for n in ("child.pid", "daemon-tagged.pid", "daemon-scrubbed.pid")]
        wait_until(lambda: all(p.exists() for p in pidfiles), 90, "the pid files", proc=proc)
        pids = [int(p.read_text()) for p in pidfiles]
        assert all(pid_alive(pid) for pid in pids)
        agents = [pid for pid, cmd in run_processes(root.name, root) if "plush.agent" in cmd]
        assert agents  # the agent (and the zygote that forked it, if any)
        code, _, err = interrupt(proc)
    finally:
        kill_session(proc)
    assert code == 130, err
    names = ["child", "daemon-tagged", "daemon-scrubbed"] + ["agent"] * len(agents)
    survivors = [(name, pid) for name, pid in zip(names, [*pids, *agents], strict=True) if pid_alive(pid)]
    assert survivors == [], f"survived Ctrl-C: {survivors}"
    assert run_processes(root.name, root) == []
    exited = events(root, "process.exited")
    assert len(exited) == 1 and exited[0].data.get("action") == "stopped"


FAILING = """\
project: app
components:
  bad:
    hosts: 1
  good:
    hosts: 2
application:
  execution:
    bad:
      blocks:
        - process: boom
          run:
            - sh
            - -c
            - |
              i=0
              until [ -e "$PLUSH_RUN_DIR/victim-local-2.pid" ] && [ -e "$PLUSH_RUN_DIR/victim-local-3.pid" ]; do
                i=$((i+1)); [ $i -gt 1200 ] && exit 9
                sleep 0.05
              done
              echo "giving up" >&2
              exit 3
    good:
      blocks:
        - process: serve
          run:
            - sh
            - -c
            - |
              pidfile="$PLUSH_RUN_DIR/victim-$PLUSH_HOST.pid"
              echo $$ > "$pidfile.tmp" && mv "$pidfile.tmp" "$pidfile"
              exec sleep 1000
        - process: never
          after: [serve]
          run: [sh, -c, 'echo should not run']
"""


def test_failing_process_aborts_the_run_and_stops_the_other_hosts(tmp_path: Path) -> None:
    result = run_cli(write_spec(tmp_path, FAILING), tmp_path / "runs", "-q")
    assert result.returncode == 1, result.stderr
    failed = [line for line in result.stderr.splitlines() if line.startswith("plush: run") and "FAILED" in line]
    assert len(failed) == 1
    assert "Root cause:" in result.stderr  # the failure report is printed before the last line
    assert "/app/bad/boom" in failed[0] and "local-1" in failed[0], failed[0]
    exits = [line for line in result.stderr.splitlines() if "process.exited" in line]
    assert len(exits) == 1 and "local-1 /app/bad/boom/boom" in exits[0] and "code=3" in exits[0], exits
    root = only_run(tmp_path / "runs")
    victims = [int((root / "shared" / f"victim-{h}.pid").read_text()) for h in ("local-2", "local-3")]
    assert not any(pid_alive(pid) for pid in victims)
    assert run_processes(root.name, root) == []
    evs = events(root)
    block_failed = [e for e in evs if e.name == "block.failed"]
    assert [(e.host, e.block) for e in block_failed] == [("local-1", "/app/bad/boom")]
    assert block_failed[0].data["action"] == "abort"
    stopped = sorted(
        (e.host or "", e.data.get("action")) for e in evs if e.name == "process.exited" and e.host != "local-1"
    )
    assert stopped == [("local-2", "stopped"), ("local-3", "stopped")]
    assert not [e for e in evs if e.name == "process.started" and (e.block or "").endswith("/never/never")]
    assert evs[-1].name == "run.finished" and evs[-1].data["ok"] is False


BAD_YAML = """\
project: bad
components:
  w: {}
application:
  execution:
    w:
      blocks:
        - process: a
          run: [echo, hi]
        - process: b
          aftr: [a]
          run: [echo, hi]
"""

BAD_XML = """\
<?xml version="1.0"?>
<plush>
  <project name="bad">
    <component name="w"><rspec><num_hosts>1</num_hosts></rspec></component>
    <application_block name="bad">
      <execution>
        <component_block name="w">
          <component name="w"/>
          <process_block name="a">
            <predecessor name="nothere"/>
            <process name="a"><path>true</path></process>
          </process_block>
        </component_block>
      </execution>
    </application_block>
  </project>
</plush>
"""


@pytest.mark.parametrize(
    ("name", "text", "where", "words"),
    [
        ("bad.yaml", BAD_YAML, ":11:", "aftr"),
        ("bad.xml", BAD_XML, ":9:", "nothere"),  # the line of the block whose predecessor is wrong
    ],
)
def test_spec_error_exits_2_naming_file_and_line(tmp_path: Path, name: str, text: str, where: str, words: str) -> None:
    spec = write_spec(tmp_path, text, name)
    result = run_cli(spec, tmp_path / "runs")
    assert result.returncode == 2, result.stderr
    assert f"{spec}{where}" in result.stderr
    assert words in result.stderr
    assert not (tmp_path / "runs").exists()
