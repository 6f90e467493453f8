"""How a run stops: ``stop_grace`` is honoured at every layer, and a stop on request is a normal end.

- ``stop_grace``: a process that traps SIGTERM and takes a few seconds to finish its work after it finishes
  cleanly (its own exit 0) when ``stop_grace`` leaves it the time, and is SIGKILLed when it does not;
"""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

from chaos_support import Watch, run_chaos
from integration_support import events

#: after SIGTERM it says so, works for 3 s, writes "finished cleanly" and exits 0
TRAPPER = """\
project: trapper
components:
  w:
    hosts: 1
application:
  execution:
    w:
      blocks:
        - process: trap
          run:
            - {py}
            - -c
            - |
              import os, signal, sys, time
              shared = os.environ["PLUSH_RUN_DIR"]
              def on_term(sig, frame):
                  open(os.path.join(shared, "got-term"), "w").close()
                  time.sleep(3)
                  with open(os.path.join(shared, "finished"), "w") as f:
                      f.write("finished cleanly")
                  sys.exit(0)
              signal.signal(signal.SIGTERM, on_term)
              open(os.path.join(shared, "ready"), "w").close()
              while True:
                  time.sleep(1)
"""


async def _wait_file(path: Path, timeout: float = 60.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not path.exists():
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {path}")
        await asyncio.sleep(0.05)


async def _stop_once_ready(watch: Watch) -> None:
    await watch.event("process.started")
    await _wait_file(watch.engine.rundir.shared / "ready")
    watch.controller.abort("the test stops the run")


async def test_stop_grace_lets_a_process_that_traps_term_finish(tmp_path: Path) -> None:
    result = await run_chaos(TRAPPER.format(py=sys.executable), tmp_path, _stop_once_ready, stop_grace=60.0)
    shared = result.rundir.shared
    assert (shared / "got-term").exists()
    assert (shared / "finished").read_text() == "finished cleanly"
    [exited] = events(result.rundir.root, "process.exited")
    assert exited.data.get("code") == 0 and exited.data.get("signal") is None, exited.data


async def test_a_short_stop_grace_kills_a_process_that_traps_term(tmp_path: Path) -> None:
    result = await run_chaos(TRAPPER.format(py=sys.executable), tmp_path, _stop_once_ready, stop_grace=0.5)
    shared = result.rundir.shared
    assert (shared / "got-term").exists()
    assert not (shared / "finished").exists()
    [exited] = events(result.rundir.root, "process.exited")
    assert exited.data.get("signal") == signal.SIGKILL, exited.data
