"""The ``plush`` command line: one subcommand per operation, each a thin call into the library.

Errors are turned into one line, ``plush: error: …``, and an exit status in **one place**:
:meth:`PlushGroup.main`, which wraps every command (:func:`error_status` is the table, documented in
docs/commands.md). A :class:`~plush.errors.PlushError` gives its own ``exit_code``; a usage error (a bad option
or argument), a file or directory Plush cannot read or write (``OSError``) and a database it cannot read
(``sqlite3.Error``) give 2; Ctrl-C gives 130. Anything else is a bug and keeps its traceback. Nothing below
this module calls ``sys.exit`` for an error. Heavy imports happen inside the commands, so that
``plush --help`` and commands that only talk to a running controller start fast.
"""

from __future__ import annotations

import sqlite3
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import click

from plush import __version__
from plush.errors import PlushError, SpecError

if TYPE_CHECKING:
    from plush.config import Settings

#: exit status for a command line or environment the command cannot work with (docs/commands.md)
USAGE = 2
#: exit status after Ctrl-C
INTERRUPTED = 130


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


def _one_line(exc: BaseException) -> str:
    """The message of ``exc``: its first line, further lines indented below it."""
    if isinstance(exc, OSError) and exc.strerror:
        text = exc.strerror + (f": {exc.filename}" if exc.filename else "")
        if exc.filename2:
            text += f" -> {exc.filename2}"
    else:
        text = str(exc) or type(exc).__name__
    first, *rest = text.splitlines() or [""]
    return "\n".join([first, *("  " + line for line in rest)])


def spec_problem_lines(exc: SpecError, spec: str | None = None) -> list[str]:
    """What the CLI prints for a rejected spec: one line per problem, then the ``plush: error:`` line. One
    problem is the error line itself; several are listed, then counted (``FILE: N problems``)."""
    if len(exc.problems) == 1:
        return [f"plush: error: {exc.problems[0]}"]
    where = spec or exc.file or "spec"
    return [*(str(p) for p in exc.problems), f"plush: error: {where}: {len(exc.problems)} problems"]


def error_status(exc: BaseException) -> tuple[str | None, int] | None:
    """The message and exit status of ``exc`` for the CLI, or None when it is not a user's error (a bug)."""
    if isinstance(exc, click.exceptions.Exit):
        return None, exc.exit_code
    if isinstance(exc, click.Abort | KeyboardInterrupt):
        return "interrupted", INTERRUPTED
    if isinstance(exc, click.UsageError):
        hint = ""
        if exc.ctx is not None:
            hint = f" (see '{exc.ctx.command_path} --help')"
        return exc.format_message() + hint, USAGE
    if isinstance(exc, click.ClickException):
        return exc.format_message(), USAGE
    if isinstance(exc, PlushError):
        return _one_line(exc), exc.exit_code
    if isinstance(exc, OSError):
        return _one_line(exc), USAGE
    if isinstance(exc, sqlite3.Error):
        return f"database error: {_one_line(exc)}", USAGE
    return None


class PlushGroup(click.Group):
    """The ``plush`` group: every error of every command becomes one line and an exit status here."""

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode, **extra)
        try:
            result = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except Exception as exc:
            handled = error_status(exc)
            if handled is None:
                raise
            message, code = handled
            if isinstance(exc, SpecError):
                for line in spec_problem_lines(exc):
                    click.echo(line, err=True)
            elif message is not None:
                click.echo(f"plush: error: {message}", err=True)
            sys.exit(code)
        except KeyboardInterrupt:
            click.echo("plush: error: interrupted", err=True)
            sys.exit(INTERRUPTED)
        sys.exit(result if isinstance(result, int) else 0)


def clean_up_dead_runs() -> list[str]:
    """Before a command: end what runs whose controller died left on this machine; one line per such run,
    for stderr (the caller prints them where they do not displace a line that scripts parse)."""
    from plush.controller.cleanup import clean_up_dead_runs as clean_up

    return [f"plush: {line}" for line in clean_up()]


@click.group(cls=PlushGroup, invoke_without_command=True, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="plush")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """Plush: run, watch and steer a distributed application. Alone on a terminal: the interactive terminal
    (plush shell)."""
    if ctx.invoked_subcommand is not None:
        return
    shell = cli.get_command(ctx, "shell")  # registered by plush.shell.terminal (the entry point loads it)
    if shell is None or not (sys.stdin.isatty() and sys.stdout.isatty()):
        click.echo(ctx.get_help())
        return
    ctx.invoke(shell)


@cli.group()
def config() -> None:
    """Inspect settings."""


@config.command("show")
def config_show() -> None:
    """Print every setting, its value and where it came from."""
    from plush.config import load_settings

    settings, sources = load_settings(warn=warn)
    for name, source in sources.items():
        click.echo(f"{name:<26} {getattr(settings, name)!r:<24} ({source})")
