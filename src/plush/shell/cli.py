"""The ``plush`` command line: one subcommand per operation, each a thin call into the library.

Errors from the library (:class:`~plush.errors.PlushError`) become one line on stderr and the error's exit
code; nothing below this module calls ``sys.exit``. Heavy imports happen inside the commands, so that
``plush --help`` and commands that only talk to a running controller start fast.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

import click

from plush import __version__
from plush.errors import PlushError

F = TypeVar("F", bound=Callable[..., Any])


def reports_errors(func: F) -> F:
    """Turn a PlushError raised by a command into one line on stderr and its exit code."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except PlushError as exc:
            click.echo(f"plush: error: {exc}", err=True)
            sys.exit(exc.exit_code)

    return wrapper  # type: ignore[return-value]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="plush")
def cli() -> None:
    """Plush: run, watch and steer a distributed application."""


@cli.group()
def config() -> None:
    """Inspect settings."""


@config.command("show")
@reports_errors
def config_show() -> None:
    """Print every setting, its value and where it came from."""
    from plush.config import load_settings

    settings, sources = load_settings()
    for name, source in sources.items():
        click.echo(f"{name:<26} {getattr(settings, name)!r:<24} ({source})")


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``plush`` console script."""
    from plush.shell import commands  # noqa: F401  (registers the subcommands)

    cli.main(args=argv, prog_name="plush")
