"""``plush serve``: a long-lived controller in the foreground, driven by the commands that talk to it.

A face of :class:`~plush.controller.api.Controller` and of its control socket (:mod:`plush.api.server`): take a
name, listen, connect the pool (``--hosts N``: a pool of N local sandbox hosts; ``-d POOLFILE`` or the ``pool``
setting: every host of the pool file), say where the HTTP API and the web UI listen (``--http``; the token is
never printed: ``plush web`` prints the sign-in address), print ``plush: serving NAME: N hosts connected``
once they are, and
keep connecting the hosts that did not join, with the restart back-off (``restart_backoff_initial`` doubling
up to ``restart_backoff_max``), until they do. Then serve ``plush load``, ``run``, ``info``, ... until ``plush
quit``, Ctrl-C or SIGTERM: the run in progress is stopped (STOPPED), every host disconnected, the socket
removed; exit status 0. A second Ctrl-C forces the controller out (130; agents notice and stop themselves).
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import click

from plush.shell.cli import clean_up_dead_runs, cli, load_cli_settings, warn
from plush.shell.options import NAME_HELP

if TYPE_CHECKING:
    from plush.controller.api import Controller
    from plush.resources.host import Host

#: ``--hosts`` of ``plush serve`` (``plush run`` takes counts per component)
SERVE_HOSTS_HELP = "A pool of N sandbox hosts, connected at start."
SERVE_POOL_HELP = "Connect every host of this pool file at start (default: the `pool` setting)."
HTTP_HELP = "Serve the HTTP JSON API here (default address 127.0.0.1; beyond loopback: TLS with the controller's CA)."
XMLRPC_HELP = "Serve Plush's XML-RPC API here (default address 127.0.0.1; loopback only without --xmlrpc-public)."
XMLRPC_PUBLIC_HELP = "Let --xmlrpc listen beyond loopback (XML-RPC has no authentication: see docs/api.md)."


@cli.command("serve")
@click.option("--hosts", type=click.IntRange(min=0), default=None, metavar="N", help=SERVE_HOSTS_HELP)
@click.option("-d", "--pool", "pool_file", default=None, metavar="POOLFILE", help=SERVE_POOL_HELP)
@click.option("--name", default=None, metavar="NAME", help=NAME_HELP)
@click.option("--runs-dir", default=None, help="Where results go (default: ./plush-runs).")
@click.option("--http", "http", default=None, metavar="[ADDR:]PORT", help=HTTP_HELP)
@click.option("--xmlrpc", default=None, metavar="[ADDR:]PORT", help=XMLRPC_HELP)
@click.option("--xmlrpc-public", is_flag=True, help=XMLRPC_PUBLIC_HELP)
@click.option("--show-token", is_flag=True, help="Print the HTTP API's token (created once) and exit.")
def serve_command(
    hosts: int | None,
    pool_file: str | None,
    name: str | None,
    runs_dir: str | None,
    http: str | None,
    xmlrpc: str | None,
    xmlrpc_public: bool,
    show_token: bool,
) -> None:
    """Run a controller until `plush quit` (or Ctrl-C): connect its hosts, then serve `plush load`, `run`,
    `info`, `release`, `fail`, `abort` from other terminals (and programs: `--http`, `--xmlrpc`)."""
    import asyncio

    from plush.shell.options import settings_pool

    if show_token:
        from plush.api.token import ensure_token
        from plush.config import state_dir

        click.echo(ensure_token(state_dir()))
        return
    if hosts is not None and pool_file is not None:
        raise click.UsageError("-d and --hosts: one or the other")
    listen = {"http": _listen(http, "--http"), "xmlrpc": _listen(xmlrpc, "--xmlrpc")}
    if listen["xmlrpc"] is not None and not xmlrpc_public:
        from plush.api.http import is_loopback

        if not is_loopback(listen["xmlrpc"][0]):
            raise click.UsageError(
                f"--xmlrpc {xmlrpc}: XML-RPC has no authentication: it listens on loopback only "
                "unless --xmlrpc-public is given (see docs/api.md)"
            )
    settings = load_cli_settings({"runs_dir": runs_dir, "pool": pool_file})
    for note in clean_up_dead_runs():
        click.echo(note, err=True)
    chosen: int | list[Host] = hosts or 0
    if hosts is None:
        found = settings_pool(settings)
        chosen = list(found[0]) if found is not None else 0
    sys.exit(asyncio.run(_serve(settings, chosen, name, listen)))


def _listen(text: str | None, flag: str) -> tuple[str, int] | None:
    from plush.api.http import parse_listen

    if text is None:
        return None
    try:
        return parse_listen(text)
    except ValueError as exc:
        raise click.UsageError(f"{flag}: {exc}") from None


async def _serve(
    settings: Any, hosts: int | list[Host], name: str | None, listen: dict[str, tuple[str, int] | None]
) -> int:
    import asyncio
    import contextlib
    import signal

    from plush.api.server import ControlServer
    from plush.controller.api import Controller

    controller = Controller(settings)
    quitting = asyncio.Event()
    why = ["quit"]

    def on_quit(reason: str) -> None:
        why[0] = reason
        quitting.set()

    server = ControlServer(controller, name=name, kind="serve", on_quit=on_quit)
    await server.start()
    faces = contextlib.AsyncExitStack()
    try:
        await _faces(faces, controller, server, listen)
    except BaseException:
        await faces.aclose()
        await server.close()
        raise
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    interrupts = 0

    def on_signal(sig: int) -> None:
        nonlocal interrupts
        interrupts += 1
        if interrupts == 1:
            click.echo("plush: quitting (Ctrl-C again to force)", err=True)
            on_quit(f"stopped by request ({signal.Signals(sig).name})")
        elif task is not None:
            task.cancel()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal, sig)
    connecting = loop.create_task(_connect(controller, server.name, hosts))
    try:
        await quitting.wait()
        connecting.cancel()
        await asyncio.gather(connecting, return_exceptions=True)
        await controller.quit(why[0])
        server.ended()
    except asyncio.CancelledError:
        click.echo("plush: forced stop", err=True)
        return 130
    finally:
        await faces.aclose()
        await server.close()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
    click.echo(f"plush: {server.name} quit ({why[0]})", err=True)
    return 0


async def _faces(stack: Any, controller: Controller, server: Any, listen: dict[str, tuple[str, int] | None]) -> None:
    """Start the HTTP and XML-RPC listeners asked for (closed by ``stack``), and say where they listen."""
    from plush.errors import PlushError

    if listen["http"] is not None:
        from plush.api.http import HttpApi, listener_tls
        from plush.api.token import ensure_token
        from plush.config import state_dir
        from plush.web.pages import WebUI

        host, port = listen["http"]
        token, tls = ensure_token(state_dir()), listener_tls(host, state_dir())
        api = HttpApi(controller, server, token, host, port, tls, front=WebUI(token, secure=tls is not None))
        try:
            await api.start()
        except OSError as exc:
            raise PlushError(f"--http: cannot listen on {host}:{port}: {exc.strerror}") from None
        stack.push_async_callback(api.close)
        server.web_url = f"{api.url}/"
        server.web_token = token
        click.echo(f"plush: HTTP API at {api.url}", err=True)
        click.echo(f"plush: web UI at {api.url}/ (sign in: plush web)", err=True)
    if listen["xmlrpc"] is not None:
        from plush.api.xmlrpc import XmlRpcApi

        host, port = listen["xmlrpc"]
        rpc = XmlRpcApi(controller, server, host, port)
        try:
            await rpc.start()
        except OSError as exc:
            raise PlushError(f"--xmlrpc: cannot listen on {host}:{port}: {exc.strerror}") from None
        stack.push_async_callback(rpc.close)
        click.echo(f"plush: XML-RPC at {rpc.url}", err=True)


async def _connect(controller: Controller, name: str, hosts: int | list[Host]) -> None:
    """Connect ``hosts``, say so, then retry those that did not join until they do."""
    import asyncio
    import contextlib

    from plush.errors import PlushError
    from plush.resources.hostset import fold

    if not hosts:
        click.echo(f"plush: serving {name}: 0 hosts connected", err=True)
        return
    before = {node["name"] for node in controller.info("nodes")}
    try:
        await controller.connect(hosts)
    except PlushError as exc:
        warn(str(exc))
    wanted = [node["name"] for node in controller.info("nodes") if node["name"] not in before]
    late = _not_joined(controller, wanted)
    still = f" ({len(late)} still connecting)" if late else ""
    click.echo(f"plush: serving {name}: {len(wanted) - len(late)} hosts connected{still}", err=True)
    delay = controller.settings.restart_backoff_initial
    while late:
        await asyncio.sleep(delay)  # the back-off between attempts, not a synchronisation
        delay = min(delay * 2, controller.settings.restart_backoff_max)
        with contextlib.suppress(PlushError):  # said once above; the next attempt follows
            await controller.connect(late)
        joined = [n for n in late if n not in _not_joined(controller, late)]
        if joined:
            click.echo(f"plush: {fold(joined)} connected (late)", err=True)
        late = _not_joined(controller, late)


def _not_joined(controller: Controller, names: list[str]) -> list[str]:
    states = {node["name"]: node["state"] for node in controller.info("nodes")}
    return [n for n in names if states.get(n) in ("pooled", "failed", "gone", "replaced", None)]
