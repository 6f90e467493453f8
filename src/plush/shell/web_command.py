"""``plush web``: the address that signs a browser in to a running controller's web UI.

Role: a thin client of the control socket (the ``web`` request, :mod:`plush.api.app_handlers`): the
controller (``plush serve --http``) answers its web UI's address and the sign-in address with the HTTP API's
token in it; ``plush web`` prints the latter on stdout (never on stderr, never logged), or with ``--open``
hands it to the browser through a 0600 page in the state directory that redirects to it, so that the token
is not on the browser's command line. ``plush serve`` itself only prints the address without the token.

Exit status: 0; 1 when the controller has no HTTP listener; 5 / 6 as for every client command (no
controller found / several in this directory).
"""

from __future__ import annotations

import html
import os
from pathlib import Path

import click

from plush.shell.cli import cli
from plush.shell.client import call, controller_option

__all__ = ["SIGN_IN_PAGE", "sign_in_page"]

#: the redirecting page ``--open`` writes into the state directory
SIGN_IN_PAGE = "web-sign-in.html"


def sign_in_page(directory: Path, url: str) -> Path:
    """Write (0600, replacing the last one, never through a link) a page that redirects to ``url``."""
    path = directory / SIGN_IN_PAGE
    with_token = html.escape(url, quote=True)
    text = (
        "<!doctype html><meta charset=utf-8><meta name=referrer content=no-referrer>"
        f'<meta http-equiv="refresh" content="0;url={with_token}"><title>Plush: signing in</title>\n'
    )
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)
    return path


@cli.command("web")
@click.option("--open", "open_it", is_flag=True, help="Open the web UI, signed in, in the default browser.")
@controller_option
def web_command(open_it: bool, controller_name: str | None) -> None:
    """Print the address that signs a browser in to a running controller's web UI (plush serve --http): it
    holds the API's token, keep it to yourself."""
    where = call(controller_name, "web")
    if not open_it:
        click.echo(where["sign_in"])
        return
    import webbrowser

    from plush.config import state_dir

    directory = state_dir()
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    page = sign_in_page(directory, where["sign_in"])
    if not webbrowser.open(page.as_uri()):
        raise click.ClickException(f"no browser could be started: open {where['url']} and sign in with the token")
    click.echo(f"plush: opened the web UI at {where['url']}", err=True)
