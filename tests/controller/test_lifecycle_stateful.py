"""Hypothesis stateful test of the host lifecycle: random event sequences over a table of hosts.

Invariants: every host is always in a declared state; an illegal event raises LifecycleError and changes
nothing (and ``accepts`` said so beforehand); every timer returned is in the future and armed only in its
state, and the owner's view of armed timers (from Arm/Cancel commands and firings) matches the host's; the
per-state counts are true; a host reaches ``running`` only through an agent's join after its last failure;
an agent believed alive is stopped when its host becomes gone; and at the end, stop then release (then the
timers) leave every host gone with no timer and no agent.
"""

from __future__ import annotations

from typing import Any

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from plush.controller.lifecycle import EVENTS, STATES, TIMER_EVENT, TIMER_STATE, LifecycleError, Lifecycles
from plush.controller.lifecycle_commands import ArmTimer, CancelTimer, Command, LifecycleTimeouts, StopAgent

HOSTS = ("h1", "h2", "h3")
PLAIN_EVENTS = [e for e in EVENTS if e not in TIMER_EVENT.values()]


def details(event: str) -> dict[str, Any]:
    if event == "matched":
        return {"component": "web"}
    if event == "rematched":
        return {"replacement": "h9"}
    return {"reason": event}


class LifecycleMachine(RuleBasedStateMachine):
    @initialize(reconnect=st.sampled_from([0.0, 10.0]), matched=st.lists(st.booleans(), min_size=3, max_size=3))
    def setup(self, reconnect: float, matched: list[bool]) -> None:
        self.now = 1000.0
        self.table = Lifecycles(LifecycleTimeouts(join=30.0, reconnect=reconnect, stop=15.0, kill=5.0))
        for host, m in zip(HOSTS, matched, strict=True):
            self.table.add(host, self.now, component="web" if m else None)
        self.armed: dict[tuple[str, str], float] = {}
        self.failed_since_join: set[str] = set()

    def _apply(self, host: str, before: str, alive: bool, commands: list[Command]) -> None:
        life = self.table[host]
        for cmd in commands:
            assert cmd.host == host
            if isinstance(cmd, ArmTimer):
                assert cmd.deadline > self.now, "a timer returned in the past"
                self.armed[(host, cmd.kind)] = cmd.deadline
            elif isinstance(cmd, CancelTimer):
                assert self.armed.pop((host, cmd.kind), None) is not None, "cancelled a timer never armed"
        if life.state == "gone" and before != "gone" and alive:  # (alive: not just reported exited)
            assert StopAgent(host) in commands, "a live agent left behind"
        if life.state == "failed" and before != "failed":
            self.failed_since_join.add(host)

    def _feed(self, host: str, event: str) -> None:
        life = self.table[host]
        before, alive, stats = life.state, life.agent_alive and event != "agent_exited", life.statistics()
        accepted = life.accepts(event)
        try:
            commands = self.table.handle(host, event, self.now, **details(event))
        except LifecycleError as exc:
            assert not accepted, f"accepts({event!r}) in {before} but handle raised"
            assert (exc.event, exc.host, exc.state) == (event, host, before)
            assert life.statistics() == stats, "a refused event changed the host"
            return
        assert accepted, f"{event!r} taken in {before} but accepts() said no"
        if event == "agent_joined":
            self.failed_since_join.discard(host)
        self._apply(host, before, alive, commands)

    @rule(host=st.sampled_from(HOSTS), data=st.data())
    def legal_event(self, host: str, data: st.DataObject) -> None:
        life = self.table[host]
        legal = [e for e in PLAIN_EVENTS if life.accepts(e)]
        if legal:
            self._feed(host, data.draw(st.sampled_from(legal)))

    @rule(host=st.sampled_from(HOSTS), event=st.sampled_from(PLAIN_EVENTS))
    def any_event(self, host: str, event: str) -> None:
        self._feed(host, event)

    @rule(seconds=st.floats(0.1, 40.0))
    def time_passes(self, seconds: float) -> None:
        self.now += seconds
        due = {key for key, deadline in self.armed.items() if deadline <= self.now}
        before = {h: (self.table[h].state, self.table[h].agent_alive) for h in HOSTS}
        commands = self.table.handle_timers(self.now)
        for key in due:
            self.armed.pop(key)  # fired
        for host in HOSTS:
            self._apply(host, *before[host], [c for c in commands if c.host == host])

    @invariant()
    def states_are_declared_and_counted(self) -> None:
        for state in STATES:
            assert self.table.count(state) == sum(1 for life in self.table if life.state == state)
        assert all(life.state in STATES for life in self.table)

    @invariant()
    def timers_are_armed_only_in_their_state_and_as_the_owner_knows(self) -> None:
        for life in self.table:
            assert all(TIMER_STATE[kind] == life.state for kind in life.timers)
            assert {(life.host, k): d for k, d in life.timers.items()} == {
                key: d for key, d in self.armed.items() if key[0] == life.host
            }
        deadlines = list(self.armed.values())
        assert self.table.next_deadline() == (min(deadlines) if deadlines else None)

    @invariant()
    def a_failed_host_is_never_running(self) -> None:
        for life in self.table:
            if life.host in self.failed_since_join:
                assert life.state not in ("preparing", "installing", "ready", "running", "resetting", "done")

    def teardown(self) -> None:
        if not hasattr(self, "table"):
            return
        for life in self.table:
            for event in ("stop_requested", "released"):
                if life.state != "gone" and life.accepts(event):
                    self._feed(life.host, event)
        self.time_passes(100.0)
        for life in self.table:
            assert life.state == "gone", f"{life.host} ended {life.state}"
            assert life.timers == {} and not life.agent_alive


TestLifecycle = LifecycleMachine.TestCase
TestLifecycle.settings = settings(max_examples=300, stateful_step_count=40, deadline=None)
