"""``plush run SPEC``: run an application on local sandbox hosts and stream its output.

Output lines are prefixed with host and process path (``[local-3 /filedist/senders/serve/srv] ...``);
stderr lines go to stderr. The first Ctrl-C stops the run gracefully (processes stopped, logs collected,
agents stopped); a second one forces. Exit status: 0 when the application completed, 1 when it failed or
aborted, 2 when the spec was rejected, 130 after Ctrl-C.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from typing import Any

import click

from plush.shell.cli import cli, load_cli_settings, notice, reports_errors


class LineWriter:
    """Prefixes every complete output line with its host and process; keeps partial lines until complete."""

    def __init__(self) -> None:
        self._partial: dict[tuple[str, str, int, str], bytes] = {}

    def __call__(self, host: str, path: str, instance: int, stream: str, data: bytes) -> None:
        key = (host, path, instance, stream)
        buf = self._partial.pop(key, b"") + data
        *lines, rest = buf.split(b"\n")
        if rest:
            self._partial[key] = rest
        if lines:
            self._emit(key, lines)

    def _emit(self, key: tuple[str, str, int, str], lines: list[bytes]) -> None:
        host, path, instance, stream = key
        tag = f"[{host} {path}{'#' + str(instance) if instance > 1 else ''}] "
        out = sys.stderr if stream == "stderr" else sys.stdout
        out.write("".join(tag + line.decode("utf-8", "replace") + "\n" for line in lines))
        out.flush()

    def flush(self) -> None:
        for key, rest in list(self._partial.items()):
            self._emit(key, [rest])
        self._partial.clear()


def parse_hosts(values: tuple[str, ...]) -> dict[str, int]:
    wanted: dict[str, int] = {}
    for value in values:
        name, sep, count = value.rpartition("=")
        if not sep:
            name, count = "*", value
        try:
            wanted[name] = int(count)
        except ValueError:
            raise click.BadParameter(f"{value!r}: expected N or COMPONENT=N", param_hint="--hosts") from None
    return wanted


@cli.command("run")
@click.argument("spec", type=click.Path(dir_okay=False))
@click.option("--hosts", "hosts", multiple=True, metavar="N|COMPONENT=N", help="Local hosts per component.")
@click.option("--runs-dir", default=None, help="Where results go (default: ./plush-runs).")
@click.option("--quiet", "-q", is_flag=True, help="Do not stream process output (it is still logged).")
@reports_errors
def run_command(spec: str, hosts: tuple[str, ...], runs_dir: str | None, quiet: bool) -> None:
    """Run the application of SPEC on local sandbox hosts."""
    from plush.controller.api import Controller

    settings = load_cli_settings({"runs_dir": runs_dir})
    controller = Controller(settings)
    project = controller.load(spec)
    writer = LineWriter()
    code = asyncio.run(_run(controller, project, parse_hosts(hosts), None if quiet else writer))
    writer.flush()
    sys.exit(code)


async def _run(controller: Any, project: Any, hosts: dict[str, int], writer: LineWriter | None) -> int:
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    interrupts = 0

    def on_signal() -> None:
        nonlocal interrupts
        interrupts += 1
        if interrupts == 1:
            click.echo("plush: stopping (Ctrl-C again to force)", err=True)
            controller.abort("interrupted by the user")
        elif task is not None:
            task.cancel()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal)
    events = controller.subscribe()
    printer = asyncio.create_task(_print_events(events))

    def started(rundir: Any) -> None:
        click.echo(f"plush: run {rundir.run_id}: results in {rundir.root}", err=True)

    try:
        result = await controller.run(project, hosts=hosts, on_output=writer, on_start=started, on_notice=notice)
    except asyncio.CancelledError:
        click.echo("plush: forced stop", err=True)
        return 130
    finally:
        events.close()
        await printer
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
    o = result.outcome
    took = o.timings.get("stopped", 0.0)
    if o.ok:
        click.echo(f"plush: run {result.rundir.run_id} completed in {took:.2f}s", err=True)
        return 0
    if result.report is not None and result.report.entries and not interrupts:
        click.echo(result.report.render_text(), err=True)
    click.echo(f"plush: run {result.rundir.run_id} FAILED: {o.reason}", err=True)
    click.echo(f"plush: failure report in {result.rundir.root / 'report.txt'}", err=True)
    return 130 if interrupts else 1


_SHOWN = {"block.failed", "barrier.released", "host.failed", "host.install_failed", "process.exited"}


async def _print_events(events: Any) -> None:
    async for event in events:
        if event.name not in _SHOWN:
            continue
        if event.name == "process.exited" and (event.data.get("code") == 0 or event.data.get("action") == "stopped"):
            continue  # success, or stopped by plush at the end of the run: nothing to tell
        click.echo(f"plush: {event.describe()}", err=True)
