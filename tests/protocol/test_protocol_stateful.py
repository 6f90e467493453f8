"""Hypothesis stateful test: random conversations keep both ends in the same state, and refusals change nothing."""

from __future__ import annotations

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule
from protocol_pair import Pair, sample_join, sample_prepare

from plush.errors import ProtocolError
from plush.protocol.messages import Message

FROM_CTL = [
    Message.of("invite", run="r", protocol=1),
    Message.of("welcome", host="h"),
    sample_prepare(),
    Message.of("go", stage="install"),
    Message.of("go", stage="execute"),
    Message.of("barrier.release", name="b", late=False),
    Message.of("stop", grace=1.0, reason="x"),
    Message.of("ping", seq=1),
]
FROM_AGENT = [
    sample_join(),
    Message.of("prepared"),
    Message.of("block", path="/a", state="started"),
    Message.binary("output", b"x", path="/a", instance=0, stream="stderr"),
    Message.of("heartbeat", seq=1),
    Message.of("log", level="info", text="t"),
    Message.of("stopped"),
]


class ConversationMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.pair = Pair()

    def _try(self, side: str, msg: Message) -> None:
        sender = self.pair.ctl if side == "ctl" else self.pair.agent
        before = sender.state
        try:
            (self.pair.from_ctl if side == "ctl" else self.pair.from_agent)(msg)
        except ProtocolError:
            assert sender.state == before  # a refused send changes nothing

    @rule(msg=st.sampled_from(FROM_CTL))
    def controller_sends(self, msg: Message) -> None:
        self._try("ctl", msg)

    @rule(msg=st.sampled_from(FROM_AGENT))
    def agent_sends(self, msg: Message) -> None:
        self._try("agent", msg)

    @rule(seconds=st.floats(0.01, 3.0))
    def time_passes(self, seconds: float) -> None:
        self.pair.tick(seconds)

    @invariant()
    def both_ends_agree(self) -> None:
        assert self.pair.ctl.state == self.pair.agent.state

    @invariant()
    def a_live_agent_is_never_declared_dead(self) -> None:
        # the agent answers pings and heartbeats within the same tick
        assert not self.pair.ctl.peer_dead or not self.pair.ctl.authenticated


TestConversation = ConversationMachine.TestCase
TestConversation.settings = settings(max_examples=150, stateful_step_count=30, deadline=None)
