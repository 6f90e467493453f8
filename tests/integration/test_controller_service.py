"""The controller as a service (issue 8): a Controller keeps its connected agents across application runs.

Real agents on local sandbox hosts: ``connect`` starts them once; two runs of an application (and a second
application) run one after the other on the same agent processes (same pids, no agent started by a run);
a host's working directory persists between runs; ``info("nodes")`` tells each host's state and agent pid;
``disconnect`` stops one host's agent; a host failed in a run on a kept mesh is replaced by an idle
connected spare, without starting an agent; ``quit`` leaves no agent behind.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from integration_support import LENIENT, RUN_TIMEOUT, events, pid_alive, wait_until, write_spec

from plush.config import Settings
from plush.controller.api import Controller

#: each process appends its run id to a file in its host's working directory, then reads it back
TWICE = """\
project: twice
components:
  workers:
    hosts: {min: 1, max: 3}
application:
  execution:
    workers:
      blocks:
        - process: note
          run: [sh, -c, 'echo "$PLUSH_RUN_ID" >> "$PLUSH_WORKDIR/runs.txt"; cat "$PLUSH_WORKDIR/runs.txt"']
"""

#: another application for the same agents
OTHER = """\
project: other
components:
  pair:
    hosts: 2
application:
  execution:
    pair:
      blocks:
        - process: hello
          run: [sh, -c, 'echo "other on $PLUSH_HOST"']
"""

#: two hosts wait for a file; a failed one is replaced
WAITING = """\
project: waiting
components:
  w:
    hosts: {min: 2, max: 3}
application:
  execution:
    w:
      blocks:
        - process: wait
          run: [sh, -c, 'while [ ! -e "$PLUSH_RUN_DIR/go" ]; do sleep 0.05; done']
"""


def _controller(tmp_path: Path, **settings: object) -> Controller:
    return Controller(Settings(runs_dir=str(tmp_path / "runs"), **{**LENIENT, **settings}))  # type: ignore[arg-type]


def _agents(controller: Controller) -> dict[str, int | None]:
    return {n["name"]: n["agent_pid"] for n in controller.info("nodes")}


async def test_two_runs_and_a_second_application_on_the_same_connected_agents(tmp_path: Path) -> None:
    controller = _controller(tmp_path)
    try:
        assert await controller.connect(3) == ["local-1", "local-2", "local-3"]
        nodes = controller.info("nodes")
        assert [(n["name"], n["address"], n["state"]) for n in nodes] == [
            (f"local-{k}", "127.0.0.1", "joined") for k in (1, 2, 3)
        ]
        assert all(isinstance(n["agent_pid"], int) and n["properties"]["cpus"] >= 1 for n in nodes)
        agents = _agents(controller)
        assert controller.mesh is not None and controller.mesh.launcher is not None
        started = dict(controller.mesh.launcher.agents)  # type: ignore[attr-defined]

        controller.load(write_spec(tmp_path, TWICE))
        output = controller.subscribe(kinds=["process.output"], hosts=["local-2"])
        first = await asyncio.wait_for(controller.run(), RUN_TIMEOUT)
        second = await asyncio.wait_for(controller.run(), RUN_TIMEOUT)
        assert first.ok and second.ok, (first.outcome, second.outcome)
        assert _agents(controller) == agents  # the same agent processes
        assert controller.mesh.launcher.agents == started  # type: ignore[attr-defined]  # no agent started
        for result in (first, second):
            assert sorted(e.host or "" for e in events(result.rundir.root, "process.exited")) == sorted(agents)
        # a host's working directory is the same in both runs: the second run saw the first one's line
        log = second.rundir.root / "hosts" / "local-2" / "logs" / "workers.note.note.1.stdout"
        assert log.read_text().split() == [first.rundir.run_id, second.rundir.run_id]
        # the output is an event on the bus too (not journaled): what local-2's processes wrote, both runs
        printed = output.drain_nowait()
        assert {(e.name, e.host, e.block) for e in printed} == {
            ("process.output", "local-2", "/twice/workers/note/note")
        }
        text = b"".join(e.data["data"] for e in printed).decode()
        assert text.split() == [first.rundir.run_id, first.rundir.run_id, second.rundir.run_id]
        assert events(second.rundir.root, "process.output") == []
        assert {n["state"] for n in controller.info("nodes")} == {"joined"}  # idle, connected

        controller.load(write_spec(tmp_path, OTHER, "other.yaml"))
        # the hosts ran the first application: their latest samples rank them (the less loaded first)
        assert set(controller.samples) == set(agents)
        chosen = controller.match().hosts["pair"]
        other = await asyncio.wait_for(controller.run(), RUN_TIMEOUT)
        assert other.ok, other.outcome
        assert sorted(e.host or "" for e in events(other.rundir.root, "process.exited")) == sorted(chosen)
        assert _agents(controller) == agents
        app = controller.info("app")
        assert app["name"] == "other" and app["run"]["outcome"]["ok"] is True
        assert controller.info("control")["runs"] == 3
    finally:
        await controller.quit()
    assert not any(pid_alive(pid) for pid in agents.values() if pid is not None)


async def test_disconnect_stops_one_hosts_agent(tmp_path: Path) -> None:
    controller = _controller(tmp_path)
    try:
        await controller.connect(2)
        agents = _agents(controller)
        await controller.disconnect(["local-2"])
        states = {n["name"]: (n["state"], n["agent_pid"]) for n in controller.info("nodes")}
        assert states == {"local-1": ("joined", agents["local-1"]), "local-2": ("gone", None)}
        wait_until(lambda: not pid_alive(agents["local-2"] or 0), 30, "local-2's agent to exit")
        assert pid_alive(agents["local-1"] or 0)
        await controller.connect(["local-2"])  # a gone host connects again: a new agent
        assert controller.info("nodes")[1]["state"] == "joined"
        assert _agents(controller)["local-2"] not in (None, agents["local-2"])
    finally:
        await controller.quit()


async def test_a_failed_host_is_replaced_by_an_idle_connected_spare(tmp_path: Path) -> None:
    controller = _controller(tmp_path, host_restarts=0)
    try:
        await controller.connect(3)
        agents = _agents(controller)
        controller.load(write_spec(tmp_path, WAITING))
        sub = controller.subscribe(kinds=["process.started", "host.rematched"])

        async def steer() -> None:
            seen: set[str] = set()
            async for event in sub:
                if event.name == "process.started":
                    seen.add(event.host or "")
                    if seen == {"local-1", "local-2"}:
                        controller.fail_host("local-1")
                    elif "local-3" in seen:
                        assert controller.engine is not None
                        (controller.engine.rundir.shared / "go").touch()
                        return

        steering = asyncio.create_task(steer())
        result = await asyncio.wait_for(controller.run(hosts={"w": 2}), RUN_TIMEOUT)
        await asyncio.wait_for(steering, 10)
        sub.close()
        assert result.ok, result.outcome
        rematched = events(result.rundir.root, "host.rematched")
        assert [e.data["replacement"] for e in rematched] == ["local-3"]  # the idle spare
        assert controller.mesh is not None and controller.mesh.launcher is not None
        assert len(controller.mesh.launcher.agents) == 3  # type: ignore[attr-defined]  # no agent started
        assert _agents(controller)["local-3"] == agents["local-3"]
        states = {n["name"]: n["state"] for n in controller.info("nodes")}
        assert states == {"local-1": "replaced", "local-2": "joined", "local-3": "joined"}
    finally:
        await controller.quit()


async def test_a_run_started_as_the_last_one_ends_waits_for_its_stop_phase_and_completes(tmp_path: Path) -> None:
    """A run's end is decided (``info("control")["running"]`` turns false) before its stop phase (processes,
    outputs, its hosts reset) and ``run.finished``: a run started in that window waits for that phase, then
    runs; it used to start at once and never end (the last run's stop phase reset its hosts)."""
    controller = _controller(tmp_path)
    try:
        await controller.connect(2)
        controller.load(write_spec(tmp_path, TWICE))
        done = controller.subscribe(kinds=["host.finished"])
        first = asyncio.create_task(controller.run())
        seen = 0
        async for _ in done:
            seen += 1
            if seen == 2:
                break
        assert not controller.info("control")["running"] and not first.done()  # decided, not over
        second = await asyncio.wait_for(controller.run(), RUN_TIMEOUT)
        assert (await first).ok and second.ok, second.outcome
        names = [e.name for e in events(second.rundir.root, None)]
        assert names[0] == "run.started" and names.count("run.finished") == 1  # none of the first run's
    finally:
        await controller.quit()
