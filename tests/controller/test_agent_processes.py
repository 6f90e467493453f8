"""The mesh's agent processes: a replaced agent's exit is not reported (the host's current agent's is). Join
deadlines are the host lifecycles' (tests/controller/test_hoststates.py)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

from plush.config import Settings
from plush.controller.agents import AgentProcesses
from plush.controller.supervisor import Supervisor


class FakeAgent:
    def __init__(self, name: str, started_at: float) -> None:
        self.name = name
        self.started_at = started_at
        self.pid = 1000 + len(name)
        self.returncode: int | None = None
        self._exit: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    async def wait(self) -> int:
        return await asyncio.shield(self._exit)

    def exit(self, code: int) -> None:
        self.returncode = code
        self._exit.set_result(code)

    def stderr_tail(self, lines: int = 20) -> str:
        return ""


class FakeLauncher:
    """Starts agents whose start time the test chooses."""

    def __init__(self, starts: dict[str, float]) -> None:
        self.starts = starts
        self.agents: dict[str, FakeAgent] = {}

    async def start_agents(self, names: Sequence[str]) -> list[FakeAgent]:
        started = [FakeAgent(n, self.starts[n]) for n in names]
        self.agents.update((a.name, a) for a in started)
        return started

    def agent(self, name: str) -> FakeAgent | None:
        return self.agents.get(name)

    def alive(self) -> list[FakeAgent]:
        return [a for a in self.agents.values() if a.returncode is None]


async def test_a_replaced_agents_exit_is_not_reported() -> None:
    now = time.monotonic()
    launcher = FakeLauncher({"h": now - 100})
    exits: list[tuple[str, int]] = []
    reported = asyncio.Event()

    def on_exit(name: str, code: int) -> None:
        exits.append((name, code))
        reported.set()

    tasks = Supervisor("test")
    agents = AgentProcesses(
        Settings(join_timeout=30.0),
        tasks,
        on_exit=on_exit,
        run_id=lambda: "",
    )
    agents.launcher = launcher  # type: ignore[assignment]
    (old,) = await agents.start(["h"])
    launcher.starts["h"] = now
    (new,) = await agents.start(["h"])  # the host's agent was restarted
    old.exit(-9)  # type: ignore[attr-defined]
    new.exit(3)  # type: ignore[attr-defined]
    await asyncio.wait_for(reported.wait(), 10)  # the old one's watch ran first: it reported nothing
    await tasks.close()
    assert exits == [("h", 3)]
    assert agents.pid("h") is None and agents.current("h") is new
