"""``plush check SPEC...``: validate spec files and show what Plush understood of them.

A spec is checked exactly as ``plush run`` checks it before it contacts any host (the same
:func:`~plush.controller.preflight.preflight`, with the same ``--hosts``): the model, host counts against
``num_hosts`` and ``max_local_hosts``, the size of the message that carries it to agents, and the package
and data files it names.

For each valid file it prints the block tree with paths, the components (host counts, software,
resources), the barriers (which component blocks share each one, and its release rule) and the DAG order
of each component block as levels of blocks that can run in parallel. Plain text, readable when piped.
``--json`` prints the models instead (``plush.spec.model.to_dict``): one object for one file, a list for
several. Problems go to stderr, one per line (``file:line:col: message [block path]; hint``).

A pool file (told by its content: :func:`plush.resources.poolfile.sniff_file`) is checked as a pool by
:mod:`plush.shell.poolcheck` instead: the same problem lines, or the table of its hosts.

Exit status: 0 when every file is valid, 2 when any is not. Heavy imports happen inside the command.
"""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any

import click

from plush.shell.cli import cli, load_cli_settings

if TYPE_CHECKING:
    from plush.spec.model import Block, Project

__all__ = ["check", "render_order", "render_project"]


def _quote(arg: str, limit: int = 40) -> str:
    """One argument for the report: shell-quoted, cut to its first line and ``limit`` characters."""
    import shlex

    first = arg.split("\n", 1)[0]
    if first != arg or len(first) > limit:
        return shlex.quote(first[:limit] + "…")
    return shlex.quote(arg)


def _after(b: Block) -> str:
    return "  after " + ", ".join(b.predecessors) if b.predecessors else ""


def _describe(b: Block) -> str:
    from plush.spec.model import BarrierBlock, ProcessBlock
    from plush.spec.validate import describe_rule

    if isinstance(b, ProcessBlock):
        cmds = "; ".join(" ".join(_quote(a) for a in p.argv) for p in b.processes)
        extra = ""
        if b.exit_policies:
            extra += "  exit: " + ", ".join(f"{e.match}→{e.action}" for e in b.exit_policies)
        if b.liveness is not None:
            extra += f"  liveness every {b.liveness.interval:g}s"
        if b.outputs:
            extra += "  outputs: " + " ".join(b.outputs)
        return "process  " + cmds + extra
    if isinstance(b, BarrierBlock):
        text = ("semaphore" if b.kind == "semaphore" else "barrier") + "  " + describe_rule(b)
        return text + ("  until " + b.until if b.until else "")
    return "workflow  {} data file{}".format(len(b.data_files), "" if len(b.data_files) == 1 else "s")


def render_order(levels: list[list[str]]) -> str:
    """DAG levels as ``[a] → [b, c]`` (blocks of one level run in parallel)."""
    return " → ".join("[" + ", ".join(level) + "]" for level in levels)


def render_project(project: Project) -> list[str]:
    """The human-readable report of a valid project, as lines."""
    from plush.spec import dag
    from plush.spec.model import BarrierBlock, WorkflowBlock
    from plush.spec.validate import describe_rule

    app = project.application
    lines = [f"project {project.name}  application {app.path}"]
    mode = (
        f"service (reconnect every {app.reconnect_interval:g}s)"
        if app.service and app.reconnect_interval
        else ("service" if app.service else "run to completion")
    )
    lines.append(f"  mode: {mode}; on failure: {app.failure_action}")
    if project.software:
        lines.append("software")
        for sw in project.software:
            pkgs = ", ".join(f"{p.dest or p.path} ({p.type})" for p in sw.packages) or "no packages"
            lines.append(f"  {sw.name}  [{sw.type}]  {pkgs}")
    lines.append("components")
    for c in project.components:
        parts = [f"  {c.name}  hosts {c.num_hosts.min}..{c.num_hosts.max}"]
        if c.software:
            parts.append("software " + ", ".join(c.software))
        if c.resources:
            parts.append("resources " + ", ".join(r.type + (":" + r.group if r.group else "") for r in c.resources))
        for r in c.requirements:
            bounds = [
                k + "=" + str(v) for k, v in (("min", r.min), ("max", r.max), ("equals", r.equals)) if v is not None
            ]
            parts.append("require {}({})".format(r.attr, " ".join(bounds)))
        if c.max_load is not None:
            parts.append(f"max_load {c.max_load:g}")
        if c.min_free_mem is not None:
            parts.append(f"min_free_mem {c.min_free_mem}MB")
        lines.append("  ".join(parts))
    lines.append("blocks")
    barriers: dict[str, tuple[BarrierBlock, list[str]]] = {}
    for cb in app.component_blocks:
        cb_path = app.path / cb.name
        lines.append(f"  {cb_path}  on component {cb.component}")
        for b in cb.blocks:
            lines.append(f"    {cb_path / b.name}  {_describe(b)}{_after(b)}")
            if isinstance(b, WorkflowBlock):
                lines.append(f"      {cb_path / b.name / b.task.name}  task {_describe(b.task)}")
            if isinstance(b, BarrierBlock):
                barriers.setdefault(b.name, (b, []))[1].append(str(cb_path))
        levels = dag.order(cb.blocks)
        if levels:
            lines.append("    order: " + render_order(levels))
    if barriers:
        lines.append("barriers")
        for name, (b, users) in barriers.items():
            lines.append("  {}  {}  shared by {}".format(name, describe_rule(b), ", ".join(users)))
    return lines


def read_spec(spec: str) -> Any:
    from plush.errors import SpecError, SpecProblem
    from plush.spec.load import load_spec

    try:
        return load_spec(spec)
    except ImportError as exc:  # the YAML reader is missing from this installation
        raise SpecError([SpecProblem(f"cannot read this spec form: {exc}", file=spec)]) from None


def _problems(file: str, lines: list[str]) -> None:
    for line in lines:
        click.echo(line, err=True)
    click.echo("plush: error: {}: {} problem{}".format(file, len(lines), "" if len(lines) == 1 else "s"), err=True)


@cli.command("check")
@click.argument("specs", nargs=-1, type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print the models (or a pool's hosts) as JSON instead.")
@click.option(
    "--hosts", "hosts", multiple=True, metavar="N|COMPONENT=N", help="Check host counts as `plush run --hosts` would."
)
@click.option("--discover", default=None, metavar="COMMAND", help="Run this discovery command and check its hosts.")
def check(specs: tuple[str, ...], as_json: bool, hosts: tuple[str, ...], discover: str | None) -> None:
    """Validate SPEC files (Plush XML or YAML); show their block tree, components, barriers, DAG order.

    A pool file (resource directory, YAML inventory, JSON host list; docs/pools.md) is told by its content
    and checked as a pool: its hosts are listed. So are the hosts a discovery command prints (--discover).
    """
    from plush.controller.preflight import preflight
    from plush.errors import MatchError, SpecError
    from plush.resources.poolfile import sniff_file
    from plush.shell.options import parse_hosts
    from plush.shell.poolcheck import check_discovery, check_pool
    from plush.spec.model import to_dict

    if not specs and discover is None:
        raise click.UsageError("give SPEC or POOLFILE files to check, or --discover COMMAND")
    wanted = parse_hosts(hosts)
    settings = load_cli_settings({})
    failed = False
    models: list[Any] = []
    if discover is not None:
        label, problems, output = check_discovery(discover, as_json=as_json)
        failed = bool(problems)
        if problems:
            _problems(label, problems)
        elif as_json:
            models.append(output)
        else:
            for line in output:
                click.echo(line)
    for spec in specs:
        if sniff_file(spec) is not None:
            problems, output = check_pool(spec, as_json=as_json)
            failed = failed or bool(problems)
            if problems:
                _problems(spec, problems)
            elif as_json:
                models.append(output)
            else:
                if discover is not None or spec != specs[0]:
                    click.echo("")
                for line in output:
                    click.echo(line)
            continue
        try:
            project = read_spec(spec)
            preflight(project, settings, wanted)
        except (SpecError, MatchError) as exc:  # (a MatchError's message starts with its file:line)
            failed = True
            _problems(spec, [str(p) for p in exc.problems] if isinstance(exc, SpecError) else [str(exc)])
            continue
        if as_json:
            models.append(to_dict(project))
            continue
        if discover is not None or spec != specs[0]:
            click.echo("")
        click.echo(f"{spec}: valid")
        for line in render_project(project):
            click.echo(line)
    if as_json and models:
        one = len(specs) + (discover is not None) == 1
        click.echo(json.dumps(models[0] if one else models, indent=2, ensure_ascii=False))
    sys.exit(2 if failed else 0)
