"""The settings that travel to agents, and the agent's ``log`` messages, in whole runs with real agents.

- A setting changed on the controller (``PLUSH_*`` variables of ``plush run``) reaches the agent process:
  the agent logs the :class:`AgentSettings` it built from ``prepare``, and they are exactly the
  controller's (the defaults of the others included, defined once in ``plush.protocol.agentsettings``).
- An agent's warning reaches the controller as a ``log`` message and is journaled as ``agent.log``: after
  its link is dropped, the agent resumes and warns what it replayed.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

from integration_support import LENIENT, RUN_TIMEOUT, cli_env, events, run_cli, run_root, write_spec

from plush.config import Settings, load_settings
from plush.controller.api import Controller
from plush.controller.events import Event
from plush.controller.rundir import RunDir

HOST = "local-1"

QUICK = """\
project: settings
components:
  c:
    hosts: 1
application:
  execution:
    c:
      blocks:
        - process: p
          run: [true]
"""

WAITING = """\
project: warns
components:
  c:
    hosts: 1
application:
  execution:
    c:
      blocks:
        - process: p
          run:
            - sh
            - -c
            - 'while [ ! -e "$PLUSH_RUN_DIR/release" ]; do sleep 0.05; done'
"""


def test_a_setting_changed_on_the_controller_reaches_the_agent(tmp_path: Path) -> None:
    changed = {"PLUSH_STOP_GRACE": "0.75", "PLUSH_HOSTMON_INTERVAL": "0.4", "PLUSH_AGENT_GRACE": "12"}
    env = cli_env(**changed)
    proc = run_cli(write_spec(tmp_path, QUICK), tmp_path / "runs", "-q", env=env)
    assert proc.returncode == 0, proc.stderr
    expected, _ = load_settings(env=env, user_file=tmp_path / "none", system_file=tmp_path / "none")
    assert expected.stop_grace == 0.75 and expected.agent_grace == 12.0  # the test changes what it means to
    agent_log = (run_root(proc.stderr) / "hosts" / HOST / "agent.log").read_text()
    found = re.findall(r"settings: (AgentSettings\(.*\))", agent_log)
    assert found == [repr(expected.agent_settings())], agent_log


async def test_an_agent_warning_reaches_the_journal_as_agent_log(tmp_path: Path) -> None:
    controller = Controller(Settings(runs_dir=str(tmp_path / "runs"), **LENIENT))
    project = controller.load(write_spec(tmp_path, WAITING))
    sub = controller.subscribe()
    rundirs: list[RunDir] = []
    forwarded: list[Event] = []

    async def saboteur() -> None:
        async for event in sub:
            if event.name == "process.started":
                engine = controller.engine
                assert engine is not None and engine.drop_link(HOST)
            elif event.name == "agent.log" and "resumed" in str(event.data.get("text")):
                forwarded.append(event)
                (rundirs[0].shared / "release").write_text("go")
            elif event.name in ("host.failed", "run.finished"):
                return

    watcher = asyncio.ensure_future(saboteur())
    try:
        result = await asyncio.wait_for(controller.run(project, on_start=rundirs.append), RUN_TIMEOUT / 2)
    finally:
        sub.close()
        watcher.cancel()
        await asyncio.gather(watcher, return_exceptions=True)
    assert result.ok, result.outcome.reason
    assert forwarded and forwarded[0].host == HOST and forwarded[0].data["level"] == "warning"
    journaled = [e for e in events(result.rundir.root, "agent.log") if "resumed" in e.data["text"]]
    assert journaled and journaled[0].data["text"].startswith("plush.agent.session: resumed:")
