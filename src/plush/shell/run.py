"""``plush run SPEC``: run an application on local sandbox hosts (or a pool file's, ``-d``) and stream its output.

A face of :class:`~plush.controller.api.Controller`: load the spec, run it (the run connects the local
sandbox hosts it needs in its run directory; with ``-d POOLFILE`` (the ``pool`` setting) or ``--discover
COMMAND`` (the ``discover`` setting), the pool's hosts the matcher chose, under their names; ``--seed N``
(the ``seed`` setting) shuffles the pool before matching, as ``plush plan --seed N`` does), quit.

Output lines are prefixed with host and process path (``[local-3 /filedist/senders/serve/srv] ...``);
stderr lines go to stderr. The first Ctrl-C (or SIGTERM) stops the run on request (:meth:`Controller.stop`:
processes stopped, outputs and logs collected, agents stopped; the report says STOPPED); a second one forces.
Exit status: 0 when the application completed, 1 when it failed or aborted, 2 when the spec was rejected,
130 after Ctrl-C or SIGTERM (stopped by request).

A batch run listens on a control socket too (:mod:`plush.api.server`, the ops of :data:`BATCH_OPS`), so that
``plush info``, ``release``, ``fail``, ``abort`` and ``quit`` work against it from another terminal; ``plush
quit`` stops it on request (STOPPED, exit 0). Without SPEC, ``plush run`` is a client of a running controller
(``plush serve``, :mod:`plush.shell.runclient`): it runs the loaded application there and shows it as a batch
run does -- the live view, plain lines, ``--json``, ``--fold`` (:class:`~plush.shell.runface.Face` for both),
the same last lines (:func:`plush.shell.console.end_status`); ``--detach`` prints the run id once started.
This module imports asyncio and the controller only inside the batch path: the client path starts fast.
"""

from __future__ import annotations

import contextlib
import signal
import sys
from typing import TYPE_CHECKING, Any

import click

from plush.shell.cli import clean_up_dead_runs, cli, load_cli_settings, notice, warn
from plush.shell.client import CONTROLLER_HELP
from plush.shell.console import LineWriter, end_status
from plush.shell.options import DISCOVER_HELP, NAME_HELP, POOL_HELP, SEED_HELP, parse_hosts

if TYPE_CHECKING:
    from plush.shell.runface import Face


#: ``--hosts`` of ``plush run`` (``plush serve`` takes a pool size instead)
HOSTS_HELP = "N hosts per component (COMPONENT=N: for one component; repeat for several)."


@cli.command("run")
@click.argument("spec", type=click.Path(dir_okay=False), required=False)
@click.option("--hosts", "hosts", multiple=True, metavar="N|COMPONENT=N", help=HOSTS_HELP)
@click.option("-d", "--pool", "pool_file", default=None, metavar="POOLFILE", help=POOL_HELP)
@click.option("--discover", default=None, metavar="COMMAND", help=DISCOVER_HELP)
@click.option("--seed", default=None, metavar="N", help=SEED_HELP)
@click.option("--runs-dir", default=None, help="Where results go (default: ./plush-runs).")
@click.option("--quiet", "-q", is_flag=True, help="Do not stream process output (it is still logged).")
@click.option("--plain", is_flag=True, help="Plain lines, as when the output is not a terminal (no live view).")
@click.option("--json", "json_events", is_flag=True, help="One event per line on stdout (JSON), no live view.")
@click.option("--fold", "fold_output", is_flag=True, help="Gather identical output across hosts, at the end.")
@click.option("--name", default=None, metavar="NAME", help=NAME_HELP)
@click.option("--detach", is_flag=True, help="Without SPEC: print the run id once started and return.")
@click.option("--controller", "controller_name", metavar="NAME", default=None, help=CONTROLLER_HELP)
def run_command(
    spec: str | None,
    hosts: tuple[str, ...],
    pool_file: str | None,
    discover: str | None,
    seed: str | None,
    runs_dir: str | None,
    quiet: bool,
    plain: bool,
    json_events: bool,
    fold_output: bool,
    name: str | None,
    detach: bool,
    controller_name: str | None,
) -> None:
    """Run the application of SPEC on local sandbox hosts, or on the hosts of a pool file (-d) or of a
    discovery command (--discover). Without SPEC: run the application loaded into a running controller
    (plush serve), on its hosts."""
    if json_events and fold_output:
        raise click.UsageError("--fold and --json: one or the other (--json prints the output as events)")
    if spec is None:
        from plush.shell.runclient import run_on_controller
        from plush.shell.runface import Face, live_terminal

        given = {"-d": pool_file, "--discover": discover, "--runs-dir": runs_dir, "--name": name}
        wrong = [flag for flag, value in given.items() if value is not None]
        if wrong:
            raise click.UsageError(f"{', '.join(wrong)}: only with SPEC (a controller has its own)")
        live = not plain and not detach and live_terminal()
        face = Face(quiet=quiet, json_events=json_events, fold=fold_output, live=live)
        sys.exit(run_on_controller(controller_name, parse_hosts(hosts), seed, face, detach=detach))
    for flag, value in {"--detach": detach or None, "--controller": controller_name}.items():
        if value is not None:
            raise click.UsageError(f"{flag}: only without SPEC (a run of the loaded application of a controller)")
    import asyncio

    from plush.controller.api import Controller
    from plush.shell.options import settings_pool

    flags = {"runs_dir": runs_dir, "pool": pool_file, "discover": discover, "seed": seed}
    settings = load_cli_settings(flags)
    notes = clean_up_dead_runs()  # printed after the first line, which scripts parse
    controller = Controller(settings)
    project = controller.load(spec)
    found = settings_pool(settings)
    pool = found[0] if found is not None else None
    from plush.shell.runface import Face, live_terminal

    face = Face(quiet=quiet, json_events=json_events, fold=fold_output, live=not plain and live_terminal())
    code = asyncio.run(_run(controller, project, parse_hosts(hosts), face.writer, notes, pool, name, face))
    face.writer_flush()
    sys.exit(code)


#: what a batch run's control socket serves: watching and steering, not loading or connecting
BATCH_OPS = ("info", "release", "fail", "restart", "abort", "stop", "quit", "subscribe")


async def _control_server(controller: Any, name: str | None) -> Any:
    """The batch run's control socket (``plush info``, ``quit``, ... from another terminal); None, with a
    warning, when it cannot be had: the run goes on without it."""
    from plush.api.server import ControlServer
    from plush.errors import PlushError

    def on_quit(reason: str) -> None:
        controller.stop(reason)

    server = ControlServer(controller, name=name, kind="run", on_quit=on_quit, ops=BATCH_OPS)
    try:
        await server.start()
    except (PlushError, OSError) as exc:
        if name is not None:
            raise
        warn(f"no control socket for this run: {exc}")
        return None
    return server


async def _run(
    controller: Any,
    project: Any,
    hosts: dict[str, int],
    writer: LineWriter | None,
    notes: list[str] | None = None,
    pool: Any = None,
    control_name: str | None = None,
    face: Face | None = None,
) -> int:
    import asyncio

    from plush.api.handlers import run_summary

    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    interrupts = 0

    def on_signal(sig: int) -> None:
        nonlocal interrupts
        interrupts += 1
        if interrupts == 1:
            click.echo("plush: stopping (Ctrl-C again to force)", err=True)
            controller.stop(f"stopped by request ({signal.Signals(sig).name})")
        elif task is not None:
            task.cancel()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal, sig)
    if face is None:
        from plush.shell.runface import Face

        face = Face()
    server = await _control_server(controller, control_name)
    events = controller.subscribe(kinds=face.kinds)
    printer = asyncio.create_task(face.consume(events))
    animation = asyncio.create_task(face.animate(controller))
    results: str | None = None

    def started(rundir: Any) -> None:
        nonlocal results
        results = str(rundir.root)
        click.echo(f"plush: run {rundir.run_id}: results in {rundir.root}", err=True)
        for note in notes or ():
            click.echo(note, err=True)

    try:
        # load (done) -> run: it connects the sandbox hosts it needs, in its run directory -> quit
        result = await controller.run(
            project, hosts=hosts, on_output=writer, on_start=started, on_notice=notice, pool=pool
        )
        await controller.quit()
    except asyncio.CancelledError:
        click.echo("plush: forced stop", err=True)
        return 130
    finally:
        events.close()
        await printer
        animation.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await animation
        face.end(results)
        if server is not None:
            server.ended()
            await server.close()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
    if result.error is not None:  # the run directory could not be written: the run was stopped (one line)
        raise result.error
    return end_status(run_summary(result), interrupts)
