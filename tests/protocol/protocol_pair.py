"""Test helpers: a fake clock and a pair harness joining a controller and an agent Connection in memory."""

from __future__ import annotations

from typing import Any

from fake_clock import FakeClock
from plush.protocol.connection import Connection
from plush.protocol.messages import Message
from plush.protocol.secret import Secret

__all__ = ["TOKEN", "FakeClock", "Pair", "sample_join", "sample_prepare"]

TOKEN = "tok-3f9a1c"


def sample_prepare(**settings: Any) -> Message:
    return Message.of(
        "prepare",
        spec={"kind": "Project", "name": "demo"},
        host={"name": "local-1", "component": "c", "index": 0, "attrs": {}, "env": {"PLUSH_HOST": "local-1"}},
        settings=settings,
    )


def sample_join(**over: Any) -> Message:
    fields: dict[str, Any] = {
        "host": "local-1",
        "pid": 4242,
        "hostname": "box",
        "python": "3.8.18",
        "workdir": "/tmp/w",
        "agent_version": "0.1.0",
    }
    fields.update(over)
    return Message("join", fields)


class Pair:
    """A controller and an agent Connection joined by an in-memory link, on one fake clock.

    Messages each side delivers to its owner are appended to ``ctl_got`` / ``agent_got``; bytes the
    connections queue by themselves (pong, ping, heartbeat) are carried by :meth:`flush`.
    """

    def __init__(self, agent_token: str = TOKEN, **ctl_options: Any) -> None:
        self.clock = FakeClock()
        self.ctl = Connection("controller", Secret(TOKEN), self.clock.now, peer="agent", **ctl_options)
        self.agent = Connection("agent", Secret(agent_token), self.clock.now, peer="controller")
        self.ctl_got: list[Message] = []
        self.agent_got: list[Message] = []
        self.wire_to_ctl: list[Message] = []  # everything the agent sent, for inspection

    def from_ctl(self, msg: Message) -> list[Message]:
        got = self.agent.receive_data(self.ctl.send(msg, self.clock.now), self.clock.now)
        self.agent_got += got
        self.flush()
        return got

    def from_agent(self, msg: Message) -> list[Message]:
        got = self.ctl.receive_data(self.agent.send(msg, self.clock.now), self.clock.now)
        self.ctl_got += got
        self.flush()
        return got

    def flush(self) -> None:
        while True:
            up = self.agent.data_to_send()
            down = self.ctl.data_to_send()
            if not up and not down:
                return
            if up and self.ctl.state != "CLOSED":
                self.ctl_got += self.ctl.receive_data(up, self.clock.now)
            if down and self.agent.state != "CLOSED":
                self.agent_got += self.agent.receive_data(down, self.clock.now)

    def tick(self, seconds: float, *, agent_alive: bool = True) -> None:
        """Advance the clock, firing due timers on both sides; with ``agent_alive=False`` the agent is mute."""
        self.clock.advance(seconds)
        for conn in (self.ctl, self.agent) if agent_alive else (self.ctl,):
            timer = conn.get_timer()
            if timer is not None and timer <= self.clock.now:
                conn.handle_timer(self.clock.now)
        if agent_alive:
            self.flush()
        else:
            self.ctl.data_to_send()  # the ping goes nowhere

    def handshake(self, **settings: Any) -> None:
        self.from_ctl(Message.of("invite", run="run-1", protocol=1))
        self.from_agent(sample_join())
        self.from_ctl(Message.of("welcome", host="local-1"))
        self.from_ctl(sample_prepare(**settings))
        self.from_agent(Message.of("prepared"))
        self.from_ctl(Message.of("go", stage="execute"))
