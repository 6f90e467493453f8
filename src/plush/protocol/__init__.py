"""The wire protocol between controller, proxies and agents: framing, messages, the sans-IO connection
and liveness state machines. Pure: standard library only, Python 3.8 syntax, no asyncio (ships to agents).

- :mod:`plush.protocol.messages`: :class:`Message` and the table of message types (:data:`SCHEMA`);
- :mod:`plush.protocol.framing`: :func:`encode` and :class:`FrameDecoder`;
- :mod:`plush.protocol.connection`: :class:`Connection`, the per-peer state machine with liveness timers;
- :mod:`plush.protocol.secret`: :class:`Secret`, the masked join token.

docs/protocol.md is the reference of frames and messages.
"""

from plush.protocol.connection import Connection
from plush.protocol.framing import MAX_FRAME, FrameDecoder, encode
from plush.protocol.messages import PROTOCOL_VERSION, SCHEMA, Message, validate
from plush.protocol.secret import Secret

__all__ = [
    "MAX_FRAME",
    "PROTOCOL_VERSION",
    "SCHEMA",
    "Connection",
    "FrameDecoder",
    "Message",
    "Secret",
    "encode",
    "validate",
]
