"""The web UI's files and door over real HTTP, without a browser: ``/static/<file>`` answers only the files of
the manifest built at start (hostile paths, Hypothesis), with their content types and headers; the auth rules
of :mod:`plush.web.auth`."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from plush.api.http import HttpApi
from plush.controller.api import Controller
from plush.web.assets import STATIC, Assets, build_manifest
from plush.web.auth import Verdict, cookie_matches, cookie_value, verdict

TOKEN = "t" * 43
SECRET = b"SECRET-OUTSIDE-THE-STATIC-DIRECTORY"


class Listener:
    """An HttpApi with the web UI in a thread's event loop, on a loopback port chosen by the kernel."""

    def __init__(self, static: Path) -> None:
        from plush.web.pages import WebUI

        self.loop = asyncio.new_event_loop()
        self.manifest = build_manifest(static)
        front = WebUI(TOKEN, secure=False, assets=Assets(self.manifest))
        self.api = HttpApi(Controller(), None, TOKEN, "127.0.0.1", 0, None, front=front)  # type: ignore[arg-type]
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self.api.start(), self.loop).result(30)

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self.api.close(), self.loop).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(30)
        self.loop.close()

    def raw(self, target: bytes, *headers: str, method: bytes = b"GET") -> tuple[int, dict[str, str], bytes]:
        """One request with this exact request target; (status, headers, body). Status 0: the connection was
        closed without an answer."""
        lines = [method + b" " + target + b" HTTP/1.1", b"Host: 127.0.0.1", b"Connection: close"]
        lines += [h.encode() for h in headers]
        with socket.create_connection(("127.0.0.1", self.api.port), timeout=30) as sock:
            sock.sendall(b"\r\n".join(lines) + b"\r\n\r\n")
            data = b""
            while chunk := sock.recv(65536):
                data += chunk
        if not data:
            return 0, {}, b""
        head, _, body = data.partition(b"\r\n\r\n")
        first, *rest = head.decode("latin-1").split("\r\n")
        fields = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in rest)}
        return int(first.split()[1]), fields, body


@pytest.fixture(scope="module")
def listener(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Listener]:
    root = tmp_path_factory.mktemp("web")
    static = root / "static"
    (static / "js").mkdir(parents=True)
    (static / "index.html").write_text("<!doctype html><p>shell</p>")
    (static / "login.html").write_text('<p id="error" class="error" hidden>wrong</p>')
    (static / "plush.css").write_text("body {}")
    (static / "js" / "main.js").write_text("export {};")
    (static / "notes.unknown").write_bytes(SECRET)  # a suffix not served
    (root / "secret.txt").write_bytes(SECRET)
    (static / "link.js").symlink_to(root / "secret.txt")  # a link is not followed
    served = Listener(static)
    try:
        yield served
    finally:
        served.close()


BEARER = f"Authorization: Bearer {TOKEN}"
PIECES = [
    "..",
    ".",
    "%2e%2e",
    "%2E%2E",
    "%252e%252e",
    "/",
    "//",
    "%2f",
    "%2F",
    "\\",
    "%5c",
    "%00",
    "%",
    "secret.txt",
    "etc",
    "passwd",
    "js",
    "main.js",
    "link.js",
    "notes.unknown",
    "index.html",
    "static",
    "~",
    ";",
    "?x=..",
    "#",
    "%c0%ae%c0%ae",
    "..%2f",
    "..\\",
    "/etc/passwd",
    "C:",
    "a" * 300,
]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(parts=st.lists(st.sampled_from(PIECES) | st.text(max_size=8).map(lambda t: t.replace("\r", "")), max_size=8))
def test_static_answers_only_the_files_of_its_manifest(listener: Listener, parts: list[str]) -> None:
    path = "".join(parts)
    target = ("/static/" + path).encode("utf-8", "surrogateescape").replace(b"\n", b"%0A").replace(b" ", b"%20")
    status, headers, body = listener.raw(target, BEARER)
    assert SECRET not in body
    if status == 200:
        assert body in {asset.body for asset in listener.manifest.values()}, target
        assert headers["x-content-type-options"] == "nosniff"


def test_the_manifest_lists_the_regular_files_it_serves_and_only_those(listener: Listener) -> None:
    assert sorted(listener.manifest) == ["index.html", "js/main.js", "login.html", "plush.css"]
    status, headers, body = listener.raw(b"/static/js/main.js", BEARER)
    assert (status, body) == (200, b"export {};")
    assert headers["content-type"].startswith("text/javascript")
    assert headers["cache-control"] == "no-cache"
    for name in (b"link.js", b"notes.unknown", b"../secret.txt", b"js/../plush.css", b"%2e%2e/secret.txt"):
        assert listener.raw(b"/static/" + name, BEARER)[0] in (400, 404), name


def test_the_package_ships_its_shell_login_page_style_and_scripts() -> None:
    names = build_manifest(STATIC)
    assert {"index.html", "login.html", "plush.css", "js/main.js", "js/api.js", "js/store.js"} <= set(names)
    for view in ("world", "application", "resources", "hosts", "runs"):
        assert f"js/views/{view}.js" in names


def test_pages_carry_the_security_headers_and_the_door_follows_the_rules(listener: Listener) -> None:
    cookie = f"Cookie: plush_{listener.api.port}={cookie_value(TOKEN)}"
    status, headers, _ = listener.raw(b"/login")
    assert status == 200
    csp = headers["content-security-policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
    assert headers["referrer-policy"] == "no-referrer" and headers["x-content-type-options"] == "nosniff"
    assert listener.raw(b"/static/plush.css")[0] == 200  # the login page's style
    assert listener.raw(b"/static/js/main.js")[0] == 401
    status, headers, _ = listener.raw(b"/")
    assert (status, headers["location"]) == (303, "/login")
    status, headers, body = listener.raw(b"/v1/hosts")
    assert status == 401 and b'"unauthorized"' in body and "access-control-allow-origin" not in headers
    status, headers, _ = listener.raw(f"/?token={TOKEN}".encode())
    assert status == 303 and headers["location"] == "/"
    cookie_set = f"plush_{listener.api.port}={cookie_value(TOKEN)}; Path=/; HttpOnly; SameSite=Strict"
    assert headers["set-cookie"] == cookie_set
    status, _, body = listener.raw(b"/?token=wrong")
    assert status == 401 and b'class="error" hidden' not in body
    status, headers, body = listener.raw(b"/", cookie)
    assert status == 200 and b"shell" in body and "content-security-policy" in headers
    assert listener.raw(b"/v1/hosts", cookie)[0] == 200
    status, _, body = listener.raw(b"/v1/quit", cookie, "Content-Length: 0", method=b"POST")
    assert status == 403 and b"X-Plush-Client: web" in body
    status, headers, _ = listener.raw(b"/logout", cookie, "X-Plush-Client: web", "Content-Length: 0", method=b"POST")
    assert status == 200 and "Max-Age=0" in headers["set-cookie"]
    status, _, _ = listener.raw(b"/v1/hosts", f"Cookie: plush_{listener.api.port}=forged")
    assert status == 401


def test_the_cookie_is_the_token_s_hmac_and_the_verdicts() -> None:
    value = cookie_value(TOKEN)
    assert TOKEN not in value and cookie_matches(value, TOKEN) and not cookie_matches(value, TOKEN + "x")
    assert not cookie_matches(None, TOKEN) and not cookie_matches("", TOKEN)
    assert verdict("GET", "/v1/hosts", True, None) is Verdict.ADMIT
    assert verdict("POST", "/v1/runs", True, None) is Verdict.NO_CLIENT_HEADER
    assert verdict("POST", "/v1/runs", True, "web") is Verdict.ADMIT
    assert verdict("POST", "/v1/runs", False, "web") is Verdict.UNAUTHORIZED
    assert verdict("GET", "/", False, None) is Verdict.SIGN_IN
    assert verdict("POST", "/login", False, None) is Verdict.PUBLIC
