"""Pieces of the command line shared by several ``plush`` commands: ``--hosts`` values, the pool (``-d`` pool
files, ``--discover`` discovery commands) and ``--seed``.

Here so that the command modules (check, plan, run) import what they share from one place and not from
each other. A discovery command's text is split as a shell would split it (:func:`shlex.split`) and run
without a shell: ``sh -c '…'`` is written by the user who wants one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from plush.config import Settings
    from plush.resources.host import Pool
    from plush.resources.providers import DiscoveryCommand

__all__ = ["DISCOVER_HELP", "POOL_HELP", "SEED_HELP", "discovery", "parse_hosts", "settings_pool"]

#: the help of ``-d`` (``plush run`` and ``plush plan``)
POOL_HELP = "Take the hosts from this pool file (default: the `pool` setting, else the local sandbox)."
#: the help of ``--discover``
DISCOVER_HELP = "Take the hosts this command prints as a JSON host list (default: the `discover` setting)."
#: the help of ``--seed``
SEED_HELP = "Shuffle the pool with this seed before matching (default: the `seed` setting, else pool order)."


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


def discovery(text: str) -> DiscoveryCommand:
    """The discovery command of ``text`` (split as a shell would, never run by one); DiscoveryError (exit 2)
    when it cannot be split or is empty."""
    import shlex

    from plush.resources.providers import DiscoveryCommand, DiscoveryError

    try:
        argv = shlex.split(text)
    except ValueError as exc:
        raise DiscoveryError(repr(text), f"cannot split it into arguments: {exc}") from None
    if not argv:
        raise DiscoveryError(repr(text), "names no program")
    return DiscoveryCommand(argv)


def settings_pool(settings: Settings) -> tuple[Pool, str] | None:
    """The pool of the ``pool`` and ``discover`` settings (the pool file's hosts, then the command's: a host
    both name is the command's), and what it is in words; None when neither is set (the local sandbox)."""
    import asyncio

    from plush.resources.providers import PoolFile, Provider, fill_pool

    providers: list[Provider] = []
    if settings.pool:
        providers.append(PoolFile(settings.pool))
    if settings.discover.strip():
        providers.append(discovery(settings.discover))
    if not providers:
        return None
    where = " + ".join(p.name if isinstance(p, PoolFile) else f"discovery command {p.name}" for p in providers)
    return asyncio.run(fill_pool(providers)), where


#: ``--name`` of ``plush run SPEC`` and ``plush serve``
NAME_HELP = "The name of this controller for `plush info --controller NAME` (default: this directory's)."
