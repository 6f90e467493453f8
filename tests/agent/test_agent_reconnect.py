"""A real agent whose controller goes away: it resumes and replays, or it gives up and stops its processes.

The controller is scripted (:mod:`agent_world`): it prepares the agent, starts one long process, then
- breaks the link and, when the agent comes back with ``resume``, checks the resume protocol frame by frame
  (the join says what the agent processed; after ``resume {received}`` the agent replays every message after
  ``received``, identical and in order, then goes on; a ``stop`` then ends it cleanly);
- answers the resuming agent with ``reject``: the agent stops its process and exits 1;
- vanishes (listener closed) for longer than ``agent_grace``: the agent stops its process and exits 1.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from agent_world import DEADLINE, HOST, ScriptedController, pid_alive

from plush.protocol.messages import Message


async def test_a_resumed_agent_replays_what_the_controller_lacks(tmp_path: Path) -> None:
    world = ScriptedController(tmp_path)
    try:
        await world.start()
        pid = await world.run_until_started(agent_grace=30.0)
        assert world.peer is not None and world.listener is not None
        # the agent's numbered messages so far: installed, block started, proc.started (at least)
        old = world.peer
        old.abort("simulated network reset")
        while True:  # the old connection ends; messages still queued before its end are collected
            peer, msg = await world.next()
            if msg is None:
                break
        numbered = [m for p, m in world.seen if p is old and "q" in m.fields]
        assert [m["q"] for m in numbered] == list(range(1, len(numbered) + 1))
        last = numbered[-1]["q"]
        assert last >= 3
        peer, join = await world.next()
        assert join is not None and join.type == "join"
        assert join["resume"] is True
        assert join["received"] == 2  # go install and go execute were numbered 1 and 2
        assert pid_alive(pid), "the process must keep running while the link is down"
        world.peer = peer
        peer.send(Message.of("welcome", host=HOST))
        peer.send(Message.of("resume", received=1))  # pretend we processed only the first one
        replayed: list[Message] = []
        while len(replayed) < last - 1:
            msg = await world.expect_numbered()
            replayed.append(msg)
        assert [m["q"] for m in replayed] == list(range(2, last + 1))
        originals = {m["q"]: m for m in numbered}
        for msg in replayed:
            if msg["q"] in originals:
                assert msg == originals[msg["q"]]
        peer.send(Message.of("stop", grace=1.0, reason="test over"))
        await world.expect("stopped")
        assert world.agent is not None
        assert await asyncio.wait_for(world.agent.wait(), DEADLINE) == 0
        assert not pid_alive(pid)
    finally:
        await world.close()


async def test_a_rejected_agent_stops_its_processes_and_exits(tmp_path: Path) -> None:
    world = ScriptedController(tmp_path)
    try:
        await world.start()
        pid = await world.run_until_started(agent_grace=30.0)
        assert world.peer is not None
        world.peer.abort("simulated network reset")
        while True:
            peer, msg = await world.next()
            if msg is not None and msg.type == "join":
                break
        assert msg.get("resume") is True
        peer.send(Message.of("reject", reason="host replaced"))
        peer.close("rejected")
        assert world.agent is not None
        assert await asyncio.wait_for(world.agent.wait(), DEADLINE) == 1
        assert not pid_alive(pid)
        assert "host replaced" in world.agent_log()
    finally:
        await world.close()


async def test_an_agent_without_controller_past_its_grace_stops_and_exits(tmp_path: Path) -> None:
    world = ScriptedController(tmp_path)
    try:
        await world.start()
        pid = await world.run_until_started(agent_grace=1.0)
        assert world.listener is not None and world.agent is not None
        await world.listener.close()  # the controller vanishes: the link closes, redials are refused
        world.listener = None
        assert pid_alive(pid)
        assert await asyncio.wait_for(world.agent.wait(), DEADLINE) == 1
        assert not pid_alive(pid)
        log = world.agent_log()
        assert "lost the controller" in log
        assert "no controller for 1s" in log
    finally:
        await world.close()
