"""The HTTP API's bearer token: created once, kept 0600 in the state directory, compared in constant time.

Role: who may use ``plush serve --http`` (:mod:`plush.api.http`). The token is 32 random bytes (URL-safe
base64) in ``<state_dir>/api-token``, written once with ``O_EXCL`` (mode 0600, never following a symlink) and
read on every later start, so clients keep it across restarts; ``plush serve --show-token`` prints it.
Invariants: the token is never logged nor put on a command line; :func:`token_matches` compares in constant
time; a token file that is not a regular 0600 file of this user is refused (:class:`TokenError`, exit 2).
"""

from __future__ import annotations

import contextlib
import hmac
import os
import secrets
import stat
from pathlib import Path

from plush.errors import PlushError

__all__ = ["TOKEN_FILE", "TokenError", "ensure_token", "token_matches"]

TOKEN_FILE = "api-token"  # noqa: S105 (a file name)


class TokenError(PlushError):
    """The token file cannot be used safely."""

    exit_code = 2


def ensure_token(state_dir: Path) -> str:
    """The token of ``state_dir``, created on first use."""
    state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = state_dir / TOKEN_FILE
    with contextlib.suppress(FileExistsError):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        try:
            os.write(fd, (secrets.token_urlsafe(32) + "\n").encode())
        finally:
            os.close(fd)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as exc:
        raise TokenError(f"cannot read the API token {path}: {exc.strerror}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid() or st.st_mode & 0o077:
            raise TokenError(f"the API token {path} is not a 0600 file of this user; remove it")
        token = os.read(fd, 4096).decode("ascii", "replace").strip()
    finally:
        os.close(fd)
    if len(token) < 32:
        raise TokenError(f"the API token {path} is too short; remove it (a new one is made)")
    return token


def token_matches(header: str | None, token: str) -> bool:
    """Whether an ``Authorization`` header carries ``token`` as ``Bearer TOKEN`` (constant time)."""
    if header is None or not header.startswith("Bearer "):
        return False
    given = header[len("Bearer ") :].strip().encode("utf-8", "surrogateescape")  # any bytes a header may carry
    return hmac.compare_digest(given, token.encode())
