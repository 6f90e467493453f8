"""``plush exec``: the distributed shell -- one command on many hosts, its output gathered (``-b``) or line by
line (``-L``), like ClusterShell's ``clush``.

A face of :meth:`plush.Controller.exec`. Options end at the first word of the command (``plush exec -b uname
-s`` runs ``uname -s``). Which controller runs it:

- the **warm path**: without ``--hosts``/``-d``, the running controller named by ``--controller NAME``, or the
  only one started in the current directory (as ``plush info`` finds it): one ``exec`` request on its control
  socket (:mod:`plush.api.shell_handlers`), each host's answer streamed back; this client prints it. It
  imports neither asyncio nor the controller (:func:`_warm`): the command costs the controller's time plus a
  Python start;
- the **cold path**: ``--hosts N`` (a pool of N local sandbox hosts) or ``-d POOL`` (the pool's hosts), or no
  controller started in this directory (then the ``pool`` setting): connect the hosts the command needs
  (only those ``-w``/``-g``/``-x`` select), run it (:func:`exec_on`, the seam), stop them.

Both print the same lines (:func:`plush.controller.gather.reply_lines` as each answer comes with ``-L``,
:func:`~plush.controller.gather.final_lines` at the end), save ``--outdir`` alike and exit alike.

Exit status: the highest remote status (a signal: 128 + its number); 124 when a host timed out; 255 when a
host was unreachable (before 124); 2 when the command cannot be carried out as given; 5/6 when
``--controller`` names no running controller / several were started here (as ``plush info``).
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from plush.shell.cli import cli, load_cli_settings
from plush.shell.options import POOL_HELP

if TYPE_CHECKING:
    from plush.api.runtime import Entry
    from plush.config import Settings
    from plush.controller.api import Controller
    from plush.controller.gather import ExecResult, HostValues, Line
    from plush.resources.host import Host

__all__ = ["OUTDIR_LIMIT", "ExecRequest", "cold_hosts", "exec_on", "find_warm", "on_cold_hosts"]

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

    @property
    def limit(self) -> int | None:
        """Bytes of each stream a host sends back: None for the controller's default."""
        return OUTDIR_LIMIT if self.outdir is not None else None

    def args(self) -> dict[str, Any]:
        """The arguments of the control socket's ``exec`` request."""
        return {
            "cmd": list(self.cmd),
            "hosts": self.hosts,
            "group": self.group,
            "exclude": self.exclude,
            "timeout": self.timeout,
            "shell": self.shell,
            "limit": self.limit,
        }


def _emit_all(lines: Sequence[Line], emit: Emit) -> None:
    for stream, line in lines:
        emit(stream, line)


async def exec_on(controller: Controller, request: ExecRequest, emit: Emit) -> int:
    """Run ``request`` on ``controller``'s hosts, write its output through ``emit`` (``-b``: the folded
    blocks once every host answered; else each host's lines as its reply comes), save it in ``outdir``,
    and return the exit status."""
    import asyncio

    from plush.controller.execs import EXEC_LIMIT
    from plush.controller.gather import HostOutput, final_lines, reply_lines

    def streamed(result: HostOutput) -> None:
        _emit_all(reply_lines(result), emit)

    result = await controller.exec(
        list(request.cmd),
        request.hosts,
        group=request.group,
        exclude=request.exclude,
        timeout=request.timeout,
        shell=request.shell,
        limit=request.limit or EXEC_LIMIT,
        on_result=None if request.gather else streamed,
    )
    addresses = {n["name"]: n["address"] for n in controller.info("nodes")}
    _emit_all(final_lines(result, gather=request.gather, values=_values(addresses)), emit)
    if request.outdir is not None:
        await asyncio.to_thread(_save, result, request.outdir)
    return result.status


def _values(addresses: dict[str, str | None]) -> Callable[[str], HostValues]:
    from plush.controller.gather import HostValues

    def values(name: str) -> HostValues:
        return HostValues.of(name, addresses.get(name))

    return values


def _save(result: ExecResult, outdir: Path) -> None:
    """Each host's stdout and stderr in ``outdir/HOST.stdout`` and ``outdir/HOST.stderr``."""
    outdir.mkdir(parents=True, exist_ok=True)
    for name, answer in result.results.items():
        (outdir / f"{name}.stdout").write_bytes(answer.stdout)
        (outdir / f"{name}.stderr").write_bytes(answer.stderr)


# --- the warm path: a request to the running controller -----------------------------------------------------------


def _warm(entry: Entry, request: ExecRequest, emit: Emit) -> int:
    """Send ``request`` to the controller of ``entry``; print as :func:`exec_on` would; the exit status."""
    from plush.api.control import ControlClient
    from plush.controller.gather import ExecResult, HostOutput, final_lines, reply_lines
    from plush.resources.hostset import natural_key

    answers: dict[str, HostOutput] = {}

    def on_event(event: dict[str, Any]) -> None:
        out = HostOutput.from_dict(event["host"], event["output"])
        answers[out.host] = out
        if not request.gather:
            _emit_all(reply_lines(out), emit)

    with ControlClient(entry.socket, entry.name) as client:
        reply = client.call("exec", request.args(), on_event)
    result = ExecResult.from_dict(reply["result"])
    result.results = {n: answers[n] for n in sorted(answers, key=natural_key)}
    _emit_all(final_lines(result, gather=request.gather, values=_values(reply["addresses"])), emit)
    if request.outdir is not None:
        _save(result, request.outdir)
    return result.status


def find_warm(name: str | None) -> Entry | None:
    """The controller a command of the distributed shell talks to: ``name``'s, or the only one started in
    this directory; None when none was started here (and no name given): the cold path."""
    from plush.api.runtime import NoController, find_controller

    try:
        return find_controller(name)
    except NoController:
        if name is not None:
            raise
        return None


CONTROLLER_HELP = "Send it to this running controller (default: the only one started in this directory)."
HOSTS_HELP = "Cold path: a pool of N local sandbox hosts, started for this command (no controller is used)."
COLD_POOL_HELP = "Cold path: the hosts of this pool file, started for this command. " + POOL_HELP


@cli.command("exec", context_settings={"allow_interspersed_args": False})
@click.option("-w", "nodes", multiple=True, metavar="HOSTSET", help="Run on these hosts (node[1-40,43]).")
@click.option("-g", "--group", default=None, metavar="GROUP", help="Run on the hosts of this resource group.")
@click.option("-x", "exclude", multiple=True, metavar="HOSTSET", help="Not on these hosts.")
@click.option("-b", "--gather", is_flag=True, help="Gather identical outputs under their host set.")
@click.option("-L", "lines", is_flag=True, help="Print each line as 'host: line' (the default).")
@click.option("--timeout", default=60.0, type=float, metavar="S", help="Kill the command after S seconds (60).")
@click.option("--shell", is_flag=True, help="Run CMD through 'sh -c' (its words joined by spaces).")
@click.option("--outdir", default=None, metavar="DIR", help="Save each host's output in DIR/HOST.stdout|.stderr.")
@click.option("--controller", "controller_name", metavar="NAME", default=None, help=CONTROLLER_HELP)
@click.option("--hosts", "count", default=None, type=int, metavar="N", help=HOSTS_HELP)
@click.option("-d", "--pool", "pool_file", default=None, metavar="POOLFILE", help=COLD_POOL_HELP)
@click.option("--runs-dir", default=None, help="Cold path: where the hosts' directories go (default: ./plush-runs).")
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
    controller_name: str | None,
    count: int | None,
    pool_file: str | None,
    runs_dir: str | None,
    cmd: tuple[str, ...],
) -> None:
    """Run CMD on many hosts and gather its output. Options end at CMD's first word.

    Warm: without --hosts or -d, CMD goes to the running controller (`plush serve`) named by --controller,
    or to the only one started in this directory; its agents are connected already.

    Cold: with --hosts N (a pool of N local sandbox hosts, local-1 ... local-N) or -d POOLFILE (the pool's
    hosts), or when no controller was started in this directory (the `pool` setting), the hosts -w/-g/-x
    select are started for this command and stopped after it. Give --hosts or -d to force the cold path."""
    if gather and lines:
        raise click.UsageError("-b and -L cannot be used together")
    if not timeout > 0:  # refused before any agent starts
        raise click.BadParameter(f"{timeout}: expected a positive number of seconds", param_hint="--timeout")
    if count is not None and count < 1:
        raise click.BadParameter(f"{count}: expected a number of hosts >= 1", param_hint="--hosts")
    cold = count is not None or pool_file is not None
    if cold and controller_name is not None:
        raise click.UsageError("--controller and --hosts/-d: one or the other (warm or cold)")
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
    warm = None if cold else find_warm(controller_name)
    if warm is not None:
        sys.exit(_warm(warm, request, _echo))
    import asyncio

    settings = load_cli_settings({"runs_dir": runs_dir, "pool": pool_file})
    hosts = cold_hosts(settings, count, request.hosts, request.group, request.exclude)
    sys.exit(asyncio.run(_cold(settings, hosts, request)))


def cold_hosts(
    settings: Settings, count: int | None, hosts: str | None, group: str | None, exclude: str | None
) -> list[Host]:
    """The hosts to start for a command of the cold path: the sandbox's (``--hosts N``) or the pool's, those
    ``hosts``/``group``/``exclude`` select."""
    import asyncio

    from plush.controller.execs import select_hosts
    from plush.resources.providers import LocalSandbox
    from plush.shell.options import settings_pool

    if count is not None:
        candidates = asyncio.run(LocalSandbox(count).hosts())
    else:
        found = settings_pool(settings)
        if found is None:
            raise click.UsageError(
                "no controller was started in this directory: give --hosts N (local sandbox hosts), -d POOLFILE, "
                "or --controller NAME"
            )
        candidates = list(found[0])
    known = {h.name: h for h in candidates}
    names = select_hosts(known, known, hosts, group, exclude)
    return [known[n] for n in names]


async def _cold(settings: Settings, hosts: Sequence[Host], request: ExecRequest) -> int:
    chosen = replace(request, hosts=",".join(h.name for h in hosts), group=None, exclude=None)
    return await on_cold_hosts(settings, hosts, lambda controller: exec_on(controller, chosen, _echo))


async def on_cold_hosts(settings: Settings, hosts: Sequence[Host], call: Callable[[Controller], Awaitable[int]]) -> int:
    """Connect ``hosts`` in a controller of this command, ``call`` it, quit it (its agents stopped)."""
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
        return await call(controller)
    finally:
        await controller.quit()


def _echo(stream: str, line: str) -> None:
    click.echo(line, err=stream == "stderr")
