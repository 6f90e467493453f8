"""The relay's wire: what one agent asks another for a content cache entry, and the answer (pure, no I/O).

Role. When a copy's hosts fetch a file from each other (docs/protocol.md, "Relayed copies";
:mod:`plush.agent.peers` moves the bytes), a child opens a TLS connection to its parent's relay listener and
sends one request line; the parent answers one line, then (when ``OK``) the bytes:

- request: ``PLUSH-RELAY 1 <token> <sha256> <offset>\\n`` -- ``token`` the copy's one-off token (43 to 64
  URL-safe characters: what :meth:`~plush.protocol.secret.Secret.generate` makes), ``sha256`` the entry (64
  lowercase hex), ``offset`` where to start (decimal, at most 15 digits: a child that lost its parent resumes
  at what it already holds);
- answer: ``OK <size>\\n`` then the entry's bytes from ``offset`` to ``size``; or ``NO <reason>\\n`` and the
  connection closes.

This is what a peer sends *before* its token is checked: :func:`parse_request` takes at most
:data:`MAX_LINE` bytes and refuses anything that is not exactly that line (:class:`WireError`, a ValueError),
so the listener reads a bounded line, parses it here and checks the token (constant time) before anything
else. Standard library only, Python 3.8.
"""

from __future__ import annotations

import re
from typing import NamedTuple

__all__ = ["MAX_LINE", "PeerRequest", "WireError", "answer_no", "answer_ok", "parse_answer", "parse_request"]

#: the longest request or answer line, newline included
MAX_LINE = 256
MAGIC = "PLUSH-RELAY"
VERSION = "1"
_TOKEN = re.compile(r"[A-Za-z0-9_-]{43,64}\Z")
_SHA = re.compile(r"[0-9a-f]{64}\Z")
_NUMBER = re.compile(r"[0-9]{1,15}\Z")
_REASON = re.compile(r"[\x20-\x7e]{0,200}\Z")


class WireError(ValueError):
    """A line that is not the relay's: the connection is closed."""


class PeerRequest(NamedTuple):
    token: str
    sha256: str
    offset: int

    def encode(self) -> bytes:
        return "{} {} {} {} {}\n".format(MAGIC, VERSION, self.token, self.sha256, self.offset).encode("ascii")


def _line(data: bytes) -> str:
    if len(data) > MAX_LINE:
        raise WireError("line longer than {} bytes".format(MAX_LINE))
    if not data.endswith(b"\n"):
        raise WireError("no end of line")
    try:
        return data[:-1].decode("ascii")
    except UnicodeDecodeError:
        raise WireError("not ASCII") from None


def parse_request(data: bytes) -> PeerRequest:
    """The request of the line ``data`` (its newline included); WireError when it is anything else."""
    fields = _line(data).split(" ")
    if len(fields) != 5 or fields[0] != MAGIC:
        raise WireError("not a relay request")
    if fields[1] != VERSION:
        raise WireError("relay version {!r} is not {}".format(fields[1][:8], VERSION))
    token, sha, offset = fields[2:]
    if not _TOKEN.match(token):
        raise WireError("malformed token")
    if not _SHA.match(sha):
        raise WireError("malformed sha256")
    if not _NUMBER.match(offset):
        raise WireError("malformed offset")
    return PeerRequest(token, sha, int(offset))


def answer_ok(size: int) -> bytes:
    return "OK {}\n".format(size).encode("ascii")


def answer_no(reason: str) -> bytes:
    text = "".join(c if " " <= c <= "~" else "?" for c in reason)[:200]
    return "NO {}\n".format(text).encode("ascii")


def parse_answer(data: bytes) -> int:
    """The size an ``OK`` line announces; WireError naming the peer's reason for a ``NO``, or a bad line."""
    text = _line(data)
    if text.startswith("OK ") and _NUMBER.match(text[3:]):
        return int(text[3:])
    if text.startswith("NO ") and _REASON.match(text[3:]):
        raise WireError("the peer refused: {}".format(text[3:]))
    raise WireError("not a relay answer")
