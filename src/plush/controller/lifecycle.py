"""The host lifecycle (pure): what one host of the mesh is doing, as a transition table.

Theory of operation
-------------------
A :class:`HostLifecycle` never starts an agent, writes a frame or reads a clock. Its owner (the engine, an
asyncio adapter) feeds it what happened -- an *event* and the current time ``now`` -- with
:meth:`~HostLifecycle.handle`, and carries out the *commands* it returns, in order: launch an agent, send
``prepare``/``go``/``reset``/``stop``, close the link, stop the agent, kill what a failed agent left, report
the failure, ask the healer (the failure ladder) for its step, abort the run, arm or cancel a timer. Timers
are returned, never armed: the owner calls :meth:`~HostLifecycle.handle_timer` (or :meth:`Lifecycles.
handle_timers`) at the deadline; a timeout that is not armed or not yet due is ignored, so a stale asyncio
timer is harmless. :class:`Lifecycles` drives many hosts by name, keeps a count per state (O(1) questions
such as "has every host joined?") and one heap of deadlines (aioquic's ``get_timer``/``handle_timer``); an
owner that fired its timer late (:data:`LATE`) says so, and a due timeout then moves on once by its lateness
instead of counting the controller's own absence against the host.

Events are *requests* (the controller decides: ``matched``, ``launch_started``, ``start_released``,
``reset_requested``, ``stop_requested``, ``released``, ``user_fail``, ``restart_requested``, ``rematched``),
*facts* (agents, the launcher, liveness and host monitors: ``agent_joined``, ``launch_failed``,
``prepared``, ``install_done``, ``install_failed``, ``all_done``, ``reset_done``, ``stopped``,
``agent_exited``, ``link_lost``, ``ping_timeout``, ``link_resumed``, ``limits_exceeded``) and *timeouts*
(``join_timeout``, ``reconnect_timeout``, ``stop_timeout``, ``kill_timeout``). :data:`TRANSITIONS` maps
``(state, event)`` to the states the event may lead to (a guard picks one); :data:`IGNORED` lists the
declared no-ops (late reports that cross a stop or a failure, a second report of one broken link). Any other
pair raises :class:`LifecycleError` naming the event, the host (and its component) and the state, and
changes nothing. docs/howitworks.md ("Host lifecycle") is the table with each row's commands.

The guards: ``agent_joined`` prepares a matched host (``preparing``) and leaves an unmatched one idle
(``joined``); a broken link (``link_lost``, ``ping_timeout``) of a host in ``installing``..``resetting``
opens the reconnect window (``lost``) when ``reconnect_window`` > 0, and fails it otherwise; ``link_resumed``
returns to the state the host had when it was lost; in ``lost``, ``start_released`` and ``reset_requested``
apply to that state (their messages are kept and replayed on resume); ``stopped`` returns a host to
``joined`` (ready for the next run) unless it was ``released``; ``restart_requested`` waits for the old
agent's death (``recovering``, at most the ``kill`` timeout) unless it is known dead. A ``done`` host is never
failed: lost (``gone``), over its limits (ignored) or marked failed by hand (refused), its finished component
blocks are not run again, by it or by a replacement.

Invariants: the state is always one of :data:`STATES`, and a step's state is one its row declares; a timer is
armed only in its state (``join``: connecting, ``reconnect``: lost, ``stop``: stopping, ``kill``:
recovering), armed on entry with a deadline after ``now`` and cancelled on exit; ``gone`` is final (a host
connected again gets a new lifecycle); an agent believed alive is stopped (``StopAgent``) when its host
becomes gone; a failed host reaches ``running`` again only through a new agent's join.

The controller's one keeper of host state is this table: :class:`~plush.controller.hoststates.HostStates`
(the mesh's, one lifecycle per host across runs) feeds it and hands the commands to the mesh (agents,
links) and the run (prepare, go, reset, failures); the run's slots read their state from it. Not lifecycle
state: the healer's count of replacements and which hosts a recovery started, ``slot.ok``/``slot.blocks``
(the run's).

Pure: no asyncio, no I/O (the layering test keeps it so). Longer than the house's ~400 lines on purpose: the
table, its guards and the many-host driver are one state machine, read together (as h11 keeps ``_state.py``);
the commands and timeouts live in :mod:`~plush.controller.lifecycle_commands`.
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

from plush.controller.lifecycle_commands import (
    AbortRun,
    ArmTimer,
    AskHealer,
    CancelTimer,
    CloseLink,
    Command,
    KillLeftovers,
    LaunchAgent,
    LifecycleTimeouts,
    ReportFailed,
    SendGo,
    SendPrepare,
    SendReset,
    SendStop,
    StopAgent,
    TimerKind,
)
from plush.errors import PlushError

__all__ = [
    "CONNECTED",
    "CONNECTING",
    "DONE",
    "EVENTS",
    "FAILED",
    "GONE",
    "IGNORED",
    "INSTALLING",
    "JOINED",
    "LATE",
    "LOST",
    "MATCHED",
    "POOLED",
    "PREPARING",
    "READY",
    "RECOVERING",
    "REPLACED",
    "RESETTING",
    "RUNNING",
    "STATES",
    "STOPPING",
    "TIMER_EVENT",
    "TIMER_STATE",
    "TRANSITIONS",
    "HostLifecycle",
    "LifecycleError",
    "Lifecycles",
]

# --- states ------------------------------------------------------------------------------------------------
POOLED, MATCHED, CONNECTING, JOINED, PREPARING = "pooled", "matched", "connecting", "joined", "preparing"
INSTALLING, READY, RUNNING, RESETTING, DONE = "installing", "ready", "running", "resetting", "done"
STOPPING, LOST, FAILED, RECOVERING, REPLACED, GONE = "stopping", "lost", "failed", "recovering", "replaced", "gone"
STATES: tuple[str, ...] = (
    *(POOLED, MATCHED, CONNECTING, JOINED, PREPARING, INSTALLING, READY, RUNNING, RESETTING, DONE),
    *(STOPPING, LOST, FAILED, RECOVERING, REPLACED, GONE),
)

# --- events ------------------------------------------------------------------------------------------------
REQUESTS: tuple[str, ...] = (
    *("matched", "launch_started", "start_released", "reset_requested", "stop_requested", "released"),
    *("user_fail", "restart_requested", "rematched"),
)
FACTS: tuple[str, ...] = (
    *("agent_started", "agent_joined", "launch_failed", "prepared", "install_done", "install_failed"),
    *("all_done", "reset_done", "agent_gone"),
    *("stopped", "agent_exited", "link_lost", "ping_timeout", "link_resumed", "limits_exceeded"),
)
#: the state each timer belongs to, and the event its deadline feeds
TIMER_STATE: dict[TimerKind, str] = {"join": CONNECTING, "reconnect": LOST, "stop": STOPPING, "kill": RECOVERING}
TIMER_EVENT: dict[TimerKind, str] = {kind: f"{kind}_timeout" for kind in TIMER_STATE}
#: seconds: an owner's timer that fires later than this after its deadline was late itself (a blocked loop, a
#: starved process); see :meth:`Lifecycles.handle_timers`
LATE = 0.25
_TIMER_OF: dict[str, TimerKind] = {event: kind for kind, event in TIMER_EVENT.items()}
EVENTS: tuple[str, ...] = REQUESTS + FACTS + tuple(TIMER_EVENT.values())

_IN_RUN = (PREPARING, INSTALLING, READY, RUNNING, RESETTING, DONE)  # in an application, with a link
_RESUMABLE = (INSTALLING, READY, RUNNING, RESETTING)  # a broken link may be resumed (the session is numbered)
_LIVE = (CONNECTING, JOINED, *_IN_RUN, LOST)  # a failure makes these failed
_LINKED = (JOINED, *_IN_RUN, STOPPING)  # a link to the agent is up
_FAILABLE = tuple(s for s in _LIVE if s != DONE)  # failed by hand or by its limits: a done host's work is done
_LINK_DOWN = ("link_lost", "ping_timeout")

#: the states in which a host's agent is connected (idle, in an application, or being stopped)
CONNECTED: frozenset[str] = frozenset({JOINED, *_IN_RUN, STOPPING})

#: (from states, events, to states); the table the docs show, row for row
_ROWS: tuple[tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]], ...] = (
    ((POOLED,), ("matched",), (MATCHED,)),
    ((CONNECTING,), ("matched", "stop_requested", "agent_started"), (CONNECTING,)),
    ((JOINED,), ("matched",), (PREPARING,)),
    ((POOLED, MATCHED), ("launch_started",), (CONNECTING,)),
    ((MATCHED,), ("stop_requested",), (POOLED,)),
    ((CONNECTING,), ("agent_joined",), (PREPARING, JOINED)),
    ((CONNECTING,), ("launch_failed", "join_timeout"), (FAILED,)),
    ((PREPARING,), ("prepared",), (INSTALLING,)),
    ((INSTALLING,), ("install_done",), (READY,)),
    ((INSTALLING,), ("install_failed",), (FAILED,)),
    ((READY,), ("start_released",), (RUNNING,)),
    ((RUNNING,), ("all_done",), (DONE,)),
    ((RUNNING, RESETTING, DONE), ("reset_requested",), (RESETTING,)),
    ((RESETTING,), ("reset_done",), (RUNNING,)),
    (_FAILABLE, ("user_fail", "limits_exceeded"), (FAILED,)),
    ((CONNECTING, PREPARING, *_RESUMABLE, LOST), ("agent_exited",), (FAILED,)),
    ((JOINED, DONE, STOPPING), ("agent_exited", *_LINK_DOWN), (GONE,)),
    ((PREPARING,), _LINK_DOWN, (FAILED,)),
    (_RESUMABLE, _LINK_DOWN, (LOST, FAILED)),
    ((LOST,), ("link_resumed",), _RESUMABLE),
    ((LOST,), ("start_released", "reset_requested"), (LOST,)),
    ((LOST,), ("reconnect_timeout", "agent_gone"), (FAILED,)),
    ((LOST,), ("stop_requested",), (GONE,)),
    (_IN_RUN, ("stop_requested",), (STOPPING,)),
    ((*_IN_RUN, STOPPING), ("released",), (STOPPING,)),
    ((STOPPING,), ("stopped",), (JOINED, GONE)),
    ((STOPPING,), ("stop_timeout",), (GONE,)),
    ((POOLED, MATCHED, CONNECTING, JOINED, LOST, FAILED, RECOVERING, REPLACED), ("released",), (GONE,)),
    ((FAILED, REPLACED), ("restart_requested",), (RECOVERING, CONNECTING)),
    ((FAILED,), ("rematched",), (REPLACED,)),
    ((FAILED,), ("agent_exited",), (FAILED,)),
    ((REPLACED,), ("agent_exited",), (REPLACED,)),
    ((RECOVERING,), ("agent_exited", "kill_timeout"), (CONNECTING,)),
    ((RECOVERING,), ("stop_requested",), (FAILED,)),
)
TRANSITIONS: dict[tuple[str, str], frozenset[str]] = {}
for _froms, _events, _tos in _ROWS:
    for _state in _froms:
        for _event in _events:
            assert (_state, _event) not in TRANSITIONS, (_state, _event)
            TRANSITIONS[(_state, _event)] = frozenset(_tos)

#: declared no-ops: reports that cross a stop or a failure, a second report of one broken link, a reset for a
#: host that will execute from the top anyway. (Timeouts not armed or not yet due are ignored in every state.)
IGNORED: dict[str, frozenset[str]] = {
    POOLED: frozenset({"stop_requested"}),
    CONNECTING: frozenset({*_LINK_DOWN, "reset_requested"}),  # a link that has not joined is not the host's yet
    JOINED: frozenset({"stop_requested", "reset_requested"}),
    PREPARING: frozenset({"reset_requested"}),
    INSTALLING: frozenset({"reset_requested"}),
    READY: frozenset({"reset_requested"}),
    RESETTING: frozenset({"all_done"}),  # a report of the execution the reset ended
    DONE: frozenset({"limits_exceeded"}),  # its work is done: failing it would give it to a replacement again
    LOST: frozenset(_LINK_DOWN),
    STOPPING: frozenset(
        {"stop_requested", "reset_requested", "limits_exceeded", "prepared", "install_done", "install_failed"}
        | {"all_done", "reset_done"}
    ),
    FAILED: frozenset({*_LINK_DOWN, "stop_requested", "reset_requested", "limits_exceeded", "agent_gone"}),
    RECOVERING: frozenset({*_LINK_DOWN, "reset_requested", "limits_exceeded", "agent_gone"}),
    REPLACED: frozenset({*_LINK_DOWN, "stop_requested", "reset_requested", "limits_exceeded", "agent_gone"}),
    GONE: frozenset(
        {*_LINK_DOWN, "agent_exited", "stopped", "released", "stop_requested", "reset_requested", "limits_exceeded"}
        | {"agent_gone"}
    ),
}
assert not any((s, e) in TRANSITIONS for s, events in IGNORED.items() for e in events)


class LifecycleError(PlushError):
    """An event the host's state does not allow: names the event, the host and the state; nothing changed."""

    def __init__(self, message: str, *, event: str, host: str, state: str) -> None:
        super().__init__(message)
        self.event = event
        self.host = host
        self.state = state


class HostLifecycle:
    """One host's lifecycle. Starts ``pooled`` (or ``matched`` with a ``component``)."""

    def __init__(self, host: str, timeouts: LifecycleTimeouts, now: float, *, component: str | None = None) -> None:
        self.host = host
        self.timeouts = timeouts
        self.component = component
        self._state = MATCHED if component is not None else POOLED
        self.since = now
        self.agent_alive = False  # an agent was started and is not known to have exited or been stopped
        self.leaving = False  # released while in a run: gone (not joined) once stopped
        self.resume_to: str | None = None  # while lost: the state a resumed link returns to
        self.reason = ""  # why the host last failed, was lost or left
        self.replacement: str | None = None
        self.timers: dict[TimerKind, float] = {}
        self.transitions = 0
        self.failures = 0
        self.restarts = 0

    @property
    def state(self) -> str:
        return self._state

    def accepts(self, event: str) -> bool:
        """Whether :meth:`handle` would take ``event`` now (as a step or a declared no-op) without raising."""
        state = self._state
        if event in IGNORED.get(state, ()) or event in TIMER_EVENT.values():
            return True
        if (state, event) not in TRANSITIONS:
            return False
        if state == LOST and event in ("start_released", "reset_requested"):
            inner = self.resume_to or RUNNING
            return event in IGNORED.get(inner, ()) or (inner, event) in TRANSITIONS
        return True

    def moves_on(self, event: str) -> bool:
        """Whether ``event`` would be a step of the table now (not refused, not a declared no-op)."""
        return (self._state, event) in TRANSITIONS and self.accepts(event)

    def _refuse(self, event: str, state: str, why: str = "") -> LifecycleError:
        who = self.host if self.component is None else f"{self.host} ({self.component})"
        text = f"host {who} cannot take {event!r} in state {state}" + (f": {why}" if why else "")
        return LifecycleError(text, event=event, host=self.host, state=state)

    def handle(
        self,
        event: str,
        now: float,
        *,
        reason: str = "",
        component: str | None = None,
        replacement: str | None = None,
    ) -> list[Command]:
        """Take ``event`` at ``now``; return the commands to carry out, in order. Raises
        :class:`LifecycleError` (changing nothing) when the event is unknown or not allowed in this state."""
        state = self._state
        if event not in EVENTS:
            raise self._refuse(event, state, "no such event")
        kind = _TIMER_OF.get(event)
        if kind is not None:
            deadline = self.timers.get(kind)
            if deadline is None or now < deadline:
                return []  # a stale or early timer
        elif event in IGNORED.get(state, ()):
            return []
        targets = TRANSITIONS.get((state, event))
        if targets is None:
            raise self._refuse(event, state)
        if event == "matched" and not component:
            raise self._refuse(event, state, "a match names the component")
        if state == LOST and event in ("start_released", "reset_requested"):
            return self._while_lost(event, now, reason)
        if kind is not None:
            del self.timers[kind]  # it fired: nothing to cancel
        new, commands = self._decide(state, event, now, reason, component, replacement)
        if new not in targets:  # the table is the contract: a decision outside it is a bug here
            raise AssertionError(f"{self.host}: {state} --{event}--> {new}, not in {sorted(targets)}")
        return self._move(new, now, commands)

    def _while_lost(self, event: str, now: float, reason: str) -> list[Command]:
        inner = self.resume_to or RUNNING
        if event in IGNORED.get(inner, ()):
            return []
        if (inner, event) not in TRANSITIONS:
            raise self._refuse(event, LOST, f"the host was {inner} when its link broke")
        self.resume_to, commands = self._decide(inner, event, now, reason, None, None)
        return commands  # kept by the host's session and replayed when it resumes

    def _decide(
        self, state: str, event: str, now: float, reason: str, component: str | None, replacement: str | None
    ) -> tuple[str, list[Command]]:
        h = self.host
        match event:
            case "matched":
                self.component = component
                return (PREPARING, [SendPrepare(h)]) if state == JOINED else (MATCHED if state == POOLED else state, [])
            case "launch_started":
                self.agent_alive = True
                return CONNECTING, [LaunchAgent(h)]
            case "agent_started":  # the join deadline counts from the agent's own start
                self.timers["join"] = deadline = now + self.timeouts.join
                return CONNECTING, [ArmTimer(h, "join", deadline)]
            case "agent_joined":
                return (PREPARING, [SendPrepare(h)]) if self.component is not None else (JOINED, [])
            case "prepared":
                return INSTALLING, [SendGo(h, "install")]
            case "install_done":
                return READY, []
            case "start_released":
                return RUNNING, [SendGo(h, "execute")]
            case "all_done":
                return DONE, []
            case "reset_requested":
                return RESETTING, [SendReset(h, reason or "the application restarts")]
            case "reset_done":
                return RUNNING, [SendGo(h, "execute")]
            case "stop_requested" | "released" if state in (*_IN_RUN, STOPPING):
                self.leaving = self.leaving or event == "released"
                return STOPPING, ([SendStop(h)] if state != STOPPING else [])
            case "stop_requested" if state in (MATCHED, CONNECTING):
                self.component = None  # the run is over; a connecting agent joins idle
                return (POOLED if state == MATCHED else CONNECTING), []
            case "stop_requested" if state == RECOVERING:
                return FAILED, []  # the restart is abandoned: the run is over
            case "stopped":
                return (GONE, []) if self.leaving else (JOINED, [])
            case "link_resumed":
                assert self.resume_to is not None
                return self.resume_to, []
            case "launch_failed":
                self.agent_alive = False  # and on to the failure below
            case "rematched":
                self.replacement = replacement
                return REPLACED, []
            case "restart_requested":
                self.restarts += 1
                self.replacement = None
                if self.agent_alive:
                    return RECOVERING, []
                self.agent_alive = True
                return CONNECTING, [KillLeftovers(h), LaunchAgent(h)]
            case "agent_exited" | "kill_timeout" if state == RECOVERING:
                self.agent_alive = True  # the new one
                return CONNECTING, [KillLeftovers(h), LaunchAgent(h)]
            case "agent_exited" if state in (FAILED, REPLACED):
                self.agent_alive = False
                return state, []
        # what is left: the host goes away or fails
        if event == "agent_exited":
            self.agent_alive = False
        if state == LOST and event in ("agent_exited", "agent_gone"):
            reason = f"{self.reason}; its agent {reason or ('exited' if event == 'agent_exited' else 'is gone')}"
        if event == "reconnect_timeout":
            reason = f"{self.reason}; its agent did not reconnect within {self.timeouts.reconnect:g}s"
        if event == "join_timeout":
            reason = f"its agent did not join within {self.timeouts.join:g}s"
        reason = reason or event.replace("_", " ")
        if event in (*_LINK_DOWN, "agent_exited") and state in (JOINED, DONE, STOPPING):
            self.reason = reason
            return GONE, [KillLeftovers(h)]  # no failure: idle, its work done, or being stopped anyway
        if event in _LINK_DOWN and state in _RESUMABLE and self.timeouts.reconnect > 0:
            self.resume_to, self.reason = state, reason
            return LOST, []
        if event in ("stop_timeout", "stop_requested", "released"):
            unclean = state not in (POOLED, MATCHED, JOINED, FAILED, RECOVERING, REPLACED)
            return GONE, ([KillLeftovers(h)] if unclean else [])
        self.failures += 1
        self.reason = reason
        commands: list[Command] = [CloseLink(h, reason)] if state in _LINKED else []
        commands += [KillLeftovers(h), ReportFailed(h, reason)]
        if event == "install_failed":
            commands.append(AbortRun(h, reason))
        else:
            commands.append(AskHealer(h, reason, restart=event not in ("user_fail", "limits_exceeded")))
        return FAILED, commands

    def _move(self, new: str, now: float, commands: list[Command]) -> list[Command]:
        old = self._state
        out: list[Command] = []
        for kind in [k for k in self.timers if TIMER_STATE[k] != new]:
            del self.timers[kind]
            out.append(CancelTimer(self.host, kind))
        out += commands
        if new == GONE and self.agent_alive:
            self.agent_alive = False
            out.append(StopAgent(self.host))
        if new == JOINED:
            self.component = None
        if new != LOST:
            self.resume_to = None
        if new != old:
            for kind, state in TIMER_STATE.items():
                if state == new:
                    deadline = now + getattr(self.timeouts, kind)
                    self.timers[kind] = deadline
                    out.append(ArmTimer(self.host, kind, deadline))
            self._state = new
            self.since = now
            self.transitions += 1
        return out

    def postpone(self, kind: TimerKind, deadline: float) -> list[Command]:
        """Move the armed timer ``kind`` to ``deadline`` if that is later (an agent still uploading while it
        stops); nothing when the timer is not armed."""
        armed = self.timers.get(kind)
        if armed is None or deadline <= armed:
            return []
        self.timers[kind] = deadline
        return [ArmTimer(self.host, kind, deadline)]

    def get_timer(self) -> float | None:
        """The earliest armed deadline, or None."""
        return min(self.timers.values(), default=None)

    def handle_timer(self, now: float) -> list[Command]:
        """Fire the timer that is due at ``now``, if any (a host has at most one armed: each belongs to a state)."""
        for kind, deadline in self.timers.items():
            if deadline <= now:
                return self.handle(TIMER_EVENT[kind], now)
        return []

    def statistics(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "state": self._state,
            "component": self.component,
            "since": self.since,
            "transitions": self.transitions,
            "failures": self.failures,
            "restarts": self.restarts,
            "agent_alive": self.agent_alive,
            "timers": dict(self.timers),
            "reason": self.reason,
        }


class Lifecycles:
    """Many hosts' lifecycles by name, with a count per state and one heap of deadlines.

    Drive every host through :meth:`handle` and :meth:`handle_timers` (not through the host object), so that
    the counts and the heap stay true."""

    def __init__(self, timeouts: LifecycleTimeouts, on_move: Callable[[str, str, str], None] | None = None) -> None:
        self.timeouts = timeouts
        #: ``on_move(host, old, new)`` after each change of a host's state, or of the state a ``lost`` host
        #: resumes to (its owner keeps its own counts)
        self.on_move = on_move
        self._hosts: dict[str, HostLifecycle] = {}
        self._counts: Counter[str] = Counter()
        self._heap: list[tuple[float, str, TimerKind]] = []
        self._granted: dict[tuple[str, TimerKind], float] = {}  # timeouts moved on for a late owner: new deadline
        #: how many timeouts the last :meth:`handle_timers` moved on because its owner was late
        self.postponed = 0
        self.events = 0

    def add(self, host: str, now: float, *, component: str | None = None) -> HostLifecycle:
        """A host enters the pool (``pooled``, or ``matched`` for ``component``); a gone one starts anew."""
        old = self._hosts.get(host)
        if old is not None and old.state != GONE:
            raise LifecycleError(
                f"host {host} is already known (it is {old.state})", event="add", host=host, state=old.state
            )
        self.forget(host)
        life = self._hosts[host] = HostLifecycle(host, self.timeouts, now, component=component)
        self._counts[life.state] += 1
        return life

    def forget(self, host: str) -> None:
        for kind in TIMER_STATE:
            self._granted.pop((host, kind), None)
        life = self._hosts.pop(host, None)
        if life is not None:
            self._counts[life.state] -= 1

    def __getitem__(self, host: str) -> HostLifecycle:
        return self._hosts[host]

    def get(self, host: str) -> HostLifecycle | None:
        return self._hosts.get(host)

    def __contains__(self, host: object) -> bool:
        return host in self._hosts

    def __iter__(self) -> Iterator[HostLifecycle]:
        return iter(self._hosts.values())

    def __len__(self) -> int:
        return len(self._hosts)

    def count(self, *states: str) -> int:
        """How many hosts are in any of ``states`` (O(1) per state)."""
        return sum(self._counts[s] for s in states)

    def hosts_in(self, *states: str) -> list[str]:
        return [name for name, life in self._hosts.items() if life.state in states]

    def handle(self, host: str, event: str, now: float, **details: Any) -> list[Command]:
        life = self._hosts[host]
        before, resume_to = life.state, life.resume_to
        commands = life.handle(event, now, **details)
        self.events += 1
        self._push(commands)
        if life.state != before:
            self._counts[before] -= 1
            self._counts[life.state] += 1
        if self.on_move is not None and (life.state != before or life.resume_to != resume_to):
            self.on_move(host, before, life.state)
        return commands

    def postpone(self, host: str, kind: TimerKind, deadline: float) -> list[Command]:
        """:meth:`HostLifecycle.postpone` for ``host``, its new deadline in the heap."""
        return self._push(self._hosts[host].postpone(kind, deadline))

    def _push(self, commands: list[Command]) -> list[Command]:
        for cmd in commands:
            if isinstance(cmd, ArmTimer):
                heapq.heappush(self._heap, (cmd.deadline, cmd.host, cmd.kind))
        return commands

    def _drop_stale(self) -> None:
        heap = self._heap
        while heap:
            deadline, host, kind = heap[0]
            life = self._hosts.get(host)
            if life is not None and life.timers.get(kind) == deadline:
                return
            heapq.heappop(heap)

    def next_deadline(self) -> float | None:
        """When :meth:`handle_timers` should next be called, or None."""
        self._drop_stale()
        return self._heap[0][0] if self._heap else None

    def handle_timers(self, now: float, late: float = 0.0) -> list[Command]:
        """Fire every timer due at ``now``, earliest first.

        ``late``: how many seconds after the earliest deadline the owner's timer fired -- its own lateness. Over
        :data:`LATE`, a due timeout is not taken: it moves on by as long as it waited past its deadline, once per
        armed timer (``postponed`` counts them), so that what arrived while the owner was not running (a join, a
        resumed link, a ``stopped``) is handled first; the time the controller was away is not counted against
        the host. Taken late a second time, it fires."""
        out: list[Command] = []
        self.postponed = 0
        while (deadline := self.next_deadline()) is not None and deadline <= now:
            _, host, kind = heapq.heappop(self._heap)
            granted = self._granted.pop((host, kind), None)
            if late > LATE and granted != deadline:
                moved = now + max(now - deadline, LATE)
                self._granted[(host, kind)] = moved
                out += self.postpone(host, kind, moved)
                self.postponed += 1
                continue
            out += self.handle(host, TIMER_EVENT[kind], now)
        return out

    def statistics(self) -> dict[str, Any]:
        return {
            "hosts": len(self._hosts),
            "states": {s: n for s in STATES if (n := self._counts[s])},
            "events": self.events,
            "timers": sum(len(life.timers) for life in self._hosts.values()),
            "next_deadline": self.next_deadline(),
        }
