"""``plush cluster``: an emulated cluster on this machine (up, status, down) and its faults (cut/restore,
freeze/thaw). A thin face over :mod:`plush.cluster.manage`; docs/cluster.md is the guide.

Output: ``up`` prints the path of the cluster's directory file on stdout (one line, for scripts) and how to use
it on stderr; ``status`` a table (``--json``: one JSON document); ``down`` one line on stderr.
Errors are ClusterErrors: one line, exit 2 for what the user changes (not root, a bad name or range, an unknown
host), 1 for a failure on the way.
"""

from __future__ import annotations

import json

import click

from plush.shell.cli import cli, notice, warn

UP_HELP = """Create an emulated cluster of N hosts: network namespaces on a bridge, each with its own address,
sshd and private home, /tmp and /var/tmp. Prints the path of its directory file. Needs root.

Each host's home, /tmp and /var/tmp are on a file system of its own: a tmpfs (--fs tmpfs, the default) of
--fs-size (default 1g), seen only by the host and gone with it; it takes this machine's memory only for what
the host writes. --fs machine puts them in directories of the cluster's state directory on this machine's
disk instead (for data larger than memory; one file system shared by every host)."""


@cli.group("cluster")
def cluster() -> None:
    """An emulated cluster on this machine: hosts with their own addresses, sshd and files (needs root)."""


@cluster.command("up", help=UP_HELP)
@click.argument("count", type=click.IntRange(min=1), metavar="N")
@click.option("--name", default=None, metavar="NAME", help="The cluster's name (default c1): 1-6 of a-z0-9.")
@click.option("--bandwidth", default=None, metavar="RATE", help="Limit each host's link both ways (tc tbf): 100mbit")
@click.option("--subnet", default=None, metavar="CIDR", help="The cluster's private range (default 10.213.0.0/16).")
@click.option("--share", multiple=True, metavar="DIR", help="A directory the hosts see as it is (repeatable).")
@click.option(
    "--fs",
    type=click.Choice(["tmpfs", "machine"]),
    default="tmpfs",
    show_default=True,
    help="Each host's home and /tmp: a tmpfs of its own, or directories on this machine's disk.",
)
@click.option("--fs-size", default=None, metavar="SIZE", help="Each host's tmpfs (default 1g): 512m, 2g, bytes.")
def up_command(
    count: int,
    name: str | None,
    bandwidth: str | None,
    subnet: str | None,
    share: tuple[str, ...],
    fs: str,
    fs_size: str | None,
) -> None:
    from plush.cluster import machine
    from plush.cluster.manage import up
    from plush.cluster.plan import DEFAULT_NAME, DEFAULT_SUBNET, memory_warning

    state = up(
        count,
        name or DEFAULT_NAME,
        subnet=subnet or DEFAULT_SUBNET,
        bandwidth=bandwidth,
        fs=fs,
        fs_size=fs_size,
        shares=share,
    )
    plan = state.plan
    limit = f", {plan.bandwidth} each way" if plan.bandwidth else ""
    notice(
        f"cluster {plan.name}: {plan.count} hosts {plan.hosts[0].name}..{plan.hosts[-1].name} in {plan.subnet}, "
        f"{plan.fs_words} (this machine is {plan.bridge_address} on {plan.bridge}{limit})"
    )
    too_much = memory_warning(plan, machine.mem_total())
    if too_much:
        warn(too_much)
    notice(f"run on it: plush run SPEC -d {state.directory}")
    click.echo(str(state.directory))


@cluster.command("status")
@click.argument("name", required=False)
@click.option("--json", "as_json", is_flag=True, help="One JSON document.")
def status_command(name: str | None, as_json: bool) -> None:
    """Every cluster (or NAME): its hosts, addresses and state (up, cut, frozen, down, missing)."""
    from plush.cluster.manage import status

    clusters = status(name)
    if as_json:
        click.echo(json.dumps({"clusters": clusters}, indent=1))
        return
    if not clusters:
        click.echo("no cluster (plush cluster up N)")
        return
    for c in clusters:
        limit = f", {c['bandwidth']}" if c["bandwidth"] else ""
        fs = f"a tmpfs of {c['fs_size']} each" if c["fs"] == "tmpfs" else "directories on this machine's disk"
        click.echo(
            f"cluster {c['name']}: {c['count']} hosts in {c['subnet']}{limit}, {fs}, {c['phase']}: {c['directory']}"
        )
        for h in c["hosts"]:
            click.echo(f"  {h['name']:<12} {h['address']:<16} {h['state']:<10} {h['processes']} processes")


@cluster.command("down")
@click.argument("name", required=False)
def down_command(name: str | None) -> None:
    """Remove cluster NAME (or the only one): its processes, namespaces, veths, bridge and state. Without NAME,
    also every cluster a run made and did not remove (its run ended without doing so)."""
    from plush.cluster.lease import stale
    from plush.cluster.manage import down
    from plush.cluster.state import names

    if name is None:
        left = stale()
        for each in left:
            down(each)
            notice(f"cluster {each} removed (its run ended without removing it)")
        known = names()
        if not known:
            if not left:
                notice("no cluster to remove")
            return
        if len(known) > 1:
            raise click.UsageError(f"clusters {', '.join(known)}: name the one to remove")
        name = known[0]
    removed = down(name)
    notice(
        f"cluster {name} removed ({len(removed)} namespaces, links and directories)"
        if removed
        else f"no cluster {name} left"
    )


def _fault(command: str, host: str) -> None:
    from plush.cluster.manage import cut, freeze

    if command in ("cut", "restore"):
        name = cut(host, restore=command == "restore")
        notice(f"{name}: link {'up' if command == 'restore' else 'down'}")
    else:
        name, count = freeze(host, thaw=command == "thaw")
        notice(f"{name}: {count} processes {'continued' if command == 'thaw' else 'stopped'}")


@cluster.command("cut")
@click.argument("host")
def cut_command(host: str) -> None:
    """Take HOST's link down (NAME-hK, or hK of the only cluster)."""
    _fault("cut", host)


@cluster.command("restore")
@click.argument("host")
def restore_command(host: str) -> None:
    """Bring HOST's link up again."""
    _fault("restore", host)


@cluster.command("freeze")
@click.argument("host")
def freeze_command(host: str) -> None:
    """Stop every process of HOST (SIGSTOP), its sshd and agent included."""
    _fault("freeze", host)


@cluster.command("thaw")
@click.argument("host")
def thaw_command(host: str) -> None:
    """Continue every process of HOST (SIGCONT)."""
    _fault("thaw", host)
