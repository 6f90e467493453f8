"""The controller's face without agents: subscriptions filtered by kind, host and block; info as plain data;
what is refused before anything starts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from plush import Controller
from plush.config import Settings
from plush.errors import PlushError
from plush.resources.host import Host


def _controller(tmp_path: Path) -> Controller:
    return Controller(Settings(runs_dir=str(tmp_path / "runs")))


async def test_subscriptions_filter_by_kind_host_and_block(tmp_path: Path) -> None:
    c = _controller(tmp_path)
    every = c.subscribe()
    processes = c.subscribe(kinds=["process"])  # a prefix: every process.* event
    pattern = c.subscribe(kinds=["host.*", "run.finished"])
    on_one = c.subscribe(hosts=["local-2"])
    under = c.subscribe(blocks=["/app/w/"])
    both = c.subscribe(kinds=["process.exited"], hosts=["local-1"], blocks=["/app/w"])
    emitted = [
        ("process.started", "local-1", "/app/w/p"),
        ("process.exited", "local-1", "/app/w/p"),
        ("process.exited", "local-2", "/app/wx/p"),  # /app/wx is not under /app/w
        ("processes.other", None, None),  # not a process.* event
        ("host.joined", "local-2", None),
        ("run.finished", None, None),
    ]
    for name, host, block in emitted:
        c.bus.emit(name, host=host, block=block)

    def seen(sub: object) -> list[str]:
        return [f"{e.name} {e.host}" for e in sub.drain_nowait()]  # type: ignore[attr-defined]

    assert len(seen(every)) == len(emitted)
    assert seen(processes) == ["process.started local-1", "process.exited local-1", "process.exited local-2"]
    assert seen(pattern) == ["host.joined local-2", "run.finished None"]
    assert seen(on_one) == ["process.exited local-2", "host.joined local-2"]
    assert seen(under) == ["process.started local-1", "process.exited local-1"]
    assert seen(both) == ["process.exited local-1"]


def test_info_is_plain_data_before_anything_connects(tmp_path: Path) -> None:
    c = _controller(tmp_path)
    c.add_node(Host("n1", "10.0.0.1", group="g", properties={"vip": "10.1.0.1", "cpu_mhz": "2400"}))
    nodes = c.info("nodes")
    assert nodes == [
        {
            "name": "n1",
            "address": "10.0.0.1",
            "provider": "local",
            "group": "g",
            "properties": {"vip": "10.1.0.1", "cpu_mhz": "2400"},
            "state": "pooled",
            "agent_pid": None,
            "component": None,
        }
    ]
    for what in ("nodes", "mesh", "control", "app"):
        json.dumps(c.info(what))  # JSON-ready
    assert c.info("app") == {"loaded": False}
    assert c.info("control")["running"] is False
    with pytest.raises(PlushError, match="one of: nodes, mesh, control, app"):
        c.info("everything")


async def test_what_is_refused_before_anything_starts(tmp_path: Path) -> None:
    c = _controller(tmp_path)
    with pytest.raises(PlushError, match="no application is loaded"):
        await c.run()
    with pytest.raises(PlushError, match="no application is running"):
        c.fail_host("local-1")
    with pytest.raises(PlushError, match="no launcher for 'netns' hosts"):
        await c.connect([Host("far", "192.0.2.1", provider="netns")])
    with pytest.raises(PlushError, match="a run cannot mix local and ssh hosts"):
        await c.connect([Host("near", "127.0.0.1"), Host("far", "192.0.2.1", provider="ssh")])
    with pytest.raises(PlushError, match="no host named 'ghost' in the pool"):
        await c.connect(["ghost"])
    await c.quit()  # nothing connected: nothing to do


def test_host_monitor_samples_on_the_bus_fill_the_controller_s_table(tmp_path: Path) -> None:
    from plush.controller.catalogue import HOST_SAMPLE
    from plush.resources.matcher import LiveSample

    c = _controller(tmp_path)
    c.bus.emit(HOST_SAMPLE, host="n1", data={"load1": 3.5, "mem_available_mb": 100, "load5": 1.0})
    c.bus.emit(HOST_SAMPLE, host="n1", data={"load1": 0.5, "mem_available_mb": 900})  # the latest counts
    c.bus.emit(HOST_SAMPLE, host="n2", data={"load1": 1.25, "mem_available_mb": 400})
    assert c.samples == {"n1": LiveSample(0.5, 900.0), "n2": LiveSample(1.25, 400.0)}
