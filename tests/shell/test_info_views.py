"""``info nodes`` in the terminal, readable at 500 hosts: the counts per state and per component first, one row
per host only for a selection -- ``--failed`` (failed, lost, recovering, replaced), a host set such as
``'node[1-20]'``, or both -- through the terminal's own ``info`` command over a real Controller (500 hosts in
its pool), and the views over the plain data a run's hosts give (:mod:`plush.shell.views`). (A failed host of
a real run: tests/integration/test_restart.py.)"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from plush.config import Settings
from plush.controller.api import Controller
from plush.resources.host import Host
from plush.shell.termcommands import COMMANDS, split_command
from plush.shell.views import DETAIL_ROWS, nodes_view

WIDTH = 120


class Said:
    """The terminal's session as a command sees it (:class:`plush.shell.termcommands.Session`): the controller,
    the console, and the lines it says."""

    def __init__(self, controller: Controller) -> None:
        self.controller = controller
        self.console = Console(width=WIDTH, no_color=True, highlight=False)
        self.lines: list[str] = []

    def say(self, line: str) -> None:
        self.lines.extend(line.splitlines())

    async def start_run(self, hosts: dict[str, int]) -> None:
        raise AssertionError("not here")

    async def quit(self) -> None:
        raise AssertionError("not here")


async def term(session: Said, line: str) -> list[str]:
    session.lines = []
    name, args = split_command(line)
    await COMMANDS[name].handler(session, args)
    return session.lines


@pytest.fixture
def five_hundred(tmp_path: Path) -> Said:
    controller = Controller(Settings(runs_dir=str(tmp_path / "runs")))
    for n in range(1, 501):
        controller.add_node(Host(name=f"node{n}", address=f"10.0.{n // 250}.{n % 250}", group="g"))
    return Said(controller)


def rows(lines: list[str]) -> list[str]:
    """The host rows of a view: lines that start with a host name."""
    return [line.split()[0] for line in lines if re.match(r"\s*node\d+\s", line)]


async def test_info_nodes_at_500_hosts_is_a_summary_and_a_host_set_selects_rows(five_hundred: Said) -> None:
    summary = await term(five_hundred, "info nodes")
    assert summary[0].strip() == "500 hosts"
    assert re.search(r"pooled\s+.\s+500\s+.\s+node\[1-500\]", "\n".join(summary))
    assert rows(summary) == [] and len(summary) < 10  # no row per host: a summary and how to see details
    assert "info nodes --failed, or info nodes 'HOSTSET' such as 'node[1-20]'" in summary[-1]

    selected = await term(five_hundred, "info nodes 'node[1-20]'")
    assert selected[0].strip() == "500 hosts"  # the summary first, still
    assert rows(selected) == [f"node{n}" for n in range(1, 21)]
    assert "20 selected" in "\n".join(selected)
    assert len(selected) < 40

    none_failed = await term(five_hundred, "info nodes --failed")
    assert rows(none_failed) == [] and "0 selected" in "\n".join(none_failed)
    with pytest.raises(Exception, match="too many arguments"):
        await term(five_hundred, "info nodes node1 node2")


def nodes(count: int, failed: dict[str, str]) -> list[dict[str, Any]]:
    """The plain data of ``info("nodes")`` for a run of ``count`` hosts, some of them failed."""
    out = []
    for n in range(1, count + 1):
        name = f"node{n}"
        state = failed.get(name, "running")
        out.append({"name": name, "state": state, "component": "w" if n % 2 else "v", "agent_pid": 1000 + n})
    return out


def render(view: Any) -> list[str]:
    console = Console(width=WIDTH, no_color=True, highlight=False)
    with console.capture() as captured:
        console.print(view)
    return captured.get().splitlines()


def test_failed_hosts_among_500_come_first_as_counts_then_as_rows_with_failed() -> None:
    failed = {"node7": "failed", "node123": "lost", "node400": "recovering", "node401": "replaced"}
    data = nodes(500, failed)
    whole = render(nodes_view(data))
    text = "\n".join(whole)
    assert re.search(r"running\s+.\s+496\s", text) and re.search(r"failed\s+.\s+1\s+.\s+node7", text)
    assert re.search(r"w\s+.\s+250\s+.\s+running 247, lost 1, failed 1, replaced 1", text)
    assert rows(whole) == [] and len(whole) < 20

    only_failed = render(nodes_view(data, failed=True))
    assert rows(only_failed) == ["node7", "node123", "node400", "node401"]
    both = render(nodes_view(data, failed=True, hostset="node[1-200]"))
    assert rows(both) == ["node7", "node123"]
    few = render(nodes_view(nodes(DETAIL_ROWS, {})))
    assert len(rows(few)) == DETAIL_ROWS  # few hosts: every row
