"""A late controller blames no agent; an agent that really stops answering is still found.

Real agents (LocalLauncher, TLS) and the default liveness settings (``silence_timeout`` 1.25 s, ``ping_timeout``
0.5 s). The agents are prepared with a rare heartbeat, so the controller's silence pings are all that keeps
them alive. The controller is made late the way a loaded machine makes it: every iteration of its event loop
takes 0.7 s (longer than ``ping_timeout``), a callback that blocks and schedules itself again.

Regression (issues #10 and #12 benches, load 30-100): the ping went out one loop iteration after the timer
queued it and its deadline was judged at the end of the next one, before the answer that had arrived was
read: every agent was declared dead ("no answer to a ping within 0.5s") though each had answered.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from fabric_world import DEADLINE, MINIMAL, contact, prepare_for, start_listener

from plush.config import Settings
from plush.fabric.listener import ControllerListener, Peer
from plush.launch.local import LocalAgent, LocalLauncher
from plush.protocol.messages import Message

Scenario = Callable[[ControllerListener, list[LocalAgent], dict[str, str]], Awaitable[None]]


async def with_quiet_agents(
    tmp_path: Path, names: list[str], scenario: Scenario, *, drain_events: bool = True, inbox_limit: int = 64
) -> None:
    """Start ``names`` as real agents with the default ping settings, prepared with a 60 s heartbeat; run
    ``scenario(listener, agents, dead)`` while a task drains the events (``dead``: host -> reason)."""
    dead: dict[str, str] = {}

    def on_dead(peer: Peer, reason: str) -> None:
        dead[peer.host or "?"] = reason

    ca, listener = await start_listener(
        tmp_path / "state", settings=Settings(), on_peer_dead=on_dead, inbox_limit=inbox_limit
    )
    launcher = LocalLauncher(tmp_path / "run", contact(ca, listener), extra_args=MINIMAL)
    agents: list[LocalAgent] = []
    drain: asyncio.Task[None] | None = None
    try:
        agents = await launcher.start_agents(names)
        prepared: set[str] = set()
        while len(prepared) < len(names):
            peer, msg, reason = await asyncio.wait_for(listener.next_event(), DEADLINE)
            assert msg is not None, reason
            if msg.type == "join":
                peer.send(Message.of("welcome", host=peer.host))
                peer.send(prepare_for(str(peer.host), heartbeat_interval=60.0))
            elif msg.type == "prepared":
                prepared.add(str(peer.host))

        async def consume() -> None:
            async for _event in listener:
                pass

        if drain_events:
            drain = asyncio.ensure_future(consume())
        await scenario(listener, agents, dead)
    finally:
        if drain is not None:
            drain.cancel()
        for agent in agents:
            if agent.returncode is None:
                os.kill(agent.pid, signal.SIGCONT)
        await launcher.close()
        await listener.close()


def hog_the_loop(iteration: float = 0.7) -> Callable[[], None]:
    """Make every event-loop iteration take ``iteration`` seconds (CPU starvation); returns the stop switch."""
    loop = asyncio.get_running_loop()
    running = [True]

    def hog() -> None:
        time.sleep(iteration)
        if running[0]:
            loop.call_soon(hog)

    loop.call_soon(hog)
    return lambda: running.__setitem__(0, False)


def sent(listener: ControllerListener) -> dict[str, int]:
    """Messages the controller has sent each agent (here: its pings)."""
    return {str(peer.host): peer.conn.messages_out for peer in listener.peers.values()}


def pinged(listener: ControllerListener, before: dict[str, int], times: int) -> bool:
    now = sent(listener)
    return all(now.get(host, count + times) - count >= times for host, count in before.items())


async def until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while not condition():
        assert time.monotonic() < deadline, f"not within {DEADLINE}s: {what}"
        await asyncio.sleep(0.05)


async def test_a_late_controller_blames_no_agent_and_a_stopped_agent_is_still_found(tmp_path: Path) -> None:
    names = ["late-1", "late-2", "late-3"]

    async def scenario(listener: ControllerListener, agents: list[LocalAgent], dead: dict[str, str]) -> None:
        before = sent(listener)
        stop = hog_the_loop()
        try:  # three pings to every agent, each sent and judged by a controller late by 0.7 s an iteration
            await until(lambda: bool(dead) or pinged(listener, before, 3), "3 pings to every agent")
        finally:
            stop()
        assert dead == {}, "agents that answered were declared dead because the controller was late"
        assert sorted(p.host or "" for p in listener.peers.values()) == names
        # the converse, at the heartbeat floor on a controller that is on time: a stopped agent is found
        os.kill(agents[0].pid, signal.SIGSTOP)
        await until(lambda: "late-1" in dead, "the stopped agent declared dead")
        assert "no answer to a ping" in dead["late-1"]
        assert set(dead) == {"late-1"}

    await with_quiet_agents(tmp_path, names, scenario)


async def test_an_agent_that_stops_answering_is_found_even_while_the_controller_is_late(tmp_path: Path) -> None:
    async def scenario(listener: ControllerListener, agents: list[LocalAgent], dead: dict[str, str]) -> None:
        os.kill(agents[0].pid, signal.SIGSTOP)
        stop = hog_the_loop()
        try:  # a ping deadline starts over once for a late controller, not for ever
            await until(lambda: "quiet-1" in dead, "the stopped agent declared dead")
        finally:
            stop()
        assert "no answer to a ping" in dead["quiet-1"]
        assert set(dead) == {"quiet-1"}

    await with_quiet_agents(tmp_path, ["quiet-1", "quiet-2"], scenario)


async def test_an_agent_the_controller_stopped_reading_for_its_backlog_is_not_blamed(tmp_path: Path) -> None:
    """The controller is behind on its events: with ``inbox_limit`` undelivered messages of an agent it stops
    reading that agent (pause_reading), so the agent's answers to pings sit unread. On main the agent was
    declared dead after silence_timeout + ping_timeout; now it is neither pinged nor judged until read."""

    async def scenario(listener: ControllerListener, agents: list[LocalAgent], dead: dict[str, str]) -> None:
        (peer,) = listener.peers.values()
        for req in range(1, 5):  # four answers for an inbox that holds two before the agent is paused
            peer.send(Message.of("exec", req=req, argv=["true"], timeout=10.0, limit=1024))
        await until(lambda: listener.statistics()["inbox"] >= 2, "the agent's answers queued")
        # the controller stays behind for longer than silence_timeout + ping_timeout (1.75 s): not a
        # synchronisation, the time during which nothing must happen
        await asyncio.sleep(3.0)
        results = 0
        while results < 4:
            _peer, msg, reason = await asyncio.wait_for(listener.next_event(), DEADLINE)
            assert msg is not None, f"the agent was dropped: {reason}"
            results += msg.type == "exec.result"
        assert dead == {}
        before = sent(listener)
        await until(lambda: bool(dead) or pinged(listener, before, 2), "2 pings after the backlog")
        assert dead == {}

    await with_quiet_agents(tmp_path, ["behind-1"], scenario, drain_events=False, inbox_limit=2)
