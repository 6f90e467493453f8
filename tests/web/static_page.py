"""A browser page on a made-up origin whose ``/static/`` is the package's static directory, answered by Playwright
itself (no server): for tests of the web UI's pure modules and widgets (``await import("/static/js/...")`` in
``page.evaluate``)."""

from __future__ import annotations

from typing import Any

from plush.web.assets import STATIC

ORIGIN = "http://plush.test"
PAGE = b"<!doctype html><meta charset=utf-8><title>static</title><body style='margin:0'><div id=box></div></body>"
TYPES = {".js": "text/javascript", ".css": "text/css"}


def _answer(route: Any) -> None:
    path = route.request.url.removeprefix(ORIGIN).split("?")[0]
    file = STATIC / path.removeprefix("/static/")
    if path.startswith("/static/") and file.is_file() and STATIC in file.resolve().parents:
        kind = TYPES.get(file.suffix, "text/plain")
        route.fulfill(status=200, body=file.read_bytes(), headers={"Content-Type": kind})
    elif path == "/":
        route.fulfill(status=200, body=PAGE, headers={"Content-Type": "text/html"})
    else:
        route.fulfill(status=404, body=b"")


def open_static(page: Any) -> Any:
    """``page`` at the made-up origin's ``/``: an empty document with ``<div id=box>``."""
    page.route(f"{ORIGIN}/**", _answer)
    page.goto(f"{ORIGIN}/")
    return page
