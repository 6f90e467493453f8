"""The web UI's pages on the HTTP API's listener: ``/`` (the app shell), ``/login``, ``/logout``,
``/static/<file>``, and who may see them.

Role: the front :class:`plush.api.http.HttpApi` is given by ``plush serve --http`` (:class:`WebUI`): it adds
its routes to the API's application and decides (:meth:`WebUI.admit`) on every request that did not carry the
API's bearer token, by the rules of :mod:`plush.web.auth`: the signed-in browser's cookie admits it (a change
only with ``X-Plush-Client: web``); the app shell without a cookie is a 303 to ``/login``; the API still
answers 401 JSON. ``GET /?token=T`` and the login form set the cookie and 303 to ``/`` (the token leaves the
address bar). Files come from the manifest of :mod:`plush.web.assets`, never from a path in the URL.

Invariants: every answer carries ``X-Content-Type-Options: nosniff`` and ``Cache-Control: no-cache``; every
HTML answer carries a strict Content-Security-Policy (scripts and styles of this origin only, no framing),
``Referrer-Policy: no-referrer`` and ``X-Frame-Options: DENY``; the token is never logged nor echoed; a wrong
token gets the login page with its error (status 401), the same words however it was wrong.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from plush.web.assets import Assets
from plush.web.auth import (
    CLIENT_HEADER,
    Verdict,
    cookie_header,
    cookie_matches,
    cookie_name,
    cookie_value,
    token_is,
    verdict,
)

__all__ = ["CSP", "HTML_HEADERS", "WRONG_TOKEN", "WebUI"]

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "font-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
COMMON_HEADERS = {"X-Content-Type-Options": "nosniff", "Cache-Control": "no-cache"}
HTML_HEADERS = {
    **COMMON_HEADERS,
    "Content-Security-Policy": CSP,
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}
#: the login page's error, shown by un-hiding its element (no data is ever put in the page)
_ERROR_HIDDEN = b'id="error" class="error" hidden'
_ERROR_SHOWN = b'id="error" class="error"'
WRONG_TOKEN = "That is not this controller's token."  # noqa: S105 (the words of the login page's error)
NO_CLIENT = f"a request signed in by the web UI's cookie that changes anything needs the header '{CLIENT_HEADER}: web'"


def _json_error(status: int, code: str, message: str) -> web.Response:
    response = web.json_response({"error": {"code": code, "message": message}}, status=status)
    response.headers.update(COMMON_HEADERS)
    return response


class WebUI:
    """The web UI of one HTTP listener (see the module). ``secure``: the listener serves TLS (the cookie is
    ``Secure`` then)."""

    def __init__(self, token: str, *, secure: bool, assets: Assets | None = None) -> None:
        self._token = token
        self._cookie = cookie_value(token)
        self.secure = secure
        self.assets = assets if assets is not None else Assets()

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/", self._shell)
        app.router.add_get("/login", self._login_page)
        app.router.add_post("/login", self._login)
        app.router.add_post("/logout", self._logout)
        app.router.add_get("/static/{name:.+}", self._static)

    # --- who may --------------------------------------------------------------------------------------------

    @staticmethod
    def _port(request: web.Request) -> int:
        sockname: Any = request.transport.get_extra_info("sockname") if request.transport is not None else None
        return int(sockname[1]) if sockname else 0

    def _signed_in(self, request: web.Request) -> bool:
        return cookie_matches(request.cookies.get(cookie_name(self._port(request))), self._token)

    def admit(self, request: web.Request) -> bool | web.StreamResponse:
        """A request without the bearer token: True to serve it, False for the API's 401, or the answer."""
        if request.path == "/" and "token" in request.query and request.method in ("GET", "HEAD"):
            return True  # the shell's handler signs in by URL (or says the token is wrong)
        said = verdict(request.method, request.path, self._signed_in(request), request.headers.get(CLIENT_HEADER))
        if said in (Verdict.ADMIT, Verdict.PUBLIC):
            return True
        if said is Verdict.SIGN_IN:
            return self._redirect("/login")
        if said is Verdict.NO_CLIENT_HEADER:
            return _json_error(403, "forbidden", NO_CLIENT)
        return False

    # --- the pages ------------------------------------------------------------------------------------------

    def _redirect(self, where: str, cookie: str | None = None) -> web.Response:
        response = web.Response(status=303, headers={**HTML_HEADERS, "Location": where})
        if cookie is not None:
            response.headers["Set-Cookie"] = cookie
        return response

    def _signed_in_answer(self, request: web.Request) -> web.Response:
        name = cookie_name(self._port(request))
        return self._redirect("/", cookie_header(name, self._cookie, secure=self.secure))

    def _page(self, name: str, *, status: int = 200, error: bool = False) -> web.Response:
        asset = self.assets.get(name)
        if asset is None:
            return _json_error(404, "not_found", f"the web UI's {name} is missing from this installation")
        body = asset.body.replace(_ERROR_HIDDEN, _ERROR_SHOWN) if error else asset.body
        return web.Response(body=body, status=status, headers={**HTML_HEADERS, "Content-Type": asset.content_type})

    async def _shell(self, request: web.Request) -> web.StreamResponse:
        if "token" in request.query:
            if token_is(request.query.get("token"), self._token):
                return self._signed_in_answer(request)
            return self._page("login.html", status=401, error=True)
        return self._page("index.html")

    async def _login_page(self, request: web.Request) -> web.StreamResponse:
        return self._page("login.html")

    async def _login(self, request: web.Request) -> web.StreamResponse:
        form = await request.post()
        given = form.get("token")
        if isinstance(given, str) and token_is(given, self._token):
            return self._signed_in_answer(request)
        return self._page("login.html", status=401, error=True)

    async def _logout(self, request: web.Request) -> web.StreamResponse:
        response = web.json_response({"signed_out": True}, headers=COMMON_HEADERS)
        name = cookie_name(self._port(request))
        response.headers["Set-Cookie"] = cookie_header(name, "", secure=self.secure, clear=True)
        return response

    async def _static(self, request: web.Request) -> web.StreamResponse:
        asset = self.assets.get(request.match_info["name"])
        if asset is None:
            return _json_error(404, "not_found", "no such file")
        headers = HTML_HEADERS if asset.content_type.startswith("text/html") else COMMON_HEADERS
        return web.Response(body=asset.body, headers={**headers, "Content-Type": asset.content_type})
