"""The host lifecycle (pure): every transition of the table, its commands and timers, on a fake clock."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from fake_clock import FakeClock
from plush.config import Settings
from plush.controller.lifecycle import (
    EVENTS,
    IGNORED,
    STATES,
    TIMER_EVENT,
    TIMER_STATE,
    TRANSITIONS,
    HostLifecycle,
    LifecycleError,
    Lifecycles,
)
from plush.controller.lifecycle_commands import (
    AbortRun,
    ArmTimer,
    AskHealer,
    CancelTimer,
    CloseLink,
    KillLeftovers,
    LaunchAgent,
    LifecycleTimeouts,
    ReportFailed,
    SendGo,
    SendPrepare,
    SendReset,
    SendStop,
    StopAgent,
)

T = LifecycleTimeouts(join=30.0, reconnect=10.0, stop=15.0, kill=5.0)
H = "h1"


#: a path from a new host to each state: (events, whether the host starts matched)
PATHS: dict[str, tuple[list[str], bool]] = {
    "pooled": ([], False),
    "matched": ([], True),
    "connecting": (["launch_started"], True),
    "joined": (["launch_started", "agent_joined"], False),
    "preparing": (["launch_started", "agent_joined"], True),
    "installing": (["launch_started", "agent_joined", "prepared"], True),
    "ready": (["launch_started", "agent_joined", "prepared", "install_done"], True),
    "running": (["launch_started", "agent_joined", "prepared", "install_done", "start_released"], True),
}
RUNNING = PATHS["running"][0]
PATHS |= {
    "resetting": ([*RUNNING, "reset_requested"], True),
    "done": ([*RUNNING, "all_done"], True),
    "stopping": ([*RUNNING, "stop_requested"], True),
    "lost": ([*RUNNING, "link_lost"], True),
    "failed": ([*RUNNING, "user_fail"], True),
    "recovering": ([*RUNNING, "user_fail", "restart_requested"], True),
    "replaced": ([*RUNNING, "user_fail", "rematched"], True),
    "gone": (["released"], False),
}


def failure(reason: str, *, link: bool = False, restart: bool = True, abort: bool = False) -> list[Any]:
    """The commands of a host failing: close its link (if up), kill what is left, report, ask the healer."""
    out: list[Any] = [CloseLink(H, reason)] if link else []
    out += [KillLeftovers(H), ReportFailed(H, reason)]
    out.append(AbortRun(H, reason) if abort else AskHealer(H, reason, restart=restart))
    return out


def kw_for(event: str) -> dict[str, Any]:
    if event == "matched":
        return {"component": "web"}
    if event == "rematched":
        return {"replacement": "h9"}
    return {"reason": f"because {event}"} if event not in TIMER_EVENT.values() else {}


def step(life: HostLifecycle, event: str, clock: FakeClock) -> list[Any]:
    """Feed ``event``; a timeout is fed at its deadline (the clock moves there)."""
    kind = next((k for k, e in TIMER_EVENT.items() if e == event), None)
    if kind is not None and kind in life.timers:
        clock.now = life.timers[kind]
        return life.handle_timer(clock.now)
    return life.handle(event, clock.now, **kw_for(event))


def reach(state: str, clock: FakeClock, timeouts: LifecycleTimeouts = T) -> HostLifecycle:
    events, matched = PATHS[state]
    life = HostLifecycle(H, timeouts, clock.now, component="web" if matched else None)
    for event in events:
        step(life, event, clock)
    assert life.state == state
    return life


def arrange(state: str, event: str, target: str, clock: FakeClock) -> HostLifecycle:
    """A host in ``state`` from which ``event`` leads to ``target`` (the guard's other branch)."""
    if event == "agent_joined" and target == "joined":
        life = HostLifecycle(H, T, clock.now)
        life.handle("launch_started", clock.now)
        return life
    if event in ("link_lost", "ping_timeout") and target == "failed" and state != "preparing":
        return reach(state, clock, LifecycleTimeouts(reconnect=0.0))
    if event == "link_resumed":
        life = reach(target, clock)
        life.handle("link_lost", clock.now, reason="cut")
        return life
    if state == "stopping" and event == "stopped" and target == "gone":
        life = reach("running", clock)
        life.handle("released", clock.now)
        return life
    if event == "restart_requested" and target == "connecting":
        life = reach(state, clock)
        life.handle("agent_exited", clock.now, reason="exited (1)")
        return life
    if state == "lost" and event == "start_released":
        life = reach("ready", clock)
        life.handle("link_lost", clock.now, reason="cut")
        return life
    return reach(state, clock)


TRIPLES = sorted((s, e, t) for (s, e), targets in TRANSITIONS.items() for t in targets)


@pytest.mark.parametrize(("state", "event", "target"), TRIPLES)
def test_every_transition_of_the_table(state: str, event: str, target: str) -> None:
    clock = FakeClock()
    life = arrange(state, event, target, clock)
    assert life.state == state
    commands = step(life, event, clock)
    assert life.state == target
    for cmd in commands:
        if isinstance(cmd, ArmTimer):
            assert cmd.deadline > clock.now and TIMER_STATE[cmd.kind] == target
    assert all(TIMER_STATE[k] == target for k in life.timers)  # a timer lives in its own state only


ILLEGAL = sorted(
    (s, e)
    for s, e in itertools.product(STATES, EVENTS)
    if (s, e) not in TRANSITIONS and e not in IGNORED.get(s, ()) and e not in TIMER_EVENT.values()
)


@pytest.mark.parametrize(("state", "event"), ILLEGAL)
def test_an_illegal_event_raises_naming_event_host_and_state_and_changes_nothing(state: str, event: str) -> None:
    clock = FakeClock()
    life = reach(state, clock)
    before = life.statistics()
    assert not life.accepts(event)
    with pytest.raises(LifecycleError) as err:
        life.handle(event, clock.advance(1.0), **kw_for(event))
    assert (err.value.event, err.value.host, err.value.state) == (event, H, state)
    assert repr(event) in str(err.value) and state in str(err.value) and H in str(err.value)
    assert life.statistics() == before


@pytest.mark.parametrize(("state", "event"), sorted((s, e) for s, events in IGNORED.items() for e in events))
def test_declared_no_ops_change_nothing(state: str, event: str) -> None:
    clock = FakeClock()
    life = reach(state, clock)
    before = life.statistics()
    assert life.accepts(event)
    assert life.handle(event, clock.advance(1.0), **kw_for(event)) == []
    assert life.statistics() == before


def test_a_run_from_launch_to_release() -> None:
    clock = FakeClock()
    life = HostLifecycle(H, T, clock.now, component="web")
    assert life.handle("launch_started", clock.now) == [LaunchAgent(H), ArmTimer(H, "join", 1030.0)]
    assert life.handle("agent_joined", clock.advance(1)) == [CancelTimer(H, "join"), SendPrepare(H)]
    assert life.handle("prepared", clock.advance(1)) == [SendGo(H, "install")]
    assert life.handle("install_done", clock.advance(1)) == []
    assert life.handle("start_released", clock.advance(1)) == [SendGo(H, "execute")]
    assert life.handle("all_done", clock.advance(1)) == []
    assert life.handle("stop_requested", clock.advance(1)) == [SendStop(H), ArmTimer(H, "stop", 1021.0)]
    assert life.handle("stopped", clock.advance(1)) == [CancelTimer(H, "stop")]
    assert (life.state, life.component) == ("joined", None)  # ready for the next run
    assert life.handle("released", clock.advance(1)) == [StopAgent(H)]
    assert life.state == "gone" and not life.agent_alive


def test_a_second_run_on_a_connected_agent_starts_no_agent() -> None:
    clock = FakeClock()
    life = reach("joined", clock)
    assert life.handle("matched", clock.now, component="db") == [SendPrepare(H)]
    assert (life.state, life.component) == ("preparing", "db")


def test_the_end_of_a_run_while_connecting_leaves_the_agent_to_join_idle() -> None:
    clock = FakeClock()
    life = reach("connecting", clock)
    assert life.handle("stop_requested", clock.now) == []
    assert (life.state, life.component, life.timers) == ("connecting", None, {"join": 1030.0})
    assert life.handle("agent_joined", clock.now) == [CancelTimer(H, "join")]
    assert life.state == "joined"


def test_join_timeout_fails_the_host_and_asks_the_healer() -> None:
    clock = FakeClock()
    life = reach("connecting", clock)
    assert life.get_timer() == 1030.0
    assert life.handle_timer(clock.advance(29.9)) == []
    assert life.handle("join_timeout", clock.now) == []  # early: ignored
    reason = "its agent did not join within 30s"
    assert life.handle_timer(clock.advance(0.1)) == failure(reason)
    assert life.state == "failed" and life.timers == {} and life.failures == 1


def test_a_stale_timeout_is_ignored() -> None:
    clock = FakeClock()
    life = reach("preparing", clock)
    assert life.handle("join_timeout", clock.advance(100)) == []
    assert life.state == "preparing"


def test_a_launch_failure_restarts_without_waiting_for_a_dead_agent() -> None:
    clock = FakeClock()
    life = reach("connecting", clock)
    life.handle("launch_failed", clock.now, reason="no python3")
    assert life.state == "failed" and not life.agent_alive
    assert life.handle("restart_requested", clock.now) == [
        KillLeftovers(H),
        LaunchAgent(H),
        ArmTimer(H, "join", 1030.0),
    ]
    assert life.state == "connecting" and life.restarts == 1


def test_a_broken_link_opens_the_reconnect_window_and_a_resume_closes_it() -> None:
    clock = FakeClock()
    life = reach("running", clock)
    assert life.handle("link_lost", clock.now, reason="connection reset") == [ArmTimer(H, "reconnect", 1010.0)]
    assert life.state == "lost" and life.resume_to == "running"
    assert not life.accepts("agent_joined")  # a fresh join is rejected: only a resume is expected
    assert life.handle("link_resumed", clock.advance(3)) == [CancelTimer(H, "reconnect")]
    assert life.state == "running" and life.resume_to is None


def test_a_reconnect_window_that_ends_fails_the_host() -> None:
    clock = FakeClock()
    life = reach("installing", clock)
    life.handle("ping_timeout", clock.now, reason="no answer to a ping within 0.5s")
    reason = "no answer to a ping within 0.5s; its agent did not reconnect within 10s"
    assert life.handle_timer(clock.advance(10)) == failure(reason)
    assert life.state == "failed"


def test_an_agent_that_dies_while_lost_fails_the_host_at_once() -> None:
    clock = FakeClock()
    life = reach("running", clock)
    life.handle("link_lost", clock.now, reason="connection reset")
    commands = life.handle("agent_exited", clock.advance(1), reason="exited (137)")
    reason = "connection reset; its agent exited (137)"
    assert commands == [CancelTimer(H, "reconnect"), *failure(reason)]


def test_an_agent_its_launcher_calls_gone_while_lost_fails_the_host_and_a_restart_waits_for_its_death() -> None:
    clock = FakeClock()
    life = reach("running", clock)
    life.handle("link_lost", clock.now, reason="no answer to a ping within 1s")
    commands = life.handle("agent_gone", clock.advance(1), reason="is stopped")
    assert commands == [CancelTimer(H, "reconnect"), *failure("no answer to a ping within 1s; its agent is stopped")]
    assert life.agent_alive  # stopped, not exited: the old agent may still be there
    assert life.handle("restart_requested", clock.now) == [ArmTimer(H, "kill", clock.now + 5.0)]
    assert life.state == "recovering"  # no new agent before the old one's death (or the kill wait)


def test_without_a_reconnect_window_a_broken_link_fails_the_host() -> None:
    clock = FakeClock()
    life = reach("running", clock, LifecycleTimeouts(reconnect=0.0))
    commands = life.handle("link_lost", clock.now, reason="connection reset")
    assert commands == failure("connection reset", link=True) and life.state == "failed"


def test_a_link_lost_before_prepared_is_a_failure_not_a_window() -> None:
    clock = FakeClock()
    life = reach("preparing", clock)
    life.handle("link_lost", clock.now, reason="cut")
    assert life.state == "failed"


def test_requests_while_lost_apply_to_the_state_the_link_resumes_to() -> None:
    clock = FakeClock()
    life = reach("ready", clock)
    life.handle("link_lost", clock.now, reason="cut")
    assert life.handle("start_released", clock.now) == [SendGo(H, "execute")]  # kept, replayed on resume
    assert (life.state, life.resume_to) == ("lost", "running")
    assert life.handle("reset_requested", clock.now, reason="again") == [SendReset(H, "again")]
    assert life.handle("link_resumed", clock.now) == [CancelTimer(H, "reconnect")]
    assert life.state == "resetting"
    other = reach("running", clock)
    other.handle("link_lost", clock.now)
    assert not other.accepts("start_released")
    with pytest.raises(LifecycleError, match="was running when its link broke"):
        other.handle("start_released", clock.now)


def test_restart_in_place_waits_for_the_old_agent_to_die() -> None:
    clock = FakeClock()
    life = reach("running", clock)
    reason = "marked failed by the user"
    assert life.handle("user_fail", clock.now, reason=reason) == failure(reason, link=True, restart=False)
    assert life.handle("restart_requested", clock.now) == [ArmTimer(H, "kill", 1005.0)]
    assert life.state == "recovering"
    assert life.handle("agent_exited", clock.advance(1), reason="killed by signal 9") == [
        CancelTimer(H, "kill"),
        KillLeftovers(H),
        LaunchAgent(H),
        ArmTimer(H, "join", 1031.0),
    ]
    assert life.state == "connecting" and life.component == "web"
    assert life.handle("agent_joined", clock.now) == [CancelTimer(H, "join"), SendPrepare(H)]


def test_a_hung_agent_is_restarted_after_the_kill_wait() -> None:
    clock = FakeClock()
    life = reach("recovering", clock)
    assert life.handle_timer(clock.advance(5)) == [KillLeftovers(H), LaunchAgent(H), ArmTimer(H, "join", 1035.0)]
    assert life.state == "connecting"


def test_rematch_replaces_the_host_and_a_service_refresh_revives_it() -> None:
    clock = FakeClock()
    life = reach("failed", clock)
    assert life.handle("rematched", clock.now, replacement="h9") == []
    assert (life.state, life.replacement) == ("replaced", "h9")
    assert life.handle("restart_requested", clock.now) == [ArmTimer(H, "kill", 1005.0)]  # the pool refresh
    assert life.state == "recovering" and life.replacement is None


def test_an_install_failure_aborts_the_run() -> None:
    clock = FakeClock()
    life = reach("installing", clock)
    commands = life.handle("install_failed", clock.now, reason="bad tarball")
    assert commands == failure("bad tarball", link=True, abort=True)


def test_limits_exceeded_skip_the_restart_rung() -> None:
    clock = FakeClock()
    life = reach("running", clock)
    assert life.handle("limits_exceeded", clock.now, reason="load 9")[-1] == AskHealer(H, "load 9", restart=False)


def test_a_done_host_is_never_failed_so_its_blocks_are_not_run_again() -> None:
    """Over its limits: ignored; marked failed by hand: refused; lost: gone, not failed (no healer asked)."""
    clock = FakeClock()
    life = reach("done", clock)
    assert life.handle("limits_exceeded", clock.now, reason="load 9") == [] and life.state == "done"
    assert not life.accepts("user_fail")
    with pytest.raises(LifecycleError):
        life.handle("user_fail", clock.now)
    commands = life.handle("link_lost", clock.now)
    assert life.state == "gone" and not [c for c in commands if isinstance(c, (AskHealer, ReportFailed))]


def test_an_application_restart_resets_and_drops_the_old_execution_reports() -> None:
    clock = FakeClock()
    life = reach("done", clock)
    assert life.handle("reset_requested", clock.now, reason="p failed") == [SendReset(H, "p failed")]
    assert life.handle("all_done", clock.now) == []  # a report of the ended execution
    assert life.handle("reset_done", clock.now) == [SendGo(H, "execute")]
    assert life.state == "running"
    for state in ("connecting", "preparing", "installing", "ready"):
        assert reach(state, clock).handle("reset_requested", clock.now) == []  # they execute from the top anyway


def test_a_finished_host_whose_link_breaks_is_gone_not_failed() -> None:
    clock = FakeClock()
    life = reach("done", clock)
    assert life.handle("link_lost", clock.now, reason="closed") == [KillLeftovers(H), StopAgent(H)]
    assert life.state == "gone" and life.failures == 0


def test_stopping_absorbs_late_reports_and_times_out() -> None:
    clock = FakeClock()
    life = reach("stopping", clock)
    for late in ("all_done", "install_done", "prepared", "reset_done", "limits_exceeded"):
        assert life.handle(late, clock.now) == []
    with pytest.raises(LifecycleError):
        life.handle("user_fail", clock.now)  # the run is over: the engine says so to the user
    assert life.handle_timer(clock.advance(15)) == [KillLeftovers(H), StopAgent(H)]
    assert life.state == "gone"


def test_released_during_a_run_stops_first_then_leaves() -> None:
    clock = FakeClock()
    life = reach("running", clock)
    assert life.handle("released", clock.now) == [SendStop(H), ArmTimer(H, "stop", 1015.0)]
    assert life.handle("stopped", clock.now) == [CancelTimer(H, "stop"), StopAgent(H)]
    assert life.state == "gone"


def test_stop_at_the_end_from_every_state_then_release_ends_gone() -> None:
    for state in STATES:
        clock = FakeClock()
        life = reach(state, clock)
        life.handle("stop_requested", clock.now) if life.accepts("stop_requested") else None
        if life.state == "stopping":
            life.handle("stopped", clock.now)
        if life.state != "gone":
            life.handle("released", clock.now)
        assert life.state == "gone", state
        assert not life.agent_alive and life.timers == {}


def test_a_lost_host_at_the_end_is_stopped_by_the_launcher() -> None:
    clock = FakeClock()
    life = reach("lost", clock)
    assert life.handle("stop_requested", clock.now) == [CancelTimer(H, "reconnect"), KillLeftovers(H), StopAgent(H)]


def test_unknown_event_and_match_without_component_raise() -> None:
    clock = FakeClock()
    life = HostLifecycle(H, T, clock.now)
    with pytest.raises(LifecycleError, match="no such event"):
        life.handle("explode", clock.now)
    with pytest.raises(LifecycleError, match="names the component"):
        life.handle("matched", clock.now)
    assert life.state == "pooled"


def test_error_names_the_component() -> None:
    clock = FakeClock()
    life = reach("running", clock)
    with pytest.raises(LifecycleError, match=r"host h1 \(web\) cannot take 'prepared' in state running"):
        life.handle("prepared", clock.now)


def test_timeouts_are_validated_and_come_from_settings() -> None:
    with pytest.raises(ValueError, match="join"):
        LifecycleTimeouts(join=0.0)
    with pytest.raises(ValueError, match="reconnect"):
        LifecycleTimeouts(reconnect=-1.0)
    t = LifecycleTimeouts.from_settings(Settings(join_timeout=7.0, reconnect_window=0.0, stop_grace=2.0))
    assert (t.join, t.reconnect, t.stop, t.kill) == (7.0, 0.0, 12.0, 5.0)


def test_the_table_counts_states_and_fires_timers_in_order() -> None:
    clock = FakeClock()
    table = Lifecycles(T)
    for name in ("a", "b", "c"):
        table.add(name, clock.now, component="web")
    assert table.count("matched") == 3 and table.next_deadline() is None
    table.handle("a", "launch_started", clock.now)
    table.handle("b", "launch_started", clock.advance(1))
    table.handle("c", "launch_started", clock.advance(1))
    assert table.count("connecting") == 3 and table.next_deadline() == 1030.0
    table.handle("a", "agent_joined", clock.now)  # a's join timer is now stale in the heap
    assert table.next_deadline() == 1031.0
    commands = table.handle_timers(1031.5)
    assert [type(c) for c in commands] == [KillLeftovers, ReportFailed, AskHealer]
    assert commands[0].host == "b"
    assert table.hosts_in("failed") == ["b"] and table.count("connecting") == 1 and table.count("preparing") == 1
    table.handle("b", "restart_requested", clock.now)  # arms b's kill timer at now + 5
    assert table.next_deadline() == 1007.0
    assert table.statistics() == {
        "hosts": 3,
        "states": {"connecting": 1, "preparing": 1, "recovering": 1},
        "events": 6,
        "timers": 2,
        "next_deadline": 1007.0,
    }
    with pytest.raises(LifecycleError, match="already known"):
        table.add("a", clock.now)
    table.handle("a", "released", clock.now)  # in a run: stopped first
    table.handle("a", "stopped", clock.now)
    assert table.count("gone") == 1
    table.add("a", clock.now)  # a gone host connected again starts anew
    assert table["a"].state == "pooled" and table.count("gone") == 0 and len(table) == 3 and "a" in table
    assert sorted(life.host for life in table) == ["a", "b", "c"]


def lost_in_a_table(clock: FakeClock) -> Lifecycles:
    table = Lifecycles(T)
    table.add(H, clock.now, component="web")
    for event in PATHS["lost"][0]:
        table.handle(H, event, clock.now, **kw_for(event))
    assert table[H].state == "lost"
    return table


def test_a_timeout_taken_while_the_controller_was_late_moves_on_once_by_its_lateness() -> None:
    """The owner's timer fired 3 s after the reconnect deadline (its loop was blocked): the host is not failed
    for the controller's absence; its agent's resumed link, read meanwhile, is taken. Late twice: it fails."""
    clock = FakeClock()
    table = lost_in_a_table(clock)
    deadline = table.next_deadline()
    assert deadline is not None
    clock.now = deadline + 3.0
    commands = table.handle_timers(clock.now, late=3.0)
    assert commands == [ArmTimer(H, "reconnect", clock.now + 3.0)] and table.postponed == 1
    assert table[H].state == "lost" and table.next_deadline() == clock.now + 3.0
    table.handle(H, "link_resumed", clock.now)
    assert table[H].state == "running"

    table = lost_in_a_table(clock)
    deadline = table.next_deadline()
    assert deadline is not None
    clock.now = deadline + 1.0
    table.handle_timers(clock.now, late=1.0)
    moved = table.next_deadline()
    assert moved == clock.now + 1.0
    clock.now = moved + 1.0
    commands = table.handle_timers(clock.now, late=1.0)  # late again for the same deadline: it fires
    assert table[H].state == "failed" and table.postponed == 0
    assert any(isinstance(c, ReportFailed) for c in commands)


def test_a_timeout_taken_on_time_fires_at_once() -> None:
    clock = FakeClock()
    table = lost_in_a_table(clock)
    deadline = table.next_deadline()
    assert deadline is not None
    clock.now = deadline + 0.1
    table.handle_timers(clock.now, late=0.1)  # within LATE: the loop was on time
    assert table[H].state == "failed" and table.postponed == 0
