"""``plush check POOLFILE``: validate a pool file as a spec is validated, and show the hosts it names.

:mod:`plush.shell.check` hands a file here when its content is a pool file
(:func:`plush.resources.poolfile.sniff_file`: a Plush resource directory, a YAML inventory or a JSON host
list, whatever its name); specs never are. A valid pool file prints one line (``FILE: valid KIND, N
hosts``) and a table of its hosts: name, address (``user@`` and ``:port`` when given), provider, group,
properties in file order. ``--json`` prints the hosts as a JSON host list instead, which reads back as the
same hosts. ``plush check --discover COMMAND`` runs a discovery command and checks what it prints the same
way (:func:`check_discovery`; a command that fails is a DiscoveryError, exit 2). Problems are returned one
per line (``file:line:col: message (in <element>); hint``), for the caller to print as it prints a spec's.
Plain text; heavy imports stay inside the functions.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from plush.resources.host import Host, PropertyValue

__all__ = ["check_discovery", "check_pool", "render_pool"]


def _value(value: PropertyValue) -> str:
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)
    return value


def render_pool(hosts: list[Host]) -> list[str]:
    """The table of ``hosts``, as lines (a header and one line per host)."""
    rows = [("name", "address", "provider", "group", "properties")]
    for h in hosts:
        address = (f"{h.user}@" if h.user else "") + h.address + (f":{h.port}" if h.port else "")
        props = " ".join(f"{k}={_value(v)}" for k, v in h.properties.items())
        rows.append((h.name, address, h.provider, h.group or "-", props))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = []
    for row in rows:
        lines.append("  " + "  ".join(cell.ljust(w) for cell, w in zip(row[:4], widths, strict=True)) + "  " + row[4])
    return lines


def check_pool(path: str, *, as_json: bool) -> tuple[list[str], list[str] | Any]:
    """(problem lines, output): the problems of the pool file at ``path`` (empty when valid), and what to
    print for it: the report's lines, or (``as_json``) the JSON host list as data."""
    from plush.errors import SpecError
    from plush.resources.poolentry import host_entry
    from plush.resources.poolfile import KIND_NAMES, read_pool

    try:
        kind, hosts = read_pool(path)
    except SpecError as exc:  # a PoolFileError
        return [str(p) for p in exc.problems], []
    if as_json:
        return [], [host_entry(h) for h in hosts]
    count = f"{len(hosts)} host{'' if len(hosts) == 1 else 's'}"
    return [], [f"{path}: valid {KIND_NAMES[kind]}, {count}", *render_pool(hosts)]


def check_discovery(text: str, *, as_json: bool) -> tuple[str, list[str], list[str] | Any]:
    """(label, problem lines, output) of the discovery command ``text`` (split as a shell would, run
    without one), as :func:`check_pool` for a pool file; DiscoveryError when the command cannot run or fails."""
    import asyncio

    from plush.errors import SpecError
    from plush.resources.poolentry import host_entry
    from plush.shell.options import discovery

    command = discovery(text)
    label = f"discovery command {command.name}"
    try:
        hosts = asyncio.run(command.hosts())
    except SpecError as exc:  # a PoolFileError: the output is not a JSON host list
        return label, [str(p) for p in exc.problems], []
    if as_json:
        return label, [], [host_entry(h) for h in hosts]
    count = f"{len(hosts)} host{'' if len(hosts) == 1 else 's'}"
    return label, [], [f"{label}: valid JSON host list, {count}", *render_pool(hosts)]
