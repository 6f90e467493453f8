"""``plush exec``: the distributed shell -- one command on many hosts, its output gathered (``-b``) or line by
line (``-L``), like ClusterShell's ``clush``.

A face of :meth:`plush.Controller.exec`. Options end at the first word of the command (``plush exec -b uname
-s`` runs ``uname -s``). Two halves:

- :func:`exec_on` -- the seam: given a :class:`~plush.controller.api.Controller` whose hosts are connected,
  run the command, write its output through ``emit(stream, line)``, save it in ``--outdir``, and return the
  exit status (docs/commands.md). The warm path (a running ``plush serve``) calls it inside the service;
  the cold path below calls it here;
- the cold path (no running controller): connect the hosts the command needs -- ``--hosts N`` (a pool of N
  local sandbox hosts) or ``-d POOL`` (the pool's hosts), only those selected by ``-w``/``-g``/``-x`` -- run
  the command, stop them.

Exit status: the highest remote status (a signal: 128 + its number); 124 when a host timed out; 255 when a
host was unreachable (before 124); 2 when the command cannot be carried out as given.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import click

from plush.shell.cli import cli, load_cli_settings
from plush.shell.options import POOL_HELP

if TYPE_CHECKING:
    from plush.config import Settings
    from plush.controller.api import Controller
    from plush.controller.gather import ExecResult, HostValues
    from plush.resources.host import Host

__all__ = ["OUTDIR_LIMIT", "ExecRequest", "exec_on"]

#: bytes of each stream a host sends back when its output is saved (``--outdir``): 4 MiB (a reply frame holds
#: both streams and must stay under the protocol's 16 MiB)
OUTDIR_LIMIT = 4 * 1024 * 1024

#: ``emit(stream, line)``: one line of text for ``"stdout"`` or ``"stderr"``
Emit = Callable[[str, str], None]


@dataclass(frozen=True)
class ExecRequest:
    """What ``plush exec`` was asked: the command and its hosts, how to show the output, where to save it."""

    cmd: tuple[str, ...]
    hosts: str | None = None
    group: str | None = None
    exclude: str | None = None
    timeout: float = 60.0
    shell: bool = False
    gather: bool = False
    outdir: Path | None = None


async def exec_on(controller: Controller, request: ExecRequest, emit: Emit) -> int:
    """Run ``request`` on ``controller``'s hosts, write its output through ``emit`` (``-b``: the folded
    blocks once every host answered; else each host's lines as its reply comes), save it in ``outdir``,
    and return the exit status."""
    from plush.controller.execs import EXEC_LIMIT
    from plush.controller.gather import HostOutput, fold_outputs, gathered_lines, host_lines, summary_lines

    def streamed(result: HostOutput) -> None:
        for line in host_lines(result.host, result.stdout):
            emit("stdout", line)
        for line in host_lines(result.host, result.stderr):
            emit("stderr", line)

    result = await controller.exec(
        list(request.cmd),
        request.hosts,
        group=request.group,
        exclude=request.exclude,
        timeout=request.timeout,
        shell=request.shell,
        limit=OUTDIR_LIMIT if request.outdir is not None else EXEC_LIMIT,
        on_result=None if request.gather else streamed,
    )
    if request.gather:
        values = _host_values(controller)
        for stream in ("stdout", "stderr"):
            outputs = {n: getattr(r, stream) for n, r in result.results.items()}
            for line in gathered_lines(fold_outputs(outputs, values)):
                emit(stream, line)
    for line in summary_lines(result, everything=request.gather):
        emit("stderr", line)
    if request.outdir is not None:
        await asyncio.to_thread(_save, result, request.outdir)
    return result.status


def _host_values(controller: Controller) -> Callable[[str], HostValues]:
    from plush.controller.gather import HostValues

    addresses = {n["name"]: n["address"] for n in controller.info("nodes")}

    def values(name: str) -> HostValues:
        return HostValues.of(name, addresses.get(name))

    return values


def _save(result: ExecResult, outdir: Path) -> None:
    """Each host's stdout and stderr in ``outdir/HOST.stdout`` and ``outdir/HOST.stderr``."""
    outdir.mkdir(parents=True, exist_ok=True)
    for name, answer in result.results.items():
        (outdir / f"{name}.stdout").write_bytes(answer.stdout)
        (outdir / f"{name}.stderr").write_bytes(answer.stderr)


# --- the cold path: start the agents for this command -----------------------------------------------------------


@cli.command("exec", context_settings={"allow_interspersed_args": False})
@click.option("-w", "nodes", multiple=True, metavar="HOSTSET", help="Run on these hosts (node[1-40,43]).")
@click.option("-g", "--group", default=None, metavar="GROUP", help="Run on the hosts of this resource group.")
@click.option("-x", "exclude", multiple=True, metavar="HOSTSET", help="Not on these hosts.")
@click.option("-b", "--gather", is_flag=True, help="Gather identical outputs under their host set.")
@click.option("-L", "lines", is_flag=True, help="Print each line as 'host: line' (the default).")
@click.option("--timeout", default=60.0, type=float, metavar="S", help="Kill the command after S seconds (60).")
@click.option("--shell", is_flag=True, help="Run CMD through 'sh -c' (its words joined by spaces).")
@click.option("--outdir", default=None, metavar="DIR", help="Save each host's output in DIR/HOST.stdout|.stderr.")
@click.option("--hosts", "count", default=None, type=int, metavar="N", help="A pool of N local sandbox hosts.")
@click.option("-d", "--pool", "pool_file", default=None, metavar="POOLFILE", help=POOL_HELP)
@click.option("--runs-dir", default=None, help="Where the hosts' directories go (default: ./plush-runs).")
@click.argument("cmd", nargs=-1, required=True)
def exec_command(
    nodes: tuple[str, ...],
    group: str | None,
    exclude: tuple[str, ...],
    gather: bool,
    lines: bool,
    timeout: float,
    shell: bool,
    outdir: str | None,
    count: int | None,
    pool_file: str | None,
    runs_dir: str | None,
    cmd: tuple[str, ...],
) -> None:
    """Run CMD on many hosts and gather its output. Options end at CMD's first word.

    Without a running controller, the hosts are started for this command and stopped after it: --hosts N
    (a pool of N local sandbox hosts, local-1 ... local-N) or -d POOLFILE (the pool's hosts), only those
    -w/-g/-x select."""
    if gather and lines:
        raise click.UsageError("-b and -L cannot be used together")
    if not timeout > 0:  # refused before any agent starts
        raise click.BadParameter(f"{timeout}: expected a positive number of seconds", param_hint="--timeout")
    if count is not None and count < 1:
        raise click.BadParameter(f"{count}: expected a number of hosts >= 1", param_hint="--hosts")
    settings = load_cli_settings({"runs_dir": runs_dir, "pool": pool_file})
    request = ExecRequest(
        cmd=cmd,
        hosts=",".join(nodes) or None,
        group=group,
        exclude=",".join(exclude) or None,
        timeout=timeout,
        shell=shell,
        gather=gather,
        outdir=Path(outdir).resolve() if outdir is not None else None,
    )
    hosts = _cold_hosts(settings, count, request)
    sys.exit(asyncio.run(_cold(settings, hosts, request)))


def _cold_hosts(settings: Settings, count: int | None, request: ExecRequest) -> list[Host]:
    """The hosts to start for the command: the sandbox's (``--hosts N``) or the pool's, those selected."""
    from plush.controller.execs import select_hosts
    from plush.resources.providers import LocalSandbox
    from plush.shell.options import settings_pool

    if count is not None:
        candidates = asyncio.run(LocalSandbox(count).hosts())
    else:
        found = settings_pool(settings)
        if found is None:
            raise click.UsageError("no controller is running: give --hosts N (local sandbox hosts) or -d POOLFILE")
        candidates = list(found[0])
    known = {h.name: h for h in candidates}
    names = select_hosts(known, known, request.hosts, request.group, request.exclude)
    return [known[n] for n in names]


async def _cold(settings: Settings, hosts: Sequence[Host], request: ExecRequest) -> int:
    from plush.controller.api import Controller
    from plush.errors import PlushError

    controller = Controller(settings)
    try:
        try:
            await controller.connect(hosts)
        except PlushError:
            if controller.mesh is None:
                raise
            # the hosts that did not connect are unreachable: the command runs on the others
        chosen = replace(request, hosts=",".join(h.name for h in hosts), group=None, exclude=None)
        return await exec_on(controller, chosen, _echo)
    finally:
        await controller.quit()


def _echo(stream: str, line: str) -> None:
    click.echo(line, err=stream == "stderr")
