"""The sans-IO connection: one controller<->agent conversation as a state machine, with liveness timers.

Theory of operation
-------------------
A :class:`Connection` never touches a socket or a clock. Its owner (an asyncio adapter in ``plush.fabric``
or ``plush.agent.link``, or a test's pair harness) feeds it the bytes that arrived with
:meth:`~Connection.receive_data` and gets back validated messages; it passes each message it wants to send
through :meth:`~Connection.send` and writes the bytes it gets back. The connection itself sometimes has
something to say (a ``pong`` to a ``ping``, an agent's ``heartbeat``, the controller's ``ping`` after a
silence): it queues those, and the owner writes :meth:`~Connection.data_to_send` after every call. Time is
a parameter (``now``, seconds on any monotonic clock); the owner arms one timer at :meth:`get_timer` and
calls :meth:`handle_timer` when it fires (aioquic's pattern).

Both sides track the same conversation state; a message is legal only in the states listed below, in its
direction. An illegal message raises :class:`~plush.errors.ProtocolError` naming the event, the role and the
state (received) -- or the same error for a local bug (sent). After an error the owner closes the stream.

Authentication: the controller side acts on NOTHING before a ``join`` whose token matches (constant-time
compare). Any other frame, a malformed frame or a wrong token raises
:class:`~plush.errors.AuthenticationError` and nothing of that batch is returned. Until then frames are
limited to :data:`PREAUTH_MAX_FRAME` bytes. The token is removed from the ``join`` handed to the owner.
The agent side authenticates the controller by TLS (or SSH) and accepts only ``invite``, ``welcome`` and
``reject`` before it is welcomed.

Transitions (handshake and control messages; either direction as the table of messages says)::

    state       event      -> state         state       event      -> state
    INVITING    invite     -> INVITED       PREPARED    go         -> RUNNING
    INVITED     join       -> JOINING       RUNNING     go         -> RUNNING
    INVITED     reject     -> CLOSED        PREPARED    prepare    -> PREPARING   (re-prepare)
    JOINING     welcome    -> JOINED        RUNNING     prepare    -> PREPARING   (re-prepare)
    JOINING     reject     -> CLOSED        JOINED..STOPPING  stop -> STOPPING
    JOINED      prepare    -> PREPARING     STOPPING    stopped    -> CLOSED
    PREPARING   prepared   -> PREPARED      STOPPING    prepared   -> STOPPING    (crossed a stop)

Liveness messages (ping, pong, heartbeat, log, hostmon) and the distributed shell's (exec, exec.result) are
legal in every authenticated state (JOINED through STOPPING); run messages (files, blocks, processes, output,
barriers, work, uploads, finished, reset) from the first ``prepare`` on (PREPARING through STOPPING), so
messages that cross a re-prepare or a stop in flight are not errors; bytes arriving after CLOSED are
discarded for the same reason. ``ping`` is answered here and ``pong``/``heartbeat`` are consumed here: none
of the three reaches the owner.

Liveness: before authentication a peer has ``handshake_timeout`` seconds (default: ``join_timeout``) from the
connection to send a valid ``join``, and ``join_timeout`` seconds to be welcomed (JOINED). After it, the
agent sends a ``heartbeat`` when it has sent nothing for ``heartbeat_interval`` (taken from ``prepare``'s
settings; when they do not say, the default of :mod:`plush.protocol.agentsettings`, where the controller
takes its own). A side with a ``silence_timeout`` (the controller by default) sends a ``ping`` after that
long without hearing any byte, and declares the peer dead if nothing arrives within ``ping_timeout``:
:attr:`peer_dead` becomes true and :attr:`dead_reason` says why; the owner then closes the stream. An owner
that was late itself says so (``handle_timer(now, late)``): a ping deadline that passed while the owner was not
reading is not the peer's fault, and starts over once (:data:`LATE_FRACTION`).

Pure: standard library only, Python 3.8 syntax, no asyncio (ships to agents).
"""

from __future__ import annotations

from typing import Any, Dict, FrozenSet, List, Optional, Tuple

from plush.errors import AuthenticationError, ProtocolError
from plush.protocol.agentsettings import DEFAULTS, AgentSettings
from plush.protocol.framing import MAX_FRAME, FrameDecoder, encode
from plush.protocol.messages import A2C, BOTH, C2A, CONTROL, EXEC, HANDSHAKE, LIVENESS, RUN, SCHEMA, Message, validate
from plush.protocol.secret import Secret

__all__ = [
    "AGENT",
    "AUTHENTICATED",
    "CLOSED",
    "CONTROLLER",
    "INVITED",
    "INVITING",
    "JOINED",
    "JOINING",
    "LATE_FRACTION",
    "PREAUTH_MAX_FRAME",
    "PREPARED",
    "PREPARING",
    "RUNNING",
    "STOPPING",
    "TRANSITIONS",
    "Connection",
]

CONTROLLER = "controller"
AGENT = "agent"

INVITING = "INVITING"
INVITED = "INVITED"
JOINING = "JOINING"
JOINED = "JOINED"
PREPARING = "PREPARING"
PREPARED = "PREPARED"
RUNNING = "RUNNING"
STOPPING = "STOPPING"
CLOSED = "CLOSED"

AUTHENTICATED: FrozenSet[str] = frozenset({JOINED, PREPARING, PREPARED, RUNNING, STOPPING})
_RUN_STATES: FrozenSet[str] = frozenset({PREPARING, PREPARED, RUNNING, STOPPING})
_CATEGORY_STATES: Dict[str, FrozenSet[str]] = {LIVENESS: AUTHENTICATED, RUN: _RUN_STATES, EXEC: AUTHENTICATED}

#: (state, message type) -> next state, for handshake and control messages
TRANSITIONS: Dict[Tuple[str, str], str] = {
    (INVITING, "invite"): INVITED,
    (INVITED, "join"): JOINING,
    (INVITED, "reject"): CLOSED,
    (JOINING, "welcome"): JOINED,
    (JOINING, "reject"): CLOSED,
    (JOINED, "prepare"): PREPARING,
    (JOINED, "resume"): RUNNING,
    (PREPARED, "prepare"): PREPARING,
    (RUNNING, "prepare"): PREPARING,
    (PREPARING, "prepared"): PREPARED,
    (STOPPING, "prepared"): STOPPING,
    (PREPARED, "go"): RUNNING,
    (RUNNING, "go"): RUNNING,
    (STOPPING, "stopped"): CLOSED,
}
TRANSITIONS.update({(state, "stop"): STOPPING for state in AUTHENTICATED})

#: the largest frame accepted from a peer that has not authenticated yet
PREAUTH_MAX_FRAME = 64 * 1024
#: a timer that fires more than this fraction of ``ping_timeout`` after its deadline means its owner was late
#: (a healthy event loop fires within milliseconds); see :meth:`Connection.handle_timer`
LATE_FRACTION = 0.2


class Connection:
    """One side (``role`` = ``"controller"`` or ``"agent"``) of one controller<->agent connection.

    ``silence_timeout`` defaults to the agent settings' (:data:`~plush.protocol.agentsettings.DEFAULTS`)
    on the controller and to off (0) on the agent; 0 turns it off. ``heartbeat_interval`` (applies to the
    agent only) and ``ping_timeout`` default to the agent settings' too.
    """

    def __init__(
        self,
        role: str,
        token: Secret,
        now: float,
        *,
        peer: Optional[str] = None,
        heartbeat_interval: float = DEFAULTS.heartbeat_interval,
        silence_timeout: Optional[float] = None,
        ping_timeout: float = DEFAULTS.ping_timeout,
        join_timeout: float = 30.0,
        handshake_timeout: Optional[float] = None,
        max_frame: int = MAX_FRAME,
    ) -> None:
        if role not in (CONTROLLER, AGENT):
            raise ValueError("role must be 'controller' or 'agent', not {!r}".format(role))
        self.role = role
        self.peer = peer
        self._token = token
        self._send_dirs = (C2A, BOTH) if role == CONTROLLER else (A2C, BOTH)
        self._recv_dirs = (A2C, BOTH) if role == CONTROLLER else (C2A, BOTH)
        self.heartbeat_interval: Optional[float] = heartbeat_interval if role == AGENT else None
        if silence_timeout is None:
            silence_timeout = DEFAULTS.silence_timeout if role == CONTROLLER else 0.0
        self.silence_timeout: Optional[float] = silence_timeout if silence_timeout > 0 else None
        self.ping_timeout = ping_timeout
        self.join_timeout = join_timeout
        self.handshake_timeout = join_timeout if handshake_timeout is None else min(handshake_timeout, join_timeout)
        self.max_frame = max_frame
        self._decoder = FrameDecoder(PREAUTH_MAX_FRAME if role == CONTROLLER else max_frame, peer=peer)
        self._state = INVITING
        self._created = now
        self.last_heard = now
        self._last_sent = now
        self._ping_deadline: Optional[float] = None
        self._ping_postponed = False  # this ping's deadline was moved once because the owner was late
        #: seconds the last :meth:`handle_timer` moved a ping deadline because its owner was late (0: it did not);
        #: the owner reads it to log that it was late
        self.postponed = 0.0
        self._seq = 0
        self._outbox: List[bytes] = []
        self.peer_dead = False
        self.dead_reason: Optional[str] = None
        self.messages_in = 0
        self.messages_out = 0

    # -- state ------------------------------------------------------------------------------------------

    @property
    def state(self) -> str:
        return self._state

    @property
    def authenticated(self) -> bool:
        return self._state in AUTHENTICATED

    def close(self, reason: str = "closed") -> None:
        """Mark the conversation over (the stream closed, or the owner gave up on it)."""
        self._state = CLOSED
        if self.dead_reason is None:
            self.dead_reason = reason

    def _advance(self, msg_type: str, category: str, verb: str) -> None:
        state = self._state
        if category in (HANDSHAKE, CONTROL):
            nxt = TRANSITIONS.get((state, msg_type))
            if nxt is None:
                raise ProtocolError(
                    "{} cannot {} {!r} in state {}".format(self.role, verb, msg_type, state), peer=self.peer
                )
            self._state = nxt
        elif state not in _CATEGORY_STATES[category]:
            text = "{} cannot {} {!r} in state {}".format(self.role, verb, msg_type, state)
            raise ProtocolError(text, peer=self.peer)

    # -- receiving --------------------------------------------------------------------------------------

    def receive_data(self, data: bytes, now: float) -> List[Message]:
        """Consume bytes from the peer; return the messages for the owner, in order."""
        if self._state == CLOSED:
            return []  # late bytes that crossed the end of the conversation (a ping, a second stop)
        self.last_heard = now
        self._ping_deadline = None
        self._ping_postponed = False
        guarded = self.role == CONTROLLER and self._state in (INVITING, INVITED)
        try:
            out: List[Message] = []
            for msg in self._decoder.feed(data):
                if self._receive_one(msg, now):
                    out.append(msg)
        except AuthenticationError:
            self.close("authentication failed")
            raise
        except ProtocolError as exc:
            if guarded:
                self.close("authentication failed")
                raise AuthenticationError("unauthenticated peer: {}".format(exc), peer=self.peer) from None
            raise
        self.messages_in += len(out)
        return out

    def _receive_one(self, msg: Message, now: float) -> bool:
        spec = SCHEMA[msg.type]  # the decoder validated the type
        if self.role == CONTROLLER and self._state in (INVITING, INVITED):
            if msg.type != "join":
                raise AuthenticationError(
                    "peer sent {!r} before joining; nothing it sends is accepted until it joins".format(msg.type),
                    peer=self.peer,
                )
            if not self._token.matches(msg.fields.get("token")):
                raise AuthenticationError("peer sent a wrong join token", peer=self.peer)
            del msg.fields["token"]
        if spec.direction not in self._recv_dirs:
            raise ProtocolError(
                "{} received {!r}, which only a {} sends".format(self.role, msg.type, self.role), peer=self.peer
            )
        self._advance(msg.type, spec.category, "receive")
        if self._state == JOINING and self.role == CONTROLLER:
            self._decoder.max_frame = self.max_frame
        mtype = msg.type
        if mtype == "ping":
            self._queue(Message("pong", {"seq": msg.fields["seq"]}), now)
            return False
        if mtype in ("pong", "heartbeat"):
            return False
        if mtype == "prepare" and self.role == AGENT:
            self.heartbeat_interval = AgentSettings.from_dict(msg.fields["settings"]).heartbeat_interval
        return True

    # -- sending ----------------------------------------------------------------------------------------

    def send(self, msg: Message, now: float, encoded: Optional[bytes] = None) -> bytes:
        """Check that ``msg`` may be sent now, advance the state, and return its frame.

        ``encoded`` is ``encode(msg)`` computed once by the caller for a broadcast; it is returned as is.
        An agent's ``join`` gets the token filled in when it has none.
        """
        if self.role == AGENT and msg.type == "join" and "token" not in msg.fields:
            msg = Message("join", dict(msg.fields, token=self._token.reveal()))
            encoded = None
        spec = SCHEMA.get(msg.type)
        if spec is None:
            raise ProtocolError("cannot send unknown message type {!r}".format(msg.type), peer=self.peer)
        if encoded is None:
            validate(msg, self.peer)
        if self._state == CLOSED:
            raise ProtocolError("{} cannot send {!r}: the connection is closed".format(self.role, msg.type))
        if spec.direction not in self._send_dirs:
            raise ProtocolError("{} cannot send {!r}: wrong direction".format(self.role, msg.type), peer=self.peer)
        self._advance(msg.type, spec.category, "send")
        self._last_sent = now
        self.messages_out += 1
        return encode(msg, self.max_frame) if encoded is None else encoded

    def _queue(self, msg: Message, now: float) -> None:
        self._outbox.append(self.send(msg, now))

    def data_to_send(self) -> bytes:
        """Frames the connection queued by itself (pong, heartbeat, ping); write them after every call."""
        if not self._outbox:
            return b""
        data = b"".join(self._outbox)
        self._outbox.clear()
        return data

    # -- timers -----------------------------------------------------------------------------------------

    def get_timer(self) -> Optional[float]:
        """When :meth:`handle_timer` should next be called, or ``None`` when no timer is needed."""
        state = self._state
        if state == CLOSED or self.peer_dead:
            return None
        if state in (INVITING, INVITED):
            return self._created + self.handshake_timeout
        if state not in AUTHENTICATED:
            return self._created + self.join_timeout
        deadlines: List[float] = []
        if self.heartbeat_interval is not None:
            deadlines.append(self._last_sent + self.heartbeat_interval)
        if self._ping_deadline is not None:
            deadlines.append(self._ping_deadline)
        elif self.silence_timeout is not None:
            deadlines.append(self.last_heard + self.silence_timeout)
        return min(deadlines) if deadlines else None

    def handle_timer(self, now: float, late: float = 0.0) -> None:
        """Act on the timers that are due: join deadline, heartbeat, silence ping, ping deadline.

        ``late``: how many seconds after its deadline the owner's timer fired -- the owner's own lateness (a
        blocked event loop, a process starved of CPU), during which an answer may have arrived unread. A ping
        deadline judged more than :data:`LATE_FRACTION` of ``ping_timeout`` late does not count against the
        peer: it starts over (``now + ping_timeout``), once per ping, so the owner reads what arrived before
        judging again; :attr:`postponed` then says how late the owner was. On time, nothing changes."""
        self.postponed = 0.0
        state = self._state
        if state == CLOSED or self.peer_dead:
            return
        if state in (INVITING, INVITED):
            if now >= self._created + self.handshake_timeout:
                self._die("no valid join within {:g}s (handshake timeout)".format(self.handshake_timeout))
            return
        if state not in AUTHENTICATED:
            if now >= self._created + self.join_timeout:
                self._die("no complete handshake within {:g}s".format(self.join_timeout))
            return
        if self._ping_deadline is not None:
            if now >= self._ping_deadline:
                if late > LATE_FRACTION * self.ping_timeout and not self._ping_postponed:
                    self._ping_postponed = True
                    self._ping_deadline = now + self.ping_timeout
                    self.postponed = late
                    return
                self._die("no answer to a ping within {:g}s".format(self.ping_timeout))
                return
        elif self.silence_timeout is not None and now >= self.last_heard + self.silence_timeout:
            self._seq += 1
            self._queue(Message("ping", {"seq": self._seq}), now)
            self._ping_deadline = now + self.ping_timeout
            self._ping_postponed = False
        if self.heartbeat_interval is not None and now >= self._last_sent + self.heartbeat_interval:
            self._seq += 1
            self._queue(Message("heartbeat", {"seq": self._seq}), now)

    def _die(self, reason: str) -> None:
        self.peer_dead = True
        self.dead_reason = reason

    def statistics(self) -> Dict[str, Any]:
        return {
            "role": self.role,
            "state": self._state,
            "messages_in": self.messages_in,
            "messages_out": self.messages_out,
            "last_heard": self.last_heard,
            "peer_dead": self.peer_dead,
            "buffered": self._decoder.buffered,
        }
