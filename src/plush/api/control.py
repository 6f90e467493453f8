"""The control channel's wire format, and the blocking client of the ``plush`` commands that talk to a controller.

Role: one small request/response protocol over a controller's Unix socket (:mod:`plush.api.runtime` says where
it lives, :mod:`plush.api.server` serves it). Newline-delimited JSON, UTF-8:

- a **request** is one line, one JSON object: ``{"op": "info", "args": {"what": "nodes"}}``; at most
  :data:`MAX_REQUEST` bytes with its newline (a longer one is answered with an error and the connection is
  closed); a connection may carry several requests, one after the other;
- the answer is zero or more **event** lines, ``{"event": {...}}`` (a streamed request: a run's output, a
  subscription), then one **final** line: ``{"ok": true, "result": ...}`` or ``{"ok": false, "error":
  "message", "status": N}`` (``status``: the exit status the CLI gives it; ``problems``: a rejected spec's
  lines, when there are several).

The ops are :mod:`plush.api.handlers`' registry. Output bytes travel as text decoded with
``surrogateescape`` (:func:`bytes_to_text`, :func:`text_to_bytes`): JSON escapes the lone surrogates, and
every byte comes back as it was.

Standard library only, no asyncio: ``plush info`` and friends import this and nothing of the controller.
"""

from __future__ import annotations

import json
import os
import socket
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

from plush.errors import PlushError

__all__ = [
    "MAX_REPLY",
    "MAX_REQUEST",
    "ControlClient",
    "RemoteError",
    "bytes_to_text",
    "decode_line",
    "encode_line",
    "peer_uid",
    "text_to_bytes",
]

#: the longest request line, newline included
MAX_REQUEST = 64 * 1024
#: the longest reply line a client reads (process output comes in chunks far below this)
MAX_REPLY = 64 * 1024 * 1024
#: seconds a client waits for the controller to accept its connection
CONNECT_TIMEOUT = 5.0


class RemoteError(PlushError):
    """The controller refused a request; ``exit_code`` is the status it gave, ``problems`` a spec's lines."""

    def __init__(self, message: str, exit_code: int = 1, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.exit_code = exit_code
        self.problems = problems or []


def encode_line(message: dict[str, Any]) -> bytes:
    return json.dumps(message, separators=(",", ":")).encode() + b"\n"


def decode_line(line: bytes) -> dict[str, Any]:
    """The JSON object of one line; ValueError when it is not one."""
    message = json.loads(line)
    if not isinstance(message, dict):
        raise ValueError("not a JSON object")
    return message


def bytes_to_text(data: bytes) -> str:
    return data.decode("utf-8", "surrogateescape")


def text_to_bytes(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


def peer_uid(sock: socket.socket) -> int:
    """The uid of the process at the other end of a connected Unix socket (``SO_PEERCRED``)."""
    creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    _pid, uid, _gid = struct.unpack("3i", creds)
    return int(uid)


class ControlClient:
    """A connection to one controller: :meth:`call` sends a request and reads its answer."""

    def __init__(self, path: Path, name: str) -> None:
        self.name = name
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.settimeout(CONNECT_TIMEOUT)
        try:
            self._sock.connect(str(path))
        except OSError as exc:
            self._sock.close()
            from plush.api.runtime import NoController

            raise NoController(f"controller {name!r} does not answer at {path}: {exc.strerror or exc}") from None
        self._sock.settimeout(None)
        if peer_uid(self._sock) != os.geteuid():  # the other end is not this user's: say nothing to it
            self._sock.close()
            raise PlushError(f"{path} is served by another user's process; refused")
        self._file = self._sock.makefile("rb")

    def call(
        self, op: str, args: dict[str, Any] | None = None, on_event: Callable[[dict[str, Any]], None] | None = None
    ) -> Any:
        """Send ``op`` and return the result of its final line; ``on_event`` gets each event line before it.
        Raises :class:`RemoteError` for an error reply, PlushError when the controller went away."""
        self._sock.sendall(encode_line({"op": op, "args": args or {}}))
        while True:
            line = self._file.readline(MAX_REPLY)
            if not line.endswith(b"\n"):
                raise PlushError(f"controller {self.name!r} closed the connection before answering {op!r}")
            reply = decode_line(line)
            if "event" in reply:
                if on_event is not None:
                    on_event(reply["event"])
                continue
            if reply.get("ok"):
                return reply.get("result")
            raise RemoteError(str(reply.get("error")), int(reply.get("status", 1)), reply.get("problems"))

    def close(self) -> None:
        self._file.close()
        self._sock.close()

    def __enter__(self) -> ControlClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
