"""The sans-IO connection: handshake, authentication, transitions and liveness, on a fake clock."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st
from protocol_pair import TOKEN, FakeClock, Pair, sample_join, sample_prepare

from plush.errors import AuthenticationError, ProtocolError
from plush.protocol.connection import PREAUTH_MAX_FRAME, Connection
from plush.protocol.framing import encode
from plush.protocol.messages import Message
from plush.protocol.secret import Secret


def test_full_handshake_and_stop() -> None:
    pair = Pair()
    assert pair.ctl.state == pair.agent.state == "INVITING"
    assert pair.from_ctl(Message.of("invite", run="run-1", protocol=1)) == [
        Message.of("invite", run="run-1", protocol=1)
    ]
    got = pair.from_agent(sample_join())
    assert [m.type for m in got] == ["join"]
    assert "token" not in got[0].fields  # the owner never sees the token
    assert got[0]["host"] == "local-1"
    assert pair.ctl.state == pair.agent.state == "JOINING"
    pair.from_ctl(Message.of("welcome", host="local-1"))
    assert pair.ctl.authenticated and pair.agent.authenticated
    pair.from_ctl(sample_prepare(heartbeat_interval=0.25))
    assert pair.agent.heartbeat_interval == 0.25
    pair.from_agent(Message.of("prepared"))
    assert pair.ctl.state == pair.agent.state == "PREPARED"
    pair.from_ctl(Message.of("go", stage="install"))
    pair.from_agent(Message.of("installed", software=[]))
    pair.from_ctl(Message.of("go", stage="execute"))
    pair.from_agent(Message.binary("output", b"hello\n", path="/app/c/p", instance=0, stream="stdout"))
    assert pair.ctl_got[-1].payload == b"hello\n"
    pair.from_ctl(Message.of("stop", grace=1.0, reason="done"))
    assert pair.ctl.state == "STOPPING"
    pair.from_agent(Message.of("proc.exited", path="/app/c/p", instance=0, code=None, signal=15))  # in flight: fine
    pair.from_agent(Message.of("stopped"))
    assert pair.ctl.state == pair.agent.state == "CLOSED"
    with pytest.raises(ProtocolError, match="closed"):
        pair.ctl.send(Message.of("ping", seq=1), pair.clock.now)
    # a stop that crossed the agent's 'stopped' is discarded, not an error
    assert pair.agent.receive_data(encode(Message.of("stop", grace=0.1, reason="again")), pair.clock.now) == []


def test_reject_closes() -> None:
    pair = Pair()
    pair.from_ctl(Message.of("invite", run="r", protocol=1))
    pair.from_agent(sample_join())
    got = pair.from_ctl(Message.of("reject", reason="no such host"))
    assert got == [Message.of("reject", reason="no such host")]
    assert pair.ctl.state == pair.agent.state == "CLOSED"


def invited_controller() -> tuple[Connection, FakeClock]:
    clock = FakeClock()
    ctl = Connection("controller", Secret(TOKEN), clock.now, peer="intruder")
    ctl.send(Message.of("invite", run="r", protocol=1), clock.now)
    return ctl, clock


def test_wrong_token_is_refused() -> None:
    ctl, clock = invited_controller()
    with pytest.raises(AuthenticationError, match="wrong join token") as info:
        ctl.receive_data(encode(sample_join(token="guess")), clock.now)
    assert info.value.peer == "intruder"
    assert ctl.state == "CLOSED" and not ctl.authenticated


@pytest.mark.parametrize(
    "first",
    [
        sample_prepare(),
        Message.of("prepared"),
        Message.of("block", path="/a", state="started"),
        Message.of("heartbeat", seq=1),
        Message.of("ping", seq=1),
    ],
)
def test_nothing_but_join_is_accepted_before_authentication(first: Message) -> None:
    ctl, clock = invited_controller()
    # even a message followed by a valid join in the same read: nothing is delivered
    data = encode(first) + encode(sample_join(token=TOKEN))
    with pytest.raises(AuthenticationError, match="before joining"):
        ctl.receive_data(data, clock.now)
    assert ctl.state == "CLOSED"
    assert ctl.data_to_send() == b""  # not even a pong


@pytest.mark.parametrize(
    "data",
    [b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", struct.pack(">IB", PREAUTH_MAX_FRAME + 1, 1)],
)
def test_garbage_and_big_frames_before_authentication(data: bytes) -> None:
    ctl, clock = invited_controller()
    with pytest.raises(AuthenticationError, match="unauthenticated peer"):
        ctl.receive_data(data, clock.now)
    assert ctl.state == "CLOSED"


def test_frame_limit_rises_after_join() -> None:
    pair = Pair()
    pair.handshake()
    big = "x" * (PREAUTH_MAX_FRAME * 2)
    assert pair.from_agent(Message.of("log", level="info", text=big))[0]["text"] == big


def test_agent_refuses_everything_before_welcome() -> None:
    clock = FakeClock()
    agent = Connection("agent", Secret(TOKEN), clock.now)
    with pytest.raises(ProtocolError, match="agent cannot receive 'prepare' in state INVITING"):
        agent.receive_data(encode(sample_prepare()), clock.now)


def test_join_token_is_filled_in_by_the_agent() -> None:
    clock = FakeClock()
    agent = Connection("agent", Secret(TOKEN), clock.now)
    agent.receive_data(encode(Message.of("invite", run="r", protocol=1)), clock.now)
    frame = agent.send(sample_join(), clock.now)
    assert TOKEN.encode() in frame


def test_illegal_transitions_name_event_role_and_state() -> None:
    pair = Pair()
    pair.from_ctl(Message.of("invite", run="r", protocol=1))
    pair.from_agent(sample_join())
    pair.from_ctl(Message.of("welcome", host="h"))
    with pytest.raises(ProtocolError, match="controller cannot send 'go' in state JOINED"):
        pair.ctl.send(Message.of("go", stage="execute"), pair.clock.now)
    with pytest.raises(ProtocolError, match="controller cannot receive 'prepared' in state JOINED"):
        pair.ctl.receive_data(encode(Message.of("prepared")), pair.clock.now)
    with pytest.raises(ProtocolError, match="wrong direction"):
        pair.agent.send(Message.of("stop", grace=1, reason="x"), pair.clock.now)


def test_run_messages_need_a_prepare_and_direction_is_checked() -> None:
    pair = Pair()
    pair.from_ctl(Message.of("invite", run="r", protocol=1))
    pair.from_agent(sample_join())
    pair.from_ctl(Message.of("welcome", host="h"))
    with pytest.raises(ProtocolError, match="cannot receive 'block' in state JOINED"):
        pair.ctl.receive_data(encode(Message.of("block", path="/a", state="started")), pair.clock.now)
    pair2 = Pair()
    pair2.handshake()
    with pytest.raises(ProtocolError, match="only a controller sends"):
        pair2.ctl.receive_data(encode(Message.of("go", stage="execute")), pair2.clock.now)


def _exec_pair() -> tuple[Message, Message]:
    request = Message.of("exec", req=1, argv=["true"], timeout=5.0, limit=1024)
    reply = Message.binary(
        "exec.result", b"", req=1, code=0, signal=None, out=0, truncated=False, timed_out=False, duration=0.01
    )
    return request, reply


def test_exec_is_legal_on_an_idle_agent_and_in_a_run_and_changes_no_state() -> None:
    request, reply = _exec_pair()
    pair = Pair()
    pair.from_ctl(Message.of("invite", run="r", protocol=1))
    pair.from_agent(sample_join())
    pair.from_ctl(Message.of("welcome", host="h"))
    assert pair.from_ctl(request) == [request] and pair.from_agent(reply) == [reply]  # idle: JOINED
    assert pair.ctl.state == pair.agent.state == "JOINED"
    pair2 = Pair()
    pair2.handshake()
    assert pair2.from_ctl(request) == [request] and pair2.from_agent(reply) == [reply]  # beside a run
    assert pair2.ctl.state == pair2.agent.state == "RUNNING"


def test_exec_is_refused_before_the_agent_is_welcomed() -> None:
    request, _ = _exec_pair()
    pair = Pair()
    pair.from_ctl(Message.of("invite", run="r", protocol=1))
    with pytest.raises(ProtocolError, match="cannot send 'exec' in state INVITED"):
        pair.ctl.send(request, pair.clock.now)


def test_ping_is_answered_and_pong_consumed() -> None:
    pair = Pair()
    pair.handshake()
    before = len(pair.ctl_got)
    assert pair.from_ctl(Message.of("ping", seq=99)) == []  # the agent answered by itself
    assert len(pair.ctl_got) == before  # and the controller consumed the pong
    assert pair.ctl.statistics()["messages_in"] >= 2


def test_silence_then_ping_then_dead() -> None:
    pair = Pair(silence_timeout=2.0, ping_timeout=1.0)
    pair.handshake()
    assert pair.ctl.get_timer() == pytest.approx(pair.clock.now + 2.0)
    pair.tick(2.0, agent_alive=False)
    assert not pair.ctl.peer_dead
    assert pair.ctl.get_timer() == pytest.approx(pair.clock.now + 1.0)  # waiting for the pong
    pair.tick(0.99, agent_alive=False)
    assert not pair.ctl.peer_dead
    pair.tick(0.02, agent_alive=False)
    assert pair.ctl.peer_dead
    assert "ping" in (pair.ctl.dead_reason or "")
    assert pair.ctl.get_timer() is None


def test_a_ping_deadline_judged_late_starts_over_once_and_on_time_it_kills() -> None:
    """The owner's timer fired ``late`` seconds after the ping deadline (its loop was blocked): the answer may
    sit unread, so the deadline starts over from now -- once per ping; an owner on time judges at once."""
    pair = Pair(silence_timeout=2.0, ping_timeout=1.0)
    pair.handshake(heartbeat_interval=100.0)
    pair.tick(2.0, agent_alive=False)  # the silence ping, deadline now + 1
    deadline = pair.ctl.get_timer()
    assert deadline is not None
    pair.clock.advance(3.0)  # the owner fires 2 s after the deadline
    pair.ctl.handle_timer(pair.clock.now, late=pair.clock.now - deadline)
    assert not pair.ctl.peer_dead and pair.ctl.postponed == pytest.approx(2.0)
    assert pair.ctl.get_timer() == pytest.approx(pair.clock.now + 1.0)
    pair.clock.advance(1.5)  # late again for the same ping: judged
    pair.ctl.handle_timer(pair.clock.now, late=0.5)
    assert pair.ctl.peer_dead and "no answer to a ping within 1s" in (pair.ctl.dead_reason or "")

    on_time = Pair(silence_timeout=2.0, ping_timeout=1.0)
    on_time.handshake(heartbeat_interval=100.0)
    on_time.tick(2.0, agent_alive=False)
    on_time.clock.advance(1.1)
    on_time.ctl.handle_timer(on_time.clock.now, late=0.1)  # within LATE_FRACTION of ping_timeout: on time
    assert on_time.ctl.peer_dead and on_time.ctl.postponed == 0.0


def test_an_answer_read_after_a_late_judgement_keeps_the_peer_and_each_ping_gets_its_own_grace() -> None:
    pair = Pair(silence_timeout=2.0, ping_timeout=1.0)
    pair.handshake(heartbeat_interval=100.0)
    for _ in range(3):
        pair.tick(2.0, agent_alive=False)  # a ping whose answer the owner has not read yet
        pair.clock.advance(2.0)
        pair.ctl.handle_timer(pair.clock.now, late=1.0)
        assert not pair.ctl.peer_dead and pair.ctl.postponed == 1.0
        pair.from_agent(Message.of("heartbeat", seq=1))  # read at last: any byte answers
        assert pair.ctl.get_timer() == pytest.approx(pair.clock.now + 2.0)  # silence again, no ping pending


@given(st.lists(st.floats(min_value=0.0, max_value=30.0), min_size=2, max_size=10))
def test_a_mute_peer_is_dead_by_the_second_judgement_however_late_its_owner(lates: list[float]) -> None:
    """Whatever the owner's lateness at each firing, a peer that never answers its ping is declared dead at
    the second judgement past its deadline at the latest: a late owner grants one more ``ping_timeout``, once."""
    pair = Pair(silence_timeout=2.0, ping_timeout=1.0)
    pair.handshake(heartbeat_interval=1000.0)
    pair.tick(2.0, agent_alive=False)  # the ping
    judged = 0
    for late in lates:
        timer = pair.ctl.get_timer()
        assert timer is not None
        pair.clock.now = timer + late
        pair.ctl.handle_timer(pair.clock.now, late=late)
        judged += 1
        if pair.ctl.peer_dead:
            break
    assert pair.ctl.peer_dead and judged <= 2


def test_ping_answer_keeps_the_peer_alive() -> None:
    pair = Pair(silence_timeout=2.0, ping_timeout=1.0)
    pair.handshake(heartbeat_interval=100.0)  # agent heartbeats too rarely to matter
    for _ in range(20):
        pair.tick(0.5)
    assert not pair.ctl.peer_dead  # each silence ping was answered by a pong


def test_heartbeats_keep_alive_without_pings() -> None:
    pair = Pair(silence_timeout=2.0, ping_timeout=1.0)
    pair.handshake(heartbeat_interval=0.5)
    sent_before = pair.ctl.messages_out
    for _ in range(40):
        pair.tick(0.25)
    assert not pair.ctl.peer_dead
    assert pair.ctl.messages_out == sent_before  # heard often enough that it never pinged


def test_join_timeout_before_authentication() -> None:
    ctl, clock = invited_controller()
    assert ctl.get_timer() == pytest.approx(clock.now + 30.0)
    clock.advance(29)
    ctl.handle_timer(clock.now)
    assert not ctl.peer_dead
    clock.advance(1)
    ctl.handle_timer(clock.now)
    assert ctl.peer_dead and "handshake" in (ctl.dead_reason or "")


def test_handshake_timeout_bounds_the_wait_for_a_join_then_join_timeout_the_welcome() -> None:
    clock = FakeClock()
    start = clock.now
    ctl = Connection("controller", Secret(TOKEN), clock.now, join_timeout=30.0, handshake_timeout=5.0)
    ctl.send(Message.of("invite", run="r", protocol=1), clock.now)
    assert ctl.get_timer() == pytest.approx(start + 5.0)
    clock.advance(4)
    ctl.receive_data(encode(sample_join(token=TOKEN)), clock.now)  # joined in time: now waiting for the welcome
    assert ctl.get_timer() == pytest.approx(start + 30.0)
    clock.advance(2)
    ctl.handle_timer(clock.now)
    assert not ctl.peer_dead
    idle = Connection("controller", Secret(TOKEN), clock.now, join_timeout=30.0, handshake_timeout=5.0)
    clock.advance(5)
    idle.handle_timer(clock.now)
    assert idle.peer_dead and "handshake timeout" in (idle.dead_reason or "")


def test_agent_has_no_silence_timer_by_default_but_heartbeats() -> None:
    pair = Pair()
    pair.handshake(heartbeat_interval=1.0)
    assert pair.agent.silence_timeout is None
    assert pair.agent.get_timer() == pytest.approx(pair.clock.now + 1.0)
    pair.clock.advance(1.0)
    pair.agent.handle_timer(pair.clock.now)
    frame = pair.agent.data_to_send()
    assert b'"heartbeat"' in frame


def test_role_is_checked() -> None:
    with pytest.raises(ValueError, match="role"):
        Connection("proxy", Secret(TOKEN), 0.0)
