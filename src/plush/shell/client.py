"""``plush`` commands that talk to a running controller: ``load``, ``connect``, ``create-resources``,
``disconnect``, ``info``, ``release``, ``fail``, ``restart``, ``abort``, ``save``, ``quit`` (and ``plush run``
without SPEC, in :mod:`plush.shell.run`).

Role: a thin client of the control socket (:mod:`plush.api.control`, :mod:`plush.api.runtime`). The
controller is the one named by ``--controller NAME``, else the only one started in the current directory.
These commands start fast: they import neither asyncio nor the controller, only the standard library, click
and the light modules of the control channel.

Exit status: 0 done; what the controller answered for a refused request (1: refused, such as ``no application
is running``; 2: a bad request or a rejected spec); 5 no controller found (or it does not answer); 6 several
controllers started in this directory (choose one with ``--controller NAME``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from typing import Any

import click

from plush.shell.cli import cli

__all__ = ["call", "controller_option", "render_info"]

CONTROLLER_HELP = "The controller to talk to (default: the only one started in this directory)."


def controller_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--controller", "controller_name", metavar="NAME", default=None, help=CONTROLLER_HELP)(fn)


def call(
    name: str | None,
    op: str,
    args: dict[str, Any] | None = None,
    on_event: Callable[[dict[str, Any]], None] | None = None,
) -> Any:
    """Send one request to the controller (``name``, or the only one of this directory); its result."""
    from plush.api.control import ControlClient
    from plush.api.runtime import find_controller

    entry = find_controller(name)
    with ControlClient(entry.socket, entry.name) as client:
        return client.call(op, args, on_event)


def _say(message: str) -> None:
    click.echo(f"plush: {message}", err=True)


@cli.command("load")
@click.argument("spec", type=click.Path(dir_okay=False))
@controller_option
def load_command(spec: str, controller_name: str | None) -> None:
    """Load the application of SPEC into a running controller (it becomes the one `plush run` runs)."""
    from plush.api.control import RemoteError

    try:
        loaded = call(controller_name, "load", {"path": os.path.abspath(spec)})
    except RemoteError as exc:
        if not exc.problems:
            raise
        for line in exc.problems:
            click.echo(line, err=True)
        raise RemoteError(f"{spec}: {len(exc.problems)} problems", exc.exit_code) from None
    _say(f"loaded {loaded['application']} from {loaded['spec']}")


def _hosts(values: tuple[str, ...]) -> list[str]:
    from plush.resources.hostset import expand

    return [name for value in values for name in expand(value)]


@cli.command("connect")
@click.argument("hosts", nargs=-1, required=True)
@controller_option
def connect_command(hosts: tuple[str, ...], controller_name: str | None) -> None:
    """Connect HOSTS: a number N of new local sandbox hosts, or host names of the controller's pool
    (host sets such as node[1-3] too); waits until each joined."""
    from plush.resources.hostset import fold

    wanted: int | list[str] = int(hosts[0]) if len(hosts) == 1 and hosts[0].isdigit() else _hosts(hosts)
    connected = call(controller_name, "connect", {"hosts": wanted})["connected"]
    _say(f"connected {fold(connected) or 'no host'}")


@cli.command("create-resources")
@controller_option
def create_resources_command(controller_name: str | None) -> None:
    """Create the hosts the loaded application's <resource type="netns"> asks for (network namespaces of this
    machine; the controller must run as root), leased until the next run ends; then connect every pool host
    not connected."""
    from plush.resources.hostset import fold

    done = call(controller_name, "create_resources")
    if done["cluster"]:
        _say(f"created {fold(done['created'])} (cluster {done['cluster']}, removed when the next run ends)")
    _say(f"connected {fold(done['connected']) or 'no host'}")


@cli.command("disconnect")
@click.argument("hosts", nargs=-1)
@controller_option
def disconnect_command(hosts: tuple[str, ...], controller_name: str | None) -> None:
    """Stop the agents of HOSTS (default: every connected host); refused for hosts of the run in progress."""
    from plush.resources.hostset import fold

    names = _hosts(hosts) if hosts else None
    call(controller_name, "disconnect", {"hosts": names})
    _say(f"disconnected {fold(names) if names else 'every host'}")


@cli.command("info")
@click.argument("what", type=click.Choice(["nodes", "mesh", "control", "app"]))
@click.option("--json", "as_json", is_flag=True, help="Print the plain data as JSON.")
@controller_option
def info_command(what: str, as_json: bool, controller_name: str | None) -> None:
    """What a running controller knows about its nodes, its mesh, itself (control) or its application."""
    data = call(controller_name, "info", {"what": what})
    if as_json:
        click.echo(json.dumps(data, indent=2, sort_keys=True))
    else:
        click.echo(render_info(what, data))


#: the columns of ``plush info nodes``
NODE_COLUMNS = ("name", "state", "agent_pid", "component", "address", "group")


def render_info(what: str, data: Any) -> str:
    """The readable form of ``info``: a table of the nodes, ``key  value`` lines for the others."""
    if what == "nodes":
        rows = [[_cell(node.get(c)) for c in NODE_COLUMNS] for node in data]
        head = [c.upper().replace("AGENT_PID", "AGENT") for c in NODE_COLUMNS]
        widths = [max(len(x) for x in column) for column in zip(head, *rows, strict=False)]
        lines = ["  ".join(x.ljust(w) for x, w in zip(row, widths, strict=True)).rstrip() for row in [head, *rows]]
        return "\n".join([*lines, f"({len(rows)} hosts)"])
    pairs = list(_flat("", data))
    width = max((len(k) for k, _ in pairs), default=0)
    return "\n".join(f"{k.ljust(width)}  {v}" for k, v in pairs)


def _cell(value: Any) -> str:
    return "-" if value is None else str(value)


def _flat(prefix: str, value: Any) -> Iterator[tuple[str, str]]:
    if isinstance(value, dict) and value:
        for key, inner in value.items():
            yield from _flat(f"{prefix}.{key}" if prefix else str(key), inner)
    elif isinstance(value, list):
        yield prefix, ", ".join(_cell(x) for x in value) or "-"
    else:
        yield prefix, _cell(value)


@cli.command("release")
@click.argument("barrier")
@controller_option
def release_command(barrier: str, controller_name: str | None) -> None:
    """Release BARRIER of the run in progress now."""
    call(controller_name, "release", {"barrier": barrier})
    _say(f"released {barrier}")


@cli.command("fail")
@click.argument("host")
@controller_option
def fail_command(host: str, controller_name: str | None) -> None:
    """Mark HOST of the run in progress failed (it is restarted or replaced, as its failure would be)."""
    call(controller_name, "fail", {"host": host})
    _say(f"marked {host} failed")


@cli.command("restart")
@click.argument("target", required=False, metavar="[HOST|BLOCK]")
@click.argument("hosts", required=False, metavar="[HOSTS]")
@controller_option
def restart_command(target: str | None, hosts: str | None, controller_name: str | None) -> None:
    """Restart, in the run in progress, HOST's agent (a host set too), the processes of BLOCK (a block path)
    on every host where it runs (or on HOSTS only), or without argument the application; also when the
    restart policy is spent (the operator's override)."""
    if hosts is not None and (target is None or not target.startswith("/")):
        raise click.UsageError("HOSTS goes after a BLOCK path: plush restart /APP/COMPONENT/BLOCK node[1-3]")
    done = call(controller_name, "restart", {"target": target, "hosts": hosts})
    _say(done["message"])


@cli.command("save")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--force", "-f", is_flag=True, help="Replace FILE if it exists.")
@controller_option
def save_command(file: str, force: bool, controller_name: str | None) -> None:
    """Write the controller's loaded application as a Plush XML spec FILE (*.xml); an existing FILE is
    replaced only with --force."""
    saved = call(controller_name, "save", {"path": os.path.abspath(file), "overwrite": force})["saved"]
    _say(f"saved the application in {saved}")


@cli.command("abort")
@controller_option
def abort_command(controller_name: str | None) -> None:
    """Abort the run in progress: it ends as failed, 'aborted by the user' its root cause."""
    call(controller_name, "abort", {"reason": "aborted by the user (plush abort)"})
    _say("aborted the run in progress")


@cli.command("quit")
@controller_option
def quit_command(controller_name: str | None) -> None:
    """End a controller: the run in progress is stopped (STOPPED, not failed), every host disconnected;
    returns once the controller has quit."""
    done = call(controller_name, "quit", {"reason": "stopped by plush quit"})
    _say(f"{done['quit']} quit")
