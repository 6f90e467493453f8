"""The typed message layer of the wire protocol: :class:`Message` and the table of known message types.

A message has a type (``"join"``, ``"output"``, ...), a dict of JSON fields and, for binary messages only, a
payload of raw bytes. :data:`SCHEMA` lists every known type with its direction, its category (which the
connection state machine uses to decide when it is legal), whether it travels in a binary frame, and its
required and optional fields with their JSON kinds. :func:`validate` checks a message against the table and
raises :class:`~plush.errors.ProtocolError` naming the type and the field. Both sides call it on every
message they decode (:class:`~plush.protocol.framing.FrameDecoder`) and on every message they send
(:meth:`~plush.protocol.connection.Connection.send` and the two outboxes that encode numbered messages).

The table is also the messages' typed accessor: ``msg["name"]`` and ``msg.get("name")`` on a message of a
known type accept only a field its type declares (a typo is a :class:`KeyError` naming type and field, not a
silent ``None``); the kind of the value read is the declared one, since the message was validated when it
was decoded or built for sending.

Invariants:
- the field names ``t`` and ``v`` are reserved for the frame (type, version) and never appear in ``fields``;
- a message holds only the fields its type declares (plus the sequence number :data:`SEQ_FIELD` on the
  numbered types, :attr:`MessageSpec.numbered`): an undeclared field, an unknown type, a missing required
  field or a value of the wrong kind is a protocol error. Controller and agent ship together (the
  controller bundles the agent it starts); an incompatible change bumps :data:`PROTOCOL_VERSION`;
- a binary type always has a payload, a JSON type never has one;
- ``prepare``'s ``settings`` is an :class:`~plush.protocol.agentsettings.AgentSettings` object (kind
  ``settings``): only known settings, each of its kind.

docs/protocol.md documents every type and field; a test keeps the two in step both ways.
Pure: standard library only, Python 3.8 syntax, no asyncio (ships to agents).
"""

from __future__ import annotations

from typing import Any, Dict, Mapping, NamedTuple, Optional, Tuple, Union

from plush.errors import ProtocolError
from plush.protocol.agentsettings import settings_problem

__all__ = [
    "A2C",
    "BOTH",
    "C2A",
    "CONTROL",
    "EXEC",
    "HANDSHAKE",
    "LIVENESS",
    "PROTOCOL_VERSION",
    "RUN",
    "SCHEMA",
    "SEQ_FIELD",
    "Message",
    "MessageSpec",
    "data_key",
    "package_key",
    "validate",
]

#: the protocol version carried in every frame's ``v``; bump it on incompatible changes
PROTOCOL_VERSION = 1

# directions
C2A = "controller->agent"
A2C = "agent->controller"
BOTH = "both"

# categories (see plush.protocol.connection for the states in which each is legal)
HANDSHAKE = "handshake"
CONTROL = "control"
LIVENESS = "liveness"
RUN = "run"
#: the distributed shell (``exec``/``exec.result``) and its file transfers (``copy*``, ``gather*``): legal in
#: every authenticated state, outside any application, never numbered (a reply lost with its link is not
#: replayed: the host is unreachable)
EXEC = "exec"

#: the field of a numbered message that carries its sequence number (see plush.protocol.reliable)
SEQ_FIELD = "q"

#: JSON kinds a field may have; a tuple of strings instead means "one of these strings"
FieldKind = Union[str, Tuple[str, ...]]
STR, INT, NUM, BOOL, DICT, LIST, ANY = "str", "int", "number", "bool", "object", "array", "any"
OPT_INT = "int|null"
#: an object of agent settings (:class:`~plush.protocol.agentsettings.AgentSettings`)
SETTINGS = "settings"


class MessageSpec(NamedTuple):
    """What the protocol knows about one message type."""

    type: str
    direction: str
    category: str
    required: Mapping[str, FieldKind]
    optional: Mapping[str, FieldKind] = {}
    binary: bool = False

    @property
    def numbered(self) -> bool:
        """Whether messages of this type carry a sequence number (``q``) and are kept until acknowledged:
        every run message, and the controller's ``go`` (docs/protocol.md, Reconnection)."""
        return self.category == RUN or self.type == "go"

    def kind_of(self, name: str) -> Optional[FieldKind]:
        """The declared kind of field ``name``, or None when this type does not declare it."""
        declared = _DECLARED.get(self.type)
        if declared is None or SCHEMA.get(self.type) is not self:  # a spec that is not the table's own
            declared = _declared(self)
        return declared.get(name)


class Message:
    """One protocol message: a type, JSON fields and (binary messages only) a payload.

    Messages are plain values: compare them with ``==``; read fields with ``msg["name"]`` or ``msg.get``.
    """

    __slots__ = ("fields", "payload", "type")

    def __init__(self, type: str, fields: Optional[Dict[str, Any]] = None, payload: Optional[bytes] = None) -> None:
        self.type = type
        self.fields: Dict[str, Any] = {} if fields is None else fields
        self.payload = payload

    @classmethod
    def of(cls, type: str, **fields: Any) -> Message:
        """A JSON message: ``Message.of("ping", seq=3)``."""
        return cls(type, fields)

    @classmethod
    def binary(cls, type: str, payload: bytes, **fields: Any) -> Message:
        """A binary message: ``Message.binary("output", data, path="/app/c/p", instance=0, stream="stdout")``."""
        return cls(type, fields, bytes(payload))

    def __getitem__(self, name: str) -> Any:
        _check_declared(self.type, name)
        return self.fields[name]

    def get(self, name: str, default: Any = None) -> Any:
        """Field ``name``, or ``default`` when absent; ``name`` must be a field this type declares."""
        _check_declared(self.type, name)
        return self.fields.get(name, default)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Message):
            return NotImplemented
        return self.type == other.type and self.fields == other.fields and self.payload == other.payload

    __hash__ = None  # type: ignore[assignment]  # mutable fields: not hashable

    def __repr__(self) -> str:
        extra = "" if self.payload is None else ", payload=<{} bytes>".format(len(self.payload))
        shown = {k: ("***" if k in ("token", "relay") else v) for k, v in self.fields.items()}  # relay: a token, a key
        return "Message({!r}, {!r}{})".format(self.type, shown, extra)


def _check_declared(mtype: str, name: str) -> None:
    spec = SCHEMA.get(mtype)
    if spec is not None and spec.kind_of(name) is None:
        raise KeyError("message {!r} declares no field {!r}".format(mtype, name))


def package_key(software: str, package: str) -> str:
    """The ``fetch`` key of a software package: ``pkg:<software>/<package>``."""
    return "pkg:{}/{}".format(software, package)


def data_key(item: str) -> str:
    """The ``fetch`` key of a workflow data file: ``data:<item>`` (the item as written in the spec)."""
    return "data:" + item


def _spec(
    type: str,
    direction: str,
    category: str,
    required: Optional[Mapping[str, FieldKind]] = None,
    optional: Optional[Mapping[str, FieldKind]] = None,
    *,
    binary: bool = False,
) -> MessageSpec:
    return MessageSpec(type, direction, category, required or {}, optional or {}, binary=binary)


_BLOCK_STATES = ("started", "completed", "failed", "skipped")
#: what the exit policies decided about a process exit or a failed block: the spec's actions
#: (plush.spec.model.ACTIONS) and the agent's own success / stopped / unhandled (plush.processes.policy)
ACTIONS = ("success", "stopped", "unhandled", "ignore", "restart_process", "restart_application", "abort")

#: every known message type
SCHEMA: Dict[str, MessageSpec] = {
    s.type: s
    for s in (
        # handshake: INVITE -> JOIN -> (WELCOME | REJECT) -> PREPARE -> PREPARED -> GO
        _spec("invite", C2A, HANDSHAKE, {"run": STR, "protocol": INT}),
        _spec(
            "join",
            A2C,
            HANDSHAKE,
            {
                "token": STR,
                "host": STR,
                "pid": INT,
                "hostname": STR,
                "python": STR,
                "workdir": STR,
                "agent_version": STR,
            },
            {"resume": BOOL, "received": INT},
        ),
        _spec("welcome", C2A, HANDSHAKE, {"host": STR}),
        _spec("reject", C2A, HANDSHAKE, {"reason": STR}),
        _spec("prepare", C2A, HANDSHAKE, {"spec": DICT, "host": DICT, "settings": SETTINGS}),
        _spec("prepared", A2C, HANDSHAKE),
        _spec("resume", C2A, HANDSHAKE, {"received": INT}),
        _spec("go", C2A, HANDSHAKE, {"stage": ("install", "execute")}, {"instances": DICT}),
        # software installation and files
        _spec("installed", A2C, RUN, {"software": LIST}),
        _spec("install.failed", A2C, RUN, {"software": STR, "reason": STR}),
        _spec("fetch", A2C, RUN, {"req": INT, "key": STR}, {"port": INT, "offset": INT}),
        _spec("file.peers", C2A, RUN, {"req": INT, "sources": LIST}),
        _spec("file.data", C2A, RUN, {"req": INT}, binary=True),
        _spec("file.end", C2A, RUN, {"req": INT, "size": INT, "sha256": STR}),
        _spec("file.error", C2A, RUN, {"req": INT, "reason": STR}),
        # execution
        _spec("block", A2C, RUN, {"path": STR, "state": _BLOCK_STATES}, {"reason": STR, "action": ACTIONS}),
        _spec("proc.started", A2C, RUN, {"path": STR, "instance": INT, "pid": INT}),
        _spec(
            "proc.exited",
            A2C,
            RUN,
            {"path": STR, "instance": INT, "code": OPT_INT, "signal": OPT_INT},
            {"action": ACTIONS, "rule": STR, "liveness": STR},
        ),
        _spec("output", A2C, RUN, {"path": STR, "instance": INT, "stream": ("stdout", "stderr")}, binary=True),
        _spec("barrier.enter", A2C, RUN, {"name": STR, "path": STR}),
        _spec("barrier.release", C2A, RUN, {"name": STR, "late": BOOL}),
        _spec("barrier.leave", A2C, RUN, {"name": STR}),
        _spec("work.next", A2C, RUN, {"path": STR}),
        _spec("work.item", C2A, RUN, {"path": STR, "item": ANY}),
        _spec("work.none", C2A, RUN, {"path": STR}),
        _spec("work.done", A2C, RUN, {"path": STR, "item": ANY, "ok": BOOL}),
        _spec("upload", A2C, RUN, {"path": STR, "name": STR}, binary=True),
        _spec("upload.end", A2C, RUN, {"path": STR, "name": STR, "size": INT, "sha256": STR}, {"mode": INT}),
        _spec("finished", A2C, RUN, {"ok": BOOL}),
        _spec("reset", C2A, RUN, {"reason": STR}),
        _spec("reset.done", A2C, RUN),
        _spec("restart", C2A, RUN, {"path": STR, "reason": STR}),
        _spec("end", C2A, RUN, {"grace": NUM, "reason": STR}),
        _spec("ended", A2C, RUN),
        # control
        _spec("stop", C2A, CONTROL, {"grace": NUM, "reason": STR}),
        _spec("stopped", A2C, CONTROL),
        # liveness and reports, legal in every authenticated state
        _spec("ping", BOTH, LIVENESS, {"seq": INT}),
        _spec("pong", BOTH, LIVENESS, {"seq": INT}),
        _spec("heartbeat", A2C, LIVENESS, {"seq": INT}),
        _spec("log", A2C, LIVENESS, {"level": ("debug", "info", "warning", "error"), "text": STR}),
        _spec("hostmon", A2C, LIVENESS, {"sample": DICT}),
        _spec("ack", BOTH, LIVENESS, {"q": INT}),
        # the distributed shell (plush exec): one request, one reply, outside any application
        _spec("exec", C2A, EXEC, {"req": INT, "argv": LIST, "timeout": NUM, "limit": INT}),
        _spec(
            "exec.result",
            A2C,
            EXEC,
            {
                "req": INT,
                "code": OPT_INT,
                "signal": OPT_INT,
                "out": INT,
                "truncated": BOOL,
                "timed_out": BOOL,
                "duration": NUM,
            },
            binary=True,
        ),
        # file fan-out (plush copy) and fan-in (plush gather), outside any application, through the content cache
        _spec("copy", C2A, EXEC, {"req": INT, "dest": STR, "sha256": STR, "size": INT, "mode": INT}, {"relay": DICT}),
        _spec("copy.fetch", A2C, EXEC, {"req": INT}, {"port": INT, "offset": INT}),
        _spec("copy.peers", C2A, EXEC, {"req": INT, "sources": LIST}),
        _spec("copy.data", C2A, EXEC, {"req": INT}, binary=True),
        _spec("copy.end", C2A, EXEC, {"req": INT}, {"error": STR}),
        _spec("copy.result", A2C, EXEC, {"req": INT, "ok": BOOL, "cached": BOOL}, {"reason": STR}),
        _spec("gather", C2A, EXEC, {"req": INT, "path": STR}),
        _spec("gather.data", A2C, EXEC, {"req": INT}, binary=True),
        _spec(
            "gather.end", A2C, EXEC, {"req": INT, "ok": BOOL}, {"size": INT, "sha256": STR, "mode": INT, "reason": STR}
        ),
    )
}


def _declared(spec: MessageSpec) -> Dict[str, FieldKind]:
    out: Dict[str, FieldKind] = dict(spec.required)
    out.update(spec.optional)
    if spec.numbered:
        out.setdefault(SEQ_FIELD, INT)
    return out


#: every type's fields (required, optional, and ``q`` when numbered) -> kind: one lookup per field
_DECLARED: Dict[str, Dict[str, FieldKind]] = {t: _declared(spec) for t, spec in SCHEMA.items()}


def _kind_ok(kind: FieldKind, value: Any) -> bool:
    if isinstance(kind, tuple):
        return isinstance(value, str) and value in kind
    if kind == ANY:
        return True
    if kind == STR:
        return isinstance(value, str)
    if kind == BOOL:
        return isinstance(value, bool)
    if kind == INT:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == OPT_INT:
        return value is None or (isinstance(value, int) and not isinstance(value, bool))
    if kind == NUM:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind == DICT:
        return isinstance(value, dict)
    if kind == LIST:
        return isinstance(value, list)
    if kind == SETTINGS:
        return isinstance(value, dict) and settings_problem(value) is None
    raise AssertionError("unknown field kind " + repr(kind))


def _kind_name(kind: FieldKind, value: Any = None) -> str:
    if kind == SETTINGS:
        problem = settings_problem(value) if isinstance(value, dict) else None
        return "agent settings" + (" ({})".format(problem) if problem else "")
    return "one of " + "|".join(kind) if isinstance(kind, tuple) else kind


def validate(msg: Message, peer: Optional[str] = None) -> MessageSpec:
    """Check ``msg`` against :data:`SCHEMA`; return its spec or raise :class:`ProtocolError`.

    The error names the type and the field: unknown type, wrong frame kind, missing field, undeclared
    field, value of the wrong kind."""
    spec = SCHEMA.get(msg.type)
    if spec is None:
        raise ProtocolError("unknown message type {!r}".format(msg.type), peer=peer)
    if spec.binary and msg.payload is None:
        raise ProtocolError("message {!r} must travel in a binary frame".format(msg.type), peer=peer)
    if not spec.binary and msg.payload is not None:
        raise ProtocolError("message {!r} must travel in a JSON frame, not a binary one".format(msg.type), peer=peer)
    fields = msg.fields
    for name in spec.required:
        if name not in fields:
            raise ProtocolError("message {!r} is missing field {!r}".format(msg.type, name), peer=peer)
    declared = _DECLARED[msg.type]
    for name, value in fields.items():
        kind = declared.get(name)
        if kind is None:
            raise ProtocolError("message {!r} has undeclared field {!r}".format(msg.type, name), peer=peer)
        if not _kind_ok(kind, value):
            raise ProtocolError(
                "message {!r} field {!r} must be {}, got {}".format(
                    msg.type, name, _kind_name(kind, value), _show(value)
                ),
                peer=peer,
            )
    return spec


def _show(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
