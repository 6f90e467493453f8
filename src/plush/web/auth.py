"""Who may use the web UI: the API's token, carried by a browser as a cookie derived from it.

Role: the pure rules of :mod:`plush.web.pages` (no I/O). A browser signs in once with the token (``GET
/?token=T`` or the login form); it then holds an HttpOnly, SameSite=Strict cookie whose value is an HMAC of
the token (:func:`cookie_value`), so the token itself is never stored by the browser nor sent again, and the
cookie is valid exactly as long as the token. :func:`verdict` says what becomes of a request that did not
carry the token as ``Authorization: Bearer``.

Invariants: secrets are compared in constant time (:func:`hmac.compare_digest`); a request authenticated by
the cookie that changes anything (a method other than GET/HEAD) must carry ``X-Plush-Client: web``, a header
no other site can make a browser send (no CORS header is ever sent), else it is refused (CSRF); the cookie's
name carries the listener's port, so two controllers on one machine do not overwrite each other's cookie.
"""

from __future__ import annotations

import hashlib
import hmac
from enum import Enum

__all__ = [
    "CLIENT_HEADER",
    "CLIENT_VALUE",
    "SAFE_METHODS",
    "Verdict",
    "cookie_header",
    "cookie_matches",
    "cookie_name",
    "cookie_value",
    "token_is",
    "verdict",
]

CLIENT_HEADER = "X-Plush-Client"
CLIENT_VALUE = "web"
SAFE_METHODS = frozenset({"GET", "HEAD"})
#: what the cookie's HMAC signs (a new label invalidates every cookie handed out before)
_LABEL = b"plush web UI session v1"
#: paths served without a token: the login page and what it needs
PUBLIC = frozenset({"/login", "/static/plush.css"})


def cookie_name(port: int) -> str:
    return f"plush_{port}"


def cookie_value(token: str) -> str:
    """The cookie a signed-in browser holds: HMAC-SHA256 of a fixed label keyed by the token (hex)."""
    return hmac.new(token.encode(), _LABEL, hashlib.sha256).hexdigest()


def cookie_matches(value: str | None, token: str) -> bool:
    if not value:
        return False
    return hmac.compare_digest(value.encode("utf-8", "surrogateescape"), cookie_value(token).encode())


def token_is(given: str | None, token: str) -> bool:
    """Whether ``given`` (a form field, a query parameter) is the token (constant time)."""
    if given is None:
        return False
    return hmac.compare_digest(given.strip().encode("utf-8", "surrogateescape"), token.encode())


def cookie_header(name: str, value: str, *, secure: bool, clear: bool = False) -> str:
    """A ``Set-Cookie`` value: HttpOnly, SameSite=Strict, the whole site, ``Secure`` over TLS."""
    parts = [f"{name}={'' if clear else value}", "Path=/", "HttpOnly", "SameSite=Strict"]
    if clear:
        parts.append("Max-Age=0")
    if secure:
        parts.append("Secure")
    return "; ".join(parts)


class Verdict(Enum):
    """What becomes of a request without the bearer token."""

    ADMIT = "admit"  # the cookie, and (if it changes anything) the client header
    PUBLIC = "public"  # served to anyone (the login page)
    SIGN_IN = "sign_in"  # the app shell without a cookie: to the login page
    UNAUTHORIZED = "unauthorized"  # 401
    NO_CLIENT_HEADER = "no_client_header"  # the cookie, but a change without X-Plush-Client: 403


def verdict(method: str, path: str, cookie_ok: bool, client: str | None) -> Verdict:
    """The rule (pure): see the module."""
    if path in PUBLIC:
        return Verdict.PUBLIC
    if cookie_ok:
        if method.upper() in SAFE_METHODS or client == CLIENT_VALUE:
            return Verdict.ADMIT
        return Verdict.NO_CLIENT_HEADER
    if path == "/" and method.upper() in SAFE_METHODS:
        return Verdict.SIGN_IN
    return Verdict.UNAUTHORIZED
