"""The ``plush`` command: its entry point, and the subcommands registered on the click group of
:mod:`plush.shell.cli`.

Each command module adds itself to the group when imported here; keep the imports light (commands import
their heavy parts lazily). :mod:`plush.shell.cli` imports none of them.
"""

from plush.shell import (
    check,
    client,
    cluster_command,
    copy_command,
    exec_command,
    plan,
    report,
    run,
    serve,
    terminal,
    web_command,
)
from plush.shell.cli import cli

__all__ = [
    "check",
    "client",
    "cluster_command",
    "copy_command",
    "exec_command",
    "main",
    "plan",
    "report",
    "run",
    "serve",
    "terminal",
    "web_command",
]


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``plush`` console script and of ``python -m plush``."""
    cli.main(args=argv, prog_name="plush")
