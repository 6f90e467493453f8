"""The agent's warnings and errors, forwarded to its controller as ``log`` messages.

Role. An agent writes its log to its own ``agent.log`` on its host; a remote controller would never see it.
:class:`LogForwarder` is a :mod:`logging` handler (WARNING and up, on the ``plush`` logger) that also sends
each such line to the controller as ``log {level, text}`` (docs/protocol.md), which the controller records
as the event ``agent.log`` of that host.

Invariants: forwarding never raises and never blocks; a ``log`` message is a liveness message, so it goes
out on the current link or is dropped while the link is down (it is not numbered, not kept); a line logged
while a line is being forwarded (by the send path itself) is not forwarded again; a line from another
thread is handed to the event loop's thread; ``text`` is at most :data:`MAX_TEXT` characters.

Ships to agents: standard library only, Python 3.8 syntax.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading

from plush.agent.link import Channel
from plush.protocol.messages import Message

__all__ = ["MAX_TEXT", "LogForwarder"]

#: the longest ``text`` of a forwarded line (characters); longer lines are cut, with a marker
MAX_TEXT = 2000


class LogForwarder(logging.Handler):
    """Sends the warnings and errors logged in this process to the controller over ``channel``."""

    def __init__(self, channel: Channel, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(logging.WARNING)
        self.channel = channel
        self.loop = loop
        self._thread = threading.get_ident()
        self._busy = False
        self.setFormatter(logging.Formatter("%(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = self.format(record)
        except Exception:  # a bad format argument: logging's own handler reports it locally
            return
        if len(text) > MAX_TEXT:
            text = text[: MAX_TEXT - 3] + "..."
        level = "error" if record.levelno >= logging.ERROR else "warning"
        if threading.get_ident() == self._thread:
            self._send(level, text)
        else:
            with contextlib.suppress(RuntimeError):  # the loop is closed: the agent is exiting
                self.loop.call_soon_threadsafe(self._send, level, text)

    def _send(self, level: str, text: str) -> None:
        if self._busy:
            return
        self._busy = True
        try:
            self.channel.send(Message.of("log", level=level, text=text))
        except Exception:  # noqa: S110 (a closed link or a closing loop: the line stays in agent.log)
            pass
        finally:
            self._busy = False

    def attach(self) -> None:
        logging.getLogger("plush").addHandler(self)

    def detach(self) -> None:
        logging.getLogger("plush").removeHandler(self)
