"""Which hosts ``plush exec`` sends a command to, and the argv it sends (plush.controller.execs, pure parts)."""

from __future__ import annotations

import pytest

from plush.controller.execs import MAX_EXEC_LIMIT, ExecError, command_argv, run_exec, select_hosts
from plush.resources.host import Host, Pool
from plush.resources.hostset import HostSetError

KNOWN = {
    **{f"node{k}": Host(f"node{k}", "10.0.0.1", group="compute") for k in range(1, 11)},
    **{f"web{k}": Host(f"web{k}", "10.0.1.1", group="front") for k in range(1, 3)},
}
CONNECTED = [*(f"node{k}" for k in range(1, 11)), "web1"]  # web2 was disconnected


@pytest.mark.parametrize(
    ("hosts", "group", "exclude", "chosen"),
    [
        (None, None, None, CONNECTED),  # neither -w nor -g: every host of the mesh but those disconnected
        ("node[2-4,10]", None, None, ["node2", "node3", "node4", "node10"]),  # natural order
        (["web2", "node1"], None, None, ["node1", "web2"]),  # a disconnected host may be named
        (None, "front", None, ["web1", "web2"]),
        ("node1", "front", None, ["node1", "web1", "web2"]),  # -w and -g: their union
        (None, None, "node[1-9]", ["node10", "web1"]),
        ("node[1-3]", None, ["node2"], ["node1", "node3"]),
    ],
)
def test_selection(hosts: object, group: str | None, exclude: object, chosen: list[str]) -> None:
    assert select_hosts(KNOWN, CONNECTED, hosts, group, exclude) == chosen  # type: ignore[arg-type]


def test_unknown_hosts_an_unknown_group_and_an_empty_selection_are_refused_with_exit_2() -> None:
    with pytest.raises(ExecError, match=r"no host named node\[11-12\] here") as caught:
        select_hosts(KNOWN, CONNECTED, "node[1,11-12]")
    assert caught.value.exit_code == 2
    with pytest.raises(ExecError, match="no host of group 'db' here"):
        select_hosts(KNOWN, CONNECTED, group="db")
    with pytest.raises(ExecError, match="no host selected"):
        select_hosts(KNOWN, CONNECTED, "node1", exclude="node1")
    with pytest.raises(HostSetError):
        select_hosts(KNOWN, CONNECTED, "node[1-")


def test_the_argv_sent() -> None:
    assert command_argv(["uname", "-s"], shell=False) == ["uname", "-s"]
    assert command_argv("echo 'a b' c", shell=False) == ["echo", "a b", "c"]  # split as a shell would
    assert command_argv("echo $HOME | wc", shell=True) == ["/bin/sh", "-c", "echo $HOME | wc"]
    assert command_argv(["echo", "$HOME", "|", "wc"], shell=True) == ["/bin/sh", "-c", "echo $HOME | wc"]
    for empty in ([], "", "  "):
        with pytest.raises(ExecError, match="no command"):
            command_argv(empty, shell=isinstance(empty, str) and bool(empty))
    with pytest.raises(ExecError, match="cannot split"):
        command_argv("echo 'open", shell=False)


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"timeout": 0}, "timeout must be a positive"),
        ({"limit": MAX_EXEC_LIMIT + 1}, "output limit"),
        ({"hosts": "node1"}, "no host named node1"),
        ({}, "no host selected"),
    ],
)
async def test_a_command_that_cannot_be_sent_is_refused_before_anything_is(options: dict, match: str) -> None:
    with pytest.raises(ExecError, match=match):
        await run_exec(None, Pool(), ["true"], **options)
