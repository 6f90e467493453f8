"""Chaos on the controller<->agent link: a broken connection loses nothing and duplicates nothing.

A process writes a deterministic 20 MB stream (``random.Random(seed).randbytes``; paced so that it lasts a
couple of seconds and output piles up on the agent while its link is down, or as fast as it can so that much
is in flight when the link breaks), then waits for a release file before it exits. The test runs the
Controller in-process and, while the output flows, breaks the host's link twice with
:meth:`RunEngine.drop_link` (a transport abort, like a network reset): once after 2 MB have arrived, and again
4 MB after the agent came back. The agent keeps the process running, keeps its output, redials and resumes;
the controller replays nothing it already processed. Then the release file lets the process end.

Checked: the run succeeds; the journal has two ``host.disconnected`` and two ``host.reconnected`` events and
no ``host.failed``; the controller-side log file has exactly the bytes written (its sha256 equals the digest
computed here: no byte lost, none duplicated); the agent's log says it resumed.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import sys
from pathlib import Path

import pytest
from integration_support import LENIENT, RUN_TIMEOUT, events, write_spec

from plush.config import Settings
from plush.controller.api import Controller
from plush.controller.events import Event
from plush.controller.rundir import RunDir

SIZE = 20 * 1024 * 1024
CHUNK = 64 * 1024
SEED = 4242
HOST = "local-1"

SPEC = """\
project: chaos
components:
  talker:
    hosts: 1
application:
  execution:
    talker:
      blocks:
        - process: stream
          run:
            - {python}
            - -c
            - |
              import os, random, sys, time
              rng = random.Random({seed})
              out = sys.stdout.buffer
              for i in range({chunks}):
                  out.write(rng.randbytes({chunk}))
                  out.flush()
                  time.sleep({pause})
              release = os.path.join(os.environ["PLUSH_RUN_DIR"], "release")
              while not os.path.exists(release):
                  time.sleep(0.02)
"""


def _expected_digest() -> str:
    rng = random.Random(SEED)
    digest = hashlib.sha256()
    for _ in range(SIZE // CHUNK):
        digest.update(rng.randbytes(CHUNK))
    return digest.hexdigest()


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


class Chaos:
    """Counts output bytes as they arrive and wakes the test at thresholds."""

    def __init__(self) -> None:
        self.received = 0
        self.threshold = 0
        self.reached = asyncio.Event()

    def arm(self, threshold: int) -> None:
        self.threshold = threshold
        self.reached.clear()
        if self.received >= threshold:
            self.reached.set()

    def on_output(self, host: str, path: str, instance: int, stream: str, data: bytes) -> None:
        self.received += len(data)
        if self.threshold and self.received >= self.threshold:
            self.reached.set()


async def _next(sub_events: asyncio.Queue[Event], name: str) -> Event:
    while True:
        event = await sub_events.get()
        if event.name == name:
            return event
        if event.name in ("host.failed", "run.finished"):
            raise AssertionError(f"waiting for {name}, got {event.name} {event.data}")


@pytest.mark.slow
@pytest.mark.parametrize(
    "pause",
    [0.008, 0.0],
    ids=["paced", "flood"],  # paced (~8 MB/s): output piles up while the link is down; flood: much is in flight
)
async def test_dropped_links_lose_and_duplicate_no_output(tmp_path: Path, pause: float) -> None:
    controller = Controller(
        Settings(
            runs_dir=str(tmp_path / "runs"),
            silence_timeout=LENIENT["silence_timeout"],
            ping_timeout=LENIENT["ping_timeout"],
        )
    )
    spec = SPEC.format(python=sys.executable, seed=SEED, chunks=SIZE // CHUNK, chunk=CHUNK, pause=pause)
    project = controller.load(write_spec(tmp_path, spec))
    chaos = Chaos()
    seen: asyncio.Queue[Event] = asyncio.Queue()
    sub = controller.subscribe()
    rundirs: list[RunDir] = []

    async def forward() -> None:
        async for event in sub:
            seen.put_nowait(event)

    async def saboteur() -> None:
        chaos.arm(2 * 1024 * 1024)
        await chaos.reached.wait()
        engine = controller.engine
        assert engine is not None
        assert engine.drop_link(HOST)
        await _next(seen, "host.disconnected")
        await _next(seen, "host.reconnected")
        chaos.arm(chaos.received + 4 * 1024 * 1024)
        await chaos.reached.wait()
        assert engine.drop_link(HOST)
        await _next(seen, "host.disconnected")
        await _next(seen, "host.reconnected")
        (rundirs[0].shared / "release").write_text("go")

    forwarder = asyncio.ensure_future(forward())
    sabotage = asyncio.ensure_future(saboteur())
    try:
        result = await asyncio.wait_for(
            controller.run(project, on_output=chaos.on_output, on_start=rundirs.append), RUN_TIMEOUT
        )
        if not sabotage.done():  # the run ended before the saboteur released the process: it failed
            evs = [e for e in events(result.rundir.root) if e.name != "host.sample"]
            story = [(e.name, e.host, e.data) for e in evs if e.name.startswith(("host.", "app.", "process.exited"))]
            raise AssertionError(f"the run ended before the sabotage was done: {result.outcome}; {story}")
        await sabotage  # it released the process, so it is done
    finally:
        sub.close()
        for task in (forwarder, sabotage):
            task.cancel()
        await asyncio.gather(forwarder, sabotage, return_exceptions=True)

    root = result.rundir.root
    assert result.ok, result.outcome.reason
    evs = events(root)
    names = [e.name for e in evs]
    assert names.count("host.disconnected") == 2
    assert names.count("host.reconnected") == 2
    assert "host.failed" not in names
    log = root / "hosts" / HOST / "logs" / "talker.stream.stream.1.stdout"
    assert log.stat().st_size == SIZE
    assert _file_digest(log) == _expected_digest()
    assert chaos.received == SIZE  # handed to on_output exactly once too
    agent_log = (root / "hosts" / HOST / "agent.log").read_text()
    assert "resumed:" in agent_log  # (the second break may come while the first replay is still going on)
    assert "socket.send() raised exception" not in agent_log  # a lost connection is not written to
