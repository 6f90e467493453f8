"""The host lifecycles at work (controller/hoststates.py): the one loop timer fires the lifecycles' deadlines,
``join_timeout`` counts per host from its own agent's start (of 1,000 hosts forked over many seconds, the
last ones get their whole ``join_timeout``), facts a state does not expect are dropped, and the commands go
to the sink in one batch per call."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence

import pytest

from plush.controller.hoststates import HostStates
from plush.controller.lifecycle_commands import (
    AskHealer,
    Command,
    KillLeftovers,
    LaunchAgent,
    LifecycleTimeouts,
    ReportFailed,
    SendPrepare,
)


class Sink:
    def __init__(self) -> None:
        self.batches: list[list[Command]] = []
        self.arrived = asyncio.Event()

    def carry_out(self, commands: Sequence[Command]) -> None:
        self.batches.append(list(commands))
        self.arrived.set()


def _states(**timeouts: float) -> tuple[HostStates, Sink, list[tuple[str, str, str]]]:
    sink = Sink()
    moves: list[tuple[str, str, str]] = []
    states = HostStates(LifecycleTimeouts(**timeouts), sink, lambda h, a, b: moves.append((h, a, b)))
    return states, sink, moves


async def test_join_timeout_counts_from_each_agents_own_start() -> None:
    states, sink, _ = _states(join=30.0)
    for name in ("early", "late"):
        states.add(name)
    states.handle_many((n, "launch_started", {}) for n in ("early", "late"))
    assert sink.batches == [[LaunchAgent("early"), LaunchAgent("late")]]  # one batch: launched together
    sink.arrived.clear()
    now = time.monotonic()
    # "early" was started long ago (its deadline is past); "late" only now, at the end of a long fork batch
    states.handle("early", "agent_started", now=now - 31.0)
    states.handle("late", "agent_started", now=now)
    await asyncio.wait_for(sink.arrived.wait(), 10)
    reason = "its agent did not join within 30s"
    assert sink.batches[-1] == [KillLeftovers("early"), ReportFailed("early", reason), AskHealer("early", reason, True)]
    assert (states.state("early"), states.state("late")) == ("failed", "connecting")
    assert states.get("late") is not None and states.get("late").timers["join"] == now + 30.0  # type: ignore[union-attr]
    states.close()


async def test_a_fact_the_state_does_not_expect_is_dropped_and_requests_are_counted() -> None:
    states, sink, moves = _states()
    states.add("h")
    assert not states.offer("h", "install_done")  # a report crossing nothing it belongs to: dropped
    assert states.state("h") == "pooled" and sink.batches == []
    states.handle("h", "launch_started")
    assert states.offer("h", "agent_joined")
    assert states.state("h") == "joined"  # not matched: idle
    states.handle("h", "matched", component="web")
    assert sink.batches[-1] == [SendPrepare("h")]
    assert moves == [("h", "pooled", "connecting"), ("h", "connecting", "joined"), ("h", "joined", "preparing")]
    assert states.statistics()["states"] == {"preparing": 1}
    states.close()


async def test_a_lost_host_counts_as_the_state_it_resumes_to() -> None:
    states, _, moves = _states(reconnect=5.0)
    states.add("h")
    for event, kw in [
        ("matched", {"component": "web"}),
        ("launch_started", {}),
        ("agent_joined", {}),
        ("prepared", {}),
        ("install_done", {}),
    ]:
        states.handle("h", event, **kw)
    states.handle("h", "link_lost", reason="connection reset")
    assert (states.state("h"), states.effective("h")) == ("lost", "ready")
    moves.clear()
    states.handle("h", "start_released")  # the start barrier while its link is down: kept, replayed on resume
    assert (states.state("h"), states.effective("h")) == ("lost", "running")
    assert moves == [("h", "lost", "lost")]  # told, so that the run's counts follow
    states.handle("h", "link_resumed")
    assert states.state("h") == "running"
    states.close()


async def test_a_reconnect_window_the_blocked_loop_overran_is_not_held_against_the_host(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The loop is blocked past a lost host's reconnect deadline (its agent's resumed link would be read right
    after): the timer, firing late, moves the deadline on once instead of failing the host; it says so."""
    caplog.set_level(logging.INFO, logger="plush.controller.hoststates")
    states, sink, _ = _states(reconnect=0.3)
    states.add("h")
    for event in ("matched", "launch_started", "agent_joined", "prepared", "install_done", "start_released"):
        states.handle("h", event, **({"component": "web"} if event == "matched" else {}))
    states.handle("h", "link_lost", reason="cut")
    assert states.state("h") == "lost"
    life = states.get("h")
    assert life is not None
    armed = life.timers["reconnect"]
    asyncio.get_running_loop().call_soon(time.sleep, 2.0)  # the controller is late by ~1.7 s
    deadline = time.monotonic() + 30
    while life.timers.get("reconnect") == armed:  # until the timer fired
        assert time.monotonic() < deadline, "the reconnect timer never fired"
        await asyncio.sleep(0.01)
    assert states.state("h") == "lost" and life.timers["reconnect"] > armed, sink.batches[-1]
    assert "late for 1 host timeout(s)" in caplog.text
    states.handle("h", "link_resumed")
    assert states.state("h") == "running"
    states.close()
