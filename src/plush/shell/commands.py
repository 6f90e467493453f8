"""Registers the subcommands of ``plush`` on the click group of :mod:`plush.shell.cli`.

Each command module adds itself here; keep the imports light (commands import their heavy parts lazily).
"""

from plush.shell import check, plan, report, run

__all__ = ["check", "plan", "report", "run"]
