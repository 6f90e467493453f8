"""``plush plan SPEC``: which hosts a run would use, its spares, the DAG order and what is installed where.

Nothing is started and no host is contacted: the spec goes through the same preflight as ``plush check``
and ``plush run`` (with the same ``--hosts``), then :func:`plush.controller.plan.plan` matches the pool.
The pool is the one ``plush run`` would use: with ``-d POOLFILE`` (the ``pool`` setting) or ``--discover
COMMAND`` (the ``discover`` setting) the hosts of that pool file and that command, under their names,
matched by group (:func:`~plush.shell.options.settings_pool`); without, the local sandbox: one host
``local-K`` per host the run would start (each component's ``--hosts`` count or ``num_hosts`` min), all with
this machine's properties, any resource type and group accepted (the notice line of ``plush run`` says so).
``--seed N`` (the ``seed`` setting) is the seed ``plush run`` takes: the same seed, the same matching.

Output: plain text, readable when piped; ``--json`` prints :meth:`Plan.to_dict` (at least
``{"components": {NAME: {"hosts": [...], "spares": [...]}}}``). Exit status 0, or 2 when the spec is
refused (each problem on its line) or no matching exists (``plush: error: COMPONENT: need N, …``).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import click

from plush.shell.cli import cli, load_cli_settings, notice
from plush.shell.options import DISCOVER_HELP, POOL_HELP, SEED_HELP, parse_hosts, settings_pool

if TYPE_CHECKING:
    from plush.controller.plan import Plan
    from plush.resources.host import Pool

__all__ = ["plan_command", "render_plan"]


def sandbox_pool(count: int) -> Pool:
    """The local sandbox hosts of a run of ``count`` hosts, from the provider a run takes them from."""
    import asyncio

    from plush.resources.host import Pool
    from plush.resources.providers import LocalSandbox

    return Pool(asyncio.run(LocalSandbox(count).hosts()))


def _fold(names: tuple[str, ...] | list[str]) -> str:
    from plush.resources.hostset import fold

    return fold(names) if names else "none"


def render_plan(plan: Plan, pool: str) -> list[str]:
    """The human-readable plan, as lines; ``pool`` says what the pool is (``the local sandbox``)."""
    from plush.shell.check import render_order

    m = plan.matching
    seed = "pool order" if m.seed is None else f"seed {m.seed}"
    lines = [f"plan on {pool}: {plan.pool_size} host{'' if plan.pool_size == 1 else 's'}, {seed}; no host contacted"]
    lines.append("components")
    for c in plan.project.components:
        hosts = m.hosts[c.name]
        span = f"{c.num_hosts.min}" if c.num_hosts.min == c.num_hosts.max else f"{c.num_hosts.min}..{c.num_hosts.max}"
        lines.append(
            f"  {c.name}  {len(hosts)} host{'' if len(hosts) == 1 else 's'} (num_hosts {span}): {_fold(hosts)}"
            f"  spares: {_fold(m.spares[c.name])}"
        )
    lines.append("software")
    if not plan.project.software:
        lines.append("  none")
    for sw in plan.project.software:
        pkgs = ", ".join(p.dest or p.path for p in sw.packages) or "no packages"
        lines.append(f"  {sw.name}  [{sw.type}]  {pkgs}  on {_fold(plan.hosts_of_software(sw.name))}")
    lines.append("order")
    for path, (component, levels) in plan.order.items():
        lines.append(f"  {path}  on {component} ({_fold(m.hosts.get(component, ()))}): {render_order(levels)}")
    return lines


@cli.command("plan")
@click.argument("spec", type=click.Path(dir_okay=False))
@click.option("--hosts", "hosts", multiple=True, metavar="N|COMPONENT=N", help="Host counts, as `plush run --hosts`.")
@click.option("-d", "--pool", "pool_file", default=None, metavar="POOLFILE", help=POOL_HELP)
@click.option("--discover", default=None, metavar="COMMAND", help=DISCOVER_HELP)
@click.option("--seed", default=None, metavar="N", help=SEED_HELP)
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON.")
def plan_command(
    spec: str, hosts: tuple[str, ...], pool_file: str | None, discover: str | None, seed: str | None, as_json: bool
) -> None:
    """Show the hosts each component of SPEC would get, the spares, the DAG order and what is installed
    where, without contacting any host."""
    from plush.controller.plan import plan
    from plush.controller.preflight import preflight
    from plush.resources.sandbox import sandbox_notice
    from plush.shell.check import read_spec

    settings = load_cli_settings({"pool": pool_file, "discover": discover, "seed": seed})
    project = read_spec(spec)
    wanted = parse_hosts(hosts)
    counts = preflight(project, settings, wanted, requirements=False)
    found = settings_pool(settings)
    if found is not None:
        pool, where = found
        result = plan(project, pool, wanted, settings.seed, by_group=True)
    else:
        where = "the local sandbox"
        result = plan(project, sandbox_pool(sum(counts.values())), counts, settings.seed, by_group=False)
        text = sandbox_notice(project, counts)
        if text is not None:
            notice(text)
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2, ensure_ascii=False))
        return
    click.echo(f"{spec}: valid")
    for line in render_plan(result, where):
        click.echo(line)
