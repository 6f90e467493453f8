"""The ``plush`` command line: one subcommand per operation, each a thin call into the library.

Errors from the library (:class:`~plush.errors.PlushError`) become one line on stderr and the error's exit
code; nothing below this module calls ``sys.exit``. Heavy imports happen inside the commands, so that
``plush --help`` and commands that only talk to a running controller start fast.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from functools import wraps
from typing import TYPE_CHECKING, Any, TypeVar

import click

from plush import __version__
from plush.errors import PlushError

if TYPE_CHECKING:
    from plush.config import Settings

F = TypeVar("F", bound=Callable[..., Any])


def warn(message: str) -> None:
    """One warning line on stderr: ``plush: warning: …``."""
    click.echo(f"plush: warning: {message}", err=True)


def notice(message: str) -> None:
    """One notice line on stderr: ``plush: notice: …`` (something the user should know, not a problem)."""
    click.echo(f"plush: notice: {message}", err=True)


def load_cli_settings(flags: dict[str, Any]) -> Settings:
    """The settings of a command: its flags over the environment, the files and the defaults. Unknown
    ``PLUSH_*`` variables are warned about; a refused value raises ConfigError (exit 2)."""
    from plush.config import load_settings

    settings, _ = load_settings(flags, warn=warn)
    return settings


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

    settings, sources = load_settings(warn=warn)
    for name, source in sources.items():
        click.echo(f"{name:<26} {getattr(settings, name)!r:<24} ({source})")


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``plush`` console script."""
    from plush.shell import commands  # noqa: F401  (registers the subcommands)

    cli.main(args=argv, prog_name="plush")
