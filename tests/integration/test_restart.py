"""The operator's restart during a run (``Controller.restart``; the terminal's and ``plush restart``), on real
local agents: a block's processes on one host and on all its hosts, a host's agent, the application -- each
also when the restart policy is spent (exit policy ``max_restarts: 0``, ``host_restarts=0``,
``max_application_restarts=0``) -- and a host the ladder dropped. Refusals say why in one line and restart
nothing. ``plush restart`` and ``plush save`` against a ``plush serve``. Synchronisation is on the run's
events; no sleep.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest
from chaos_support import Watch, run_chaos
from integration_support import RUN_TIMEOUT, events, run_processes, wait_until, write_spec
from test_serve_cli import ok, plush, processes, start  # noqa: F401  (processes: a fixture)

from plush.controller.api import Controller
from plush.controller.events import Event
from plush.errors import PlushError

#: a service of 2 hosts (min 1) whose process may not be restarted by its policy: its exit would abort the run
SPEC = """\
project: r
components:
  w:
    hosts: {min: 1, max: 2}
application:
  execution:
    w:
      blocks:
        - process: serve
          run: [sh, -c, 'echo "serving $PLUSH_INSTANCE"; exec sleep 300']
          exit:
            - {code: signal, action: restart_process, max_restarts: 0}
        - barrier: gate
"""


async def terminal(controller: Controller, line: str) -> list[str]:
    """The lines a terminal command says (its session: the controller, a console, ``say``)."""
    from rich.console import Console

    from plush.shell.termcommands import COMMANDS, split_command

    said: list[str] = []
    session = SimpleNamespace(
        controller=controller,
        console=Console(width=120, no_color=True),
        say=lambda text: said.extend(text.splitlines()),
    )
    name, args = split_command(line)
    await COMMANDS[name].handler(session, args)  # type: ignore[arg-type]
    return [text.strip() for text in said]


async def started(w: Watch, *wanted: tuple[str, int]) -> None:
    """Until process.started was seen for each (host, instance) of ``wanted``, in any order."""
    missing = set(wanted)

    def pred(ev: Event) -> bool:
        if ev.name == "process.started":
            missing.discard((ev.host or "", ev.instance or 0))
        return not missing

    await w.until(pred, f"serve started as {sorted(wanted)}")


async def test_restart_a_block_a_host_the_application_past_their_policies_and_a_dropped_host(tmp_path: Path) -> None:
    said: list[str] = []

    async def script(w: Watch) -> None:
        c = w.controller
        await started(w, ("local-1", 1), ("local-2", 1))
        for target, hosts, why in [
            ("/r/w/nope", None, "no such block in application r"),
            ("/r/w/gate", None, "gate is a barrier"),
            ("local-9", None, "no host named local-9 in this run"),
            ("/r/w/serve", "local-7", "no host named local-7"),
        ]:
            with pytest.raises(PlushError, match=why):
                c.restart(target, hosts)

        # one host's process, past its policy (max_restarts 0): restarted, not aborted
        said.extend(await terminal(c, "restart /r/w/serve local-1"))  # the terminal's command
        exited = await w.event("process.exited", host="local-1", instance=1)
        assert (exited.data["action"], exited.data["rule"]) == ("restart_process", "restarted by the operator")
        await started(w, ("local-1", 2))
        # the block on all its hosts
        said.append(c.restart("/r/w/serve").message)
        await started(w, ("local-1", 3), ("local-2", 2))
        # a host's agent, past host_restarts=0
        said.append(c.restart("local-2").message)
        await w.event("host.restarted", host="local-2")
        await started(w, ("local-2", 3))
        # a host the ladder dropped (no spare: max_local_hosts=2) is revived
        c.fail_host("local-1")
        await w.event("host.dropped", host="local-1")
        failed = await terminal(c, "info nodes --failed")  # the terminal's own command
        assert [line.split()[0] for line in failed if line.startswith("local-")] == ["local-1"], failed
        assert re.search(r"local-1\s+.\s+failed\s", "\n".join(failed))
        with pytest.raises(PlushError, match="it runs on no host now"):
            c.restart("/r/w/serve", "local-1")
        said.append(c.restart("local-1").message)
        await started(w, ("local-1", 4))
        # the application, past max_application_restarts=0
        said.append(c.restart().message)
        await w.event("app.restarted")
        await started(w, ("local-1", 5), ("local-2", 4))
        c.stop("restarted enough")

    result = await run_chaos(
        SPEC, tmp_path, script, hosts={"w": 2}, max_local_hosts=2, host_restarts=0, max_application_restarts=0
    )
    assert result.outcome.stopped and result.outcome.reason == "restarted enough", result.outcome
    assert said == [
        "restarting /r/w/serve on local-1",
        "restarting /r/w/serve on local-[1-2]",
        "restarting the agent of local-2",
        "restarting the agent of local-1",
        "restarting the application on local-[1-2]",
    ]
    evs = events(result.rundir.root)
    assert [e.host for e in evs if e.name == "block.restarted"] == ["local-1", "local-1", "local-2"]
    assert not [e for e in evs if e.name == "app.aborted"]
    assert run_processes(result.rundir.run_id, result.rundir.root) == []


def test_plush_restart_and_save_against_plush_serve(tmp_path: Path, processes: list[subprocess.Popen[str]]) -> None:  # noqa: F811
    write_spec(tmp_path, SPEC.replace("hosts: {min: 1, max: 2}", "hosts: 2"))
    refused = plush(tmp_path, "restart", "local-1")
    assert refused.returncode == 5 and "plush: error:" in refused.stderr  # no controller yet
    serve = start(tmp_path, "serve", "--hosts", "2", "--runs-dir", str(tmp_path / "runs"))
    processes.append(serve)
    wait_until(lambda: "hosts connected" in (tmp_path / "serve.err").read_text(), RUN_TIMEOUT, "serving", proc=serve)
    ok(tmp_path, "load", "spec.yaml")

    no_run = plush(tmp_path, "restart", "/r/w/serve")
    assert (no_run.returncode, no_run.stderr) == (
        1,
        "plush: error: no application is running: restart acts on the run in progress\n",
    )
    ok(tmp_path, "run", "--detach")
    wait_until(
        lambda: len(re.findall(r"running", ok(tmp_path, "info", "nodes").stdout)) == 2, RUN_TIMEOUT, "both running"
    )
    wait_until(lambda: plush(tmp_path, "restart", "/r/w/serve").returncode == 0, RUN_TIMEOUT, "serve started")
    assert ok(tmp_path, "restart", "local-2").stderr == "plush: restarting the agent of local-2\n"
    bad = plush(tmp_path, "restart", "/r/w/serve", "local-9")
    assert bad.returncode == 1 and bad.stderr.startswith("plush: error: no host named local-9 in this run")

    saved = tmp_path / "saved.xml"
    assert ok(tmp_path, "save", "saved.xml").stderr == f"plush: saved the application in {saved}\n"
    again = plush(tmp_path, "save", "saved.xml")
    assert again.returncode == 1 and "the file exists" in again.stderr and "--force" in again.stderr
    ok(tmp_path, "save", "saved.xml", "--force")
    assert "<plush>" in saved.read_text()
    ok(tmp_path, "quit")
    assert serve.wait(timeout=RUN_TIMEOUT) == 0
