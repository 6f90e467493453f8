"""A real ``plush serve --hosts N --http 127.0.0.1:0`` for the browser tests, and signing a page in to its web UI.

``web_served(tmp_path, hosts=N)`` (a context manager) starts the serve in ``tmp_path/served`` (through
tests/integration/serve_support.py, which tests/web/conftest.py puts on ``sys.path``) with the agents' content
cache in ``tmp_path``, and yields a :class:`WebServed`: ``url`` (the web UI, ``http://127.0.0.1:PORT/``),
``token``, ``api(method, path, body)`` (the HTTP API with the bearer token, from the test) and the serve itself
(``served``: its process, ``err()``). ``sign_in(page, web)`` opens ``/?token=...`` and waits for the app shell.

The views' locators and checks that more than one test uses: ``block(page, path)`` (a block's box in the
application view's DAG), ``page_errors(page)`` (what the page threw, from the ``page`` fixture's console lines).
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from serve_support import Served, served

__all__ = ["WAIT", "WebServed", "block", "page_errors", "sign_in", "web_served"]

#: Playwright's waits in the browser tests (ms): generous, the machine is shared
WAIT = 30_000


@dataclass
class WebServed:
    served: Served
    url: str
    token: str

    def api(self, method: str, path: str, body: Any = None) -> Any:
        """A call of the HTTP API with the bearer token; the answer's JSON (an HTTPError on an error status)."""
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.url.rstrip("/") + path, data=data, method=method)
        request.add_header("Authorization", f"Bearer {self.token}")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(request, timeout=30) as answer:
            return json.loads(answer.read() or b"null")


@contextmanager
def web_served(tmp_path: Path, *args: str, hosts: int = 3) -> Iterator[WebServed]:
    cache = tmp_path / "cache"
    cache.mkdir(exist_ok=True)
    before = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = str(cache)  # the serve's agents inherit it: their content cache is the test's
    try:
        with served(tmp_path, *args, hosts=hosts) as serve:
            assert serve.http is not None, serve.err()
            assert f"web UI at {serve.http}/" in serve.err()
            yield WebServed(serve, f"{serve.http}/", serve.token)
    finally:
        if before is None:
            os.environ.pop("XDG_CACHE_HOME", None)
        else:
            os.environ["XDG_CACHE_HOME"] = before


def sign_in(page: Any, web: WebServed) -> None:
    """Open the web UI signed in by the token in the URL (once), and wait for the app shell's view."""
    page.goto(f"{web.url}?token={web.token}")
    page.wait_for_selector("main#view > section", timeout=WAIT)


def block(page: Any, path: str) -> Any:
    """A block's box in the application view's DAG (``.pl-block``); its ``.pl-counts`` say its hosts' states."""
    return page.locator(f'.pl-block[data-block="{path}"]')


def page_errors(page: Any) -> list[str]:
    """The uncaught errors of the page so far (the ``page`` fixture keeps its console lines)."""
    return [line for line in page.console_lines if line.startswith("pageerror")]


def status_error(exc: urllib.error.HTTPError) -> dict[str, Any]:
    return json.loads(exc.read())["error"]
