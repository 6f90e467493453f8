"""``plush copy FILE -w HOSTSET DEST`` and ``plush gather REMOTE_PATH -w HOSTSET DIR``: files to and from many
hosts, checked by sha256, through the hosts' content caches.

Faces of :meth:`plush.Controller.copy` and :meth:`plush.Controller.gather`, warm or cold as ``plush exec``
(:mod:`plush.shell.exec_command`): without ``--hosts``/``-d``, one request to the running controller named by
``--controller`` or started in this directory (this client imports neither asyncio nor the controller);
otherwise, or when no controller was started here, agents started for the command. Both paths print the same
summary (:func:`~plush.controller.copyresult.transfer_lines`, on stderr) and exit alike.

Paths on hosts (``DEST``, ``REMOTE_PATH``) are relative to each host's exec directory (docs/commands.md).
``plush gather`` saves each host's file as ``DIR/NAME.HOST`` (``NAME``: the remote path's base name).

Exit status: 0 every host done; 1 a host failed (no such file, a checksum that did not match, ...); 124 a host
timed out; 255 a host was unreachable; 2 the command cannot be carried out as given (a path refused, no host
selected, FILE unreadable); 5/6 as ``plush exec``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

from plush.shell.cli import cli, load_cli_settings
from plush.shell.exec_command import COLD_POOL_HELP, CONTROLLER_HELP, HOSTS_HELP, cold_hosts, find_warm, on_cold_hosts

if TYPE_CHECKING:
    from plush.controller.api import Controller

__all__ = ["copy_command", "gather_command"]

#: seconds each host has by default (:data:`plush.controller.transfers.DEFAULT_TRANSFER_TIMEOUT`)
TIMEOUT = 300.0


def _common(fn: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed(
        [
            click.option("-w", "nodes", multiple=True, metavar="HOSTSET", help="These hosts (node[1-40,43])."),
            click.option("-g", "--group", default=None, metavar="GROUP", help="The hosts of this resource group."),
            click.option("-x", "exclude", multiple=True, metavar="HOSTSET", help="Not these hosts."),
            click.option("--timeout", default=TIMEOUT, type=float, metavar="S", help="Seconds per host (300)."),
            click.option("--controller", "controller_name", metavar="NAME", default=None, help=CONTROLLER_HELP),
            click.option("--hosts", "count", default=None, type=int, metavar="N", help=HOSTS_HELP),
            click.option("-d", "--pool", "pool_file", default=None, metavar="POOLFILE", help=COLD_POOL_HELP),
            click.option("--runs-dir", default=None, help="Cold path: where the hosts' directories go."),
        ]
    ):
        fn = option(fn)
    return fn


def _transfer(op: str, args: dict[str, Any], options: dict[str, Any]) -> None:
    """Carry out ``op`` (``copy`` or ``gather``, ``args`` its own arguments) warm or cold; print its summary,
    exit with its status."""
    from plush.controller.copyresult import TransferResult, transfer_lines

    timeout, count, pool_file = options["timeout"], options["count"], options["pool_file"]
    if not timeout > 0:
        raise click.BadParameter(f"{timeout}: expected a positive number of seconds", param_hint="--timeout")
    if count is not None and count < 1:
        raise click.BadParameter(f"{count}: expected a number of hosts >= 1", param_hint="--hosts")
    cold = count is not None or pool_file is not None
    if cold and options["controller_name"] is not None:
        raise click.UsageError("--controller and --hosts/-d: one or the other (warm or cold)")
    selection = {
        "hosts": ",".join(options["nodes"]) or None,
        "group": options["group"],
        "exclude": ",".join(options["exclude"]) or None,
        "timeout": timeout,
    }
    warm = None if cold else find_warm(options["controller_name"])
    if warm is not None:
        from plush.api.control import ControlClient

        with ControlClient(warm.socket, warm.name) as client:
            result = TransferResult.from_dict(client.call(op, {**args, **selection}))
    else:
        import asyncio

        from plush.controller.transfers import check_request

        check_request(op, args)  # before any agent starts
        settings = load_cli_settings({"runs_dir": options["runs_dir"], "pool": pool_file})
        hosts = cold_hosts(settings, count, selection["hosts"], selection["group"], selection["exclude"])
        chosen = {**selection, "hosts": ",".join(h.name for h in hosts), "group": None, "exclude": None}
        found: list[TransferResult] = []

        async def call(controller: Controller) -> int:
            method = controller.copy if op == "copy" else controller.gather
            found.append(await method(*args.values(), **chosen))
            return 0

        asyncio.run(on_cold_hosts(settings, hosts, call))
        result = found[0]
    for line in transfer_lines(result):
        click.echo(line, err=True)
    sys.exit(result.status)


@cli.command("copy")
@click.argument("file", type=click.Path(dir_okay=False))
@click.argument("dest")
@_common
def copy_command(file: str, dest: str, **options: Any) -> None:
    """Copy FILE to DEST on many hosts (-w/-g/-x select them, as for `plush exec`), checked by sha256.

    DEST is a path relative to each host's exec directory (no '..', not absolute; its directories are
    made); the file travels only to hosts whose content cache lacks it, and keeps FILE's permission bits.
    Warm or cold as `plush exec`: --hosts N or -d POOLFILE force the cold path."""
    _transfer("copy", {"source": os.path.abspath(file), "dest": dest}, options)


@cli.command("gather")
@click.argument("remote_path")
@click.argument("directory", metavar="DIR")
@_common
def gather_command(remote_path: str, directory: str, **options: Any) -> None:
    """Bring REMOTE_PATH from many hosts into DIR, each as DIR/NAME.HOST (NAME: its base name), checked by
    sha256.

    REMOTE_PATH is a path relative to each host's exec directory (no '..', not absolute); a symbolic link
    is never followed. Warm or cold as `plush exec`: --hosts N or -d POOLFILE force the cold path."""
    _transfer("gather", {"path": remote_path, "outdir": os.path.abspath(directory)}, options)
