"""Pieces of the command line shared by several ``plush`` commands: ``--hosts`` values and ``-d`` pool files.

Here so that the command modules (check, plan, run) import what they share from one place and not from
each other.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from plush.resources.host import Pool

__all__ = ["POOL_HELP", "load_pool", "parse_hosts"]

#: the help of ``-d`` (``plush run`` and ``plush plan``)
POOL_HELP = "Take the hosts from this pool file (default: the `pool` setting, else the local sandbox)."


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


def load_pool(path: str) -> Pool:
    """The hosts of the pool file at ``path``, read by the pool-file provider (its kind told by its content;
    PoolFileError, exit 2, listing every problem); only ``local`` hosts exist in pool files today."""
    import asyncio

    from plush.resources.host import Pool
    from plush.resources.providers import PoolFile

    return Pool(asyncio.run(PoolFile(path).hosts()))
