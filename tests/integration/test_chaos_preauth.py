"""Chaos at the controller's door: 1,000 idle unauthenticated connections while a host fails and is replaced.

The flood opens 1,000 plain TCP connections to the controller's agent listener (never a TLS byte: the
cheapest way to hold one of its descriptors) while two hosts run; the pre-auth table is sized to hold
exactly those 1,000 and their handshake timeout is long, so the table is full when kill -9 of an agent
fails its host. The replacement agent's connection finds the table full: the oldest idle connection is
dropped for it, it joins, and the run completes. Nothing was refused, no traceback was logged.
"""

from __future__ import annotations

import asyncio
import logging
import os
import resource
import signal
from pathlib import Path

import pytest
from chaos_support import Watch, agent_alive, run_chaos
from integration_support import events
from test_chaos_hosts import WAITING, _release

IDLE = 1000


def _enough_descriptors(needed: int) -> None:
    """Raise this process's soft RLIMIT_NOFILE towards the hard limit when ``needed`` would not fit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        target = needed if hard == resource.RLIM_INFINITY else min(hard, needed)
        if target < needed:
            pytest.skip(f"needs {needed} open files, the hard limit is {hard}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


@pytest.mark.slow
async def test_1000_idle_unauthenticated_connections_while_a_host_is_replaced(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    _enough_descriptors(4 * IDLE + 512)  # both ends of each connection live in this process, plus agents
    caplog.set_level(logging.WARNING)
    killed: list[int] = []
    flood: list[asyncio.StreamWriter] = []
    seen: dict[str, object] = {}

    async def script(w: Watch) -> None:
        await w.each("process.started", {"local-1", "local-2"}, instance=1)
        listener = w.engine._listener
        for _ in range(IDLE):
            flood.append((await asyncio.open_connection(listener.host, listener.port))[1])
        deadline = asyncio.get_running_loop().time() + 120
        while len(listener.admission) < IDLE:  # every idle connection was accepted and is held
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"only {len(listener.admission)} idle connections were accepted")
            await asyncio.sleep(0.02)
        seen["full"] = listener.statistics()["preauth"]
        pid = w.engine.agent_pid("local-1")
        os.kill(pid, signal.SIGKILL)
        killed.append(pid)
        await w.event("host.failed", host="local-1")
        rematched = await w.event("host.rematched", host="local-1")
        assert rematched.data["replacement"] == "local-3"
        await w.event("process.started", host="local-3", instance=1)
        seen["after"] = listener.statistics()["preauth"]
        _release(w)

    try:
        result = await run_chaos(
            WAITING,
            tmp_path,
            script,
            host_restarts=0,
            handshake_timeout=120.0,
            preauth_limit=IDLE,
            preauth_per_source=IDLE,
        )
    finally:
        for writer in flood:
            writer.close()
    assert result.ok, result.outcome
    full = seen["full"]
    assert isinstance(full, dict) and full["held"] == IDLE and full["dropped"] == 0
    after = seen["after"]
    assert isinstance(after, dict) and after["held"] <= IDLE and after["dropped"] >= 1  # room was made
    evs = events(result.rundir.root)
    assert {e.host for e in evs if e.name == "host.finished" and e.data["ok"]} == {"local-2", "local-3"}
    assert not any(agent_alive(pid) for pid in killed)
    assert not [r for r in caplog.records if r.exc_info or "Traceback" in r.getMessage()]
