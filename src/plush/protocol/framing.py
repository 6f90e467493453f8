"""Framing: how messages become bytes on a stream and back.

Every frame is ``length (4 bytes, big-endian) | kind (1 byte) | body``; ``length`` counts the kind byte and
the body. Two kinds:

- ``0x01`` JSON: the body is a UTF-8 JSON object ``{"t": type, "v": version, ...fields}``;
- ``0x02`` BINARY: the body is ``header length (2 bytes, big-endian) | JSON header | raw payload``; the
  header is the same object as a JSON frame's and the payload follows as is (no base64).

:func:`encode` returns immutable ``bytes`` so a controller encodes a broadcast once and writes the same
object to every peer. :class:`FrameDecoder` turns any split of the stream back into the same messages (a
property test checks it). A frame longer than ``max_frame`` is refused *from its 5-byte prefix*, before its
body is buffered, so a peer cannot make us hold more than ``max_frame`` bytes. After a
:class:`~plush.errors.ProtocolError` the decoder is broken and refuses further input.

Hostile input: whatever the bytes, :meth:`FrameDecoder.feed` returns messages or raises
:class:`~plush.errors.ProtocolError`, never anything else. JSON nested deeper than :data:`MAX_DEPTH` levels
(which would otherwise raise ``RecursionError`` here or in whoever walks the message later) and non-finite
numbers (``NaN``, ``Infinity``, ``1e999``, which :func:`encode` never writes) are protocol errors.

Pure: standard library only, Python 3.8 syntax, no asyncio (ships to agents).
"""

from __future__ import annotations

import json
import struct
from typing import Any, Dict, List, Optional, Tuple

from plush.errors import ProtocolError
from plush.protocol.messages import PROTOCOL_VERSION, Message, validate

__all__ = ["KIND_BINARY", "KIND_JSON", "MAX_DEPTH", "MAX_FRAME", "FrameDecoder", "encode", "encode_fields", "json_text"]

KIND_JSON = 0x01
KIND_BINARY = 0x02
#: the largest frame (kind byte + body) either side accepts
MAX_FRAME = 16 * 1024 * 1024
#: the deepest nesting of JSON arrays and objects a frame may hold (its own object is level 1)
MAX_DEPTH = 100
_PREFIX = struct.Struct(">IB")
_HLEN = struct.Struct(">H")
_MAX_HEADER = 0xFFFF
_RESERVED = ("t", "v")
_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode


class _NotFinite(ValueError):
    pass


def _constant(text: str) -> Any:
    raise _NotFinite("{} is not a finite number".format(text))


def _float(text: str) -> float:
    value = float(text)
    if value - value != 0.0:  # inf or nan
        raise _NotFinite("{} is not a finite number".format(text))
    return value


_loads = json.JSONDecoder(parse_constant=_constant, parse_float=_float).decode


def _too_deep(obj: Any, limit: int) -> bool:
    """Whether ``obj`` nests arrays/objects more than ``limit`` levels (iterative: no recursion)."""
    stack = [(obj, 1)]
    while stack:
        value, depth = stack.pop()
        children = value.values() if isinstance(value, dict) else value
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return False


def _header(msg: Message) -> bytes:
    for name in _RESERVED:
        if name in msg.fields:
            raise ProtocolError("message {!r}: field name {!r} is reserved for the frame".format(msg.type, name))
    obj: Dict[str, Any] = {"t": msg.type, "v": PROTOCOL_VERSION}
    obj.update(msg.fields)
    try:
        return _dumps(obj).encode("utf-8")
    except (TypeError, ValueError) as exc:
        raise ProtocolError("message {!r} cannot be encoded as JSON: {}".format(msg.type, exc)) from None


def _too_big(msg: Message, length: int, max_frame: int) -> ProtocolError:
    return ProtocolError("message {!r} is {} bytes, over the {} byte frame limit".format(msg.type, length, max_frame))


def encode(msg: Message, max_frame: int = MAX_FRAME) -> bytes:
    """The frame for ``msg``: a JSON frame, or a binary frame when ``msg.payload`` is not ``None``.

    The result can be written to any number of peers. Raises :class:`ProtocolError` if the message cannot be
    encoded or its frame would exceed ``max_frame``.
    """
    header = _header(msg)
    if msg.payload is None:
        length = 1 + len(header)
        if length > max_frame:
            raise _too_big(msg, length, max_frame)
        return _PREFIX.pack(length, KIND_JSON) + header
    if len(header) > _MAX_HEADER:
        raise ProtocolError("message {!r}: binary frame header over {} bytes".format(msg.type, _MAX_HEADER))
    length = 1 + _HLEN.size + len(header) + len(msg.payload)
    if length > max_frame:
        raise _too_big(msg, length, max_frame)
    return b"".join((_PREFIX.pack(length, KIND_BINARY), _HLEN.pack(len(header)), header, msg.payload))


def json_text(value: Any) -> bytes:
    """``value`` as frames encode it (compact UTF-8 JSON, no NaN): a part for :func:`encode_fields`."""
    try:
        return _dumps(value).encode("utf-8")
    except (TypeError, ValueError) as exc:
        raise ProtocolError("cannot be encoded as JSON: {}".format(exc)) from None


def encode_fields(mtype: str, fields: List[Tuple[str, bytes]], max_frame: int = MAX_FRAME) -> bytes:
    """The JSON frame of a message of type ``mtype`` whose fields are given already encoded (``(name,
    json_text(value))``, in order): the same bytes as :func:`encode`, but a big value that many frames share
    (the model every ``prepare`` carries) is encoded once, not once per frame. The caller vouches for the
    fields (no schema check here; the receiver checks as always)."""
    parts = [b'{"t":', json_text(mtype), b',"v":', str(PROTOCOL_VERSION).encode("ascii")]
    for name, value in fields:
        if name in _RESERVED:
            raise ProtocolError("message {!r}: field name {!r} is reserved for the frame".format(mtype, name))
        parts += [b",", json_text(name), b":", value]
    parts.append(b"}")
    header = b"".join(parts)
    length = 1 + len(header)
    if length > max_frame:
        raise ProtocolError("message {!r} is {} bytes, over the {} byte frame limit".format(mtype, length, max_frame))
    return _PREFIX.pack(length, KIND_JSON) + header


class FrameDecoder:
    """Incremental decoder: ``feed(bytes) -> list[Message]``.

    ``validate_schema`` checks each message against :data:`~plush.protocol.messages.SCHEMA`; turn it off
    only to test framing alone. ``max_frame`` may be lowered or raised between calls (the connection keeps
    it small until the peer has authenticated).
    """

    def __init__(self, max_frame: int = MAX_FRAME, validate_schema: bool = True, peer: Optional[str] = None) -> None:
        self.max_frame = max_frame
        self.validate_schema = validate_schema
        self.peer = peer
        self._buf = bytearray()
        self._broken = False

    @property
    def buffered(self) -> int:
        """Bytes held for an incomplete frame."""
        return len(self._buf)

    def feed(self, data: bytes) -> List[Message]:
        """Consume ``data``; return the messages it completes, in order."""
        if self._broken:
            raise ProtocolError("the stream was already broken by an earlier protocol error", peer=self.peer)
        buf = self._buf
        buf += data
        out: List[Message] = []
        pos = 0
        end = len(buf)
        try:
            while end - pos >= _PREFIX.size:
                length, kind = _PREFIX.unpack_from(buf, pos)
                if length < 1 or length > self.max_frame:
                    raise ProtocolError(
                        "frame of {} bytes refused (limit {})".format(length, self.max_frame), peer=self.peer
                    )
                if kind not in (KIND_JSON, KIND_BINARY):
                    raise ProtocolError("unknown frame kind 0x{:02x}".format(kind), peer=self.peer)
                if end - pos < 4 + length:
                    break
                start = pos + _PREFIX.size
                stop = pos + 4 + length
                out.append(self._message(kind, bytes(memoryview(buf)[start:stop])))
                pos = stop
        except ProtocolError:
            self._broken = True
            raise
        finally:
            if pos:
                del buf[:pos]
        return out

    def _message(self, kind: int, frame: bytes) -> Message:
        payload: Optional[bytes] = None
        body = memoryview(frame)  # a view of immutable bytes: slicing it copies nothing until bytes()
        try:
            if kind == KIND_JSON:
                header = body
            else:
                if len(body) < _HLEN.size:
                    raise ProtocolError("binary frame too short for its header length", peer=self.peer)
                (hlen,) = _HLEN.unpack_from(body, 0)
                if _HLEN.size + hlen > len(body):
                    raise ProtocolError("binary frame header length {} overruns the frame".format(hlen), peer=self.peer)
                header = body[_HLEN.size : _HLEN.size + hlen]
                payload = bytes(body[_HLEN.size + hlen :])
            raw = bytes(header)
            obj = _loads(raw.decode("utf-8"))
        except _NotFinite as exc:
            raise ProtocolError("frame holds a number that is not finite: {}".format(exc), peer=self.peer) from None
        except RecursionError:
            raise ProtocolError("frame nests deeper than {} levels".format(MAX_DEPTH), peer=self.peer) from None
        except (UnicodeDecodeError, ValueError) as exc:
            raise ProtocolError("frame is not valid UTF-8 JSON: {}".format(exc), peer=self.peer) from None
        if not isinstance(obj, dict):
            raise ProtocolError("frame header is not a JSON object", peer=self.peer)
        if raw.count(b"[") + raw.count(b"{") > MAX_DEPTH and _too_deep(obj, MAX_DEPTH):
            raise ProtocolError("frame nests deeper than {} levels".format(MAX_DEPTH), peer=self.peer)
        mtype = obj.pop("t", None)
        version = obj.pop("v", None)
        if not isinstance(mtype, str):
            raise ProtocolError("frame has no message type 't'", peer=self.peer)
        if version != PROTOCOL_VERSION or isinstance(version, bool):
            raise ProtocolError(
                "message {!r} has protocol version {!r}; this side speaks {}".format(mtype, version, PROTOCOL_VERSION),
                peer=self.peer,
            )
        msg = Message(mtype, obj, payload)
        if self.validate_schema:
            validate(msg, self.peer)
        return msg
