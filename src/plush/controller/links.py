"""Agent links: reliable delivery, resumption and the reconnect window, host by host.

Role. :class:`Links` is the controller's side of each host's connection (docs/protocol.md, "Reconnection"),
owned by the :class:`~plush.controller.mesh.Mesh`: every message to an agent after ``welcome`` goes through
:meth:`Links.send` (numbered run messages are kept in the host's
:class:`~plush.controller.sessions.HostSession` until acknowledged), every message from an agent passes
:meth:`Links.accept` (acks, dedupe). When a link breaks while the agent still runs, the host is
*disconnected* and gets ``reconnect_window`` seconds to come back with a resuming ``join``
(:meth:`Links.resume`: ``welcome``, ``resume``, then the replay). Whether a broken link is a loss to wait
for, the host's end or its failure is its lifecycle's decision (the mesh feeds it ``link_lost``); while the
host is ``lost`` the links ask its launcher every moment whether the agent is gone (its lifecycle fails it
then, or when the window's timer fires).

Invariants: a message is written only to the host's current, open, connected link; while disconnected,
numbered messages are only kept (replayed in order on resume, before anything new); a resume is accepted
only for a ``lost`` host (the mesh checks). Whether an agent is gone is its launcher's answer
(``Launcher.agent_state``): this module knows no machine.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass

from plush.config import Settings
from plush.controller.catalogue import HOST_DISCONNECTED, HOST_RECONNECTED
from plush.controller.events import EventBus
from plush.controller.sessions import AGENT_POLL, SessionTable, numbered
from plush.errors import ProtocolError
from plush.fabric.listener import Peer
from plush.launch.base import Launcher
from plush.protocol.messages import Message

__all__ = ["Link", "Links"]


@dataclass(eq=False)
class Link:
    """One host's connection as the controller sees it, across reconnections."""

    peer: Peer | None = None
    #: the agent's process id, from its join (its launcher tells a dead agent from a broken link by it)
    agent_pid: int | None = None
    #: the link broke while the agent still runs: ``reconnect_window`` seconds to resume
    disconnected: bool = False
    disconnected_at: float | None = None
    reconnect_timer: asyncio.TimerHandle | None = None

    @property
    def up(self) -> bool:
        return self.peer is not None and not self.peer.closed and not self.disconnected

    def cancel_timer(self) -> None:
        if self.reconnect_timer is not None:
            self.reconnect_timer.cancel()
            self.reconnect_timer = None


class Links:
    """Every host's link: delivery, acknowledgement, disconnection and resumption."""

    def __init__(self, settings: Settings, bus: EventBus, launcher: Launcher | None) -> None:
        self.settings = settings
        self.bus = bus
        self.launcher = launcher
        self.links: dict[str, Link] = {}
        #: reliable delivery per host: numbering, retention until acknowledged, dedupe, replay on resume
        self.sessions = SessionTable(self._send_ack)

    def get(self, name: str) -> Link:
        link = self.links.get(name)
        if link is None:
            link = self.links[name] = Link()
        return link

    def peer(self, name: str) -> Peer | None:
        link = self.links.get(name)
        return link.peer if link is not None else None

    def is_current(self, name: str, peer: Peer) -> bool:
        link = self.links.get(name)
        return link is not None and link.peer is peer

    # --- delivery ------------------------------------------------------------------------------------

    def send(self, name: str, msg: Message) -> None:
        """Every message to an agent after ``welcome`` goes through here.

        Run messages (and ``go``) are numbered and kept until the agent acknowledges them, so that they are
        replayed if the agent resumes after a broken link; while the host is disconnected they are only
        kept. Other messages (``prepare``, ``stop``) go to a live link or nowhere."""
        link = self.links.get(name)
        if link is None:
            return
        peer = link.peer
        up = link.up
        session = self.sessions.get(name)
        if session is not None and numbered(msg.type):
            frame = session.number(msg)
            if up:
                assert peer is not None
                with contextlib.suppress(ConnectionResetError):  # kept: replayed when the agent resumes
                    peer.send_bytes(frame, msg)
        elif up:
            assert peer is not None
            peer.send(msg)

    def send_frame(self, name: str, frame: bytes, msg: Message) -> None:
        """``frame`` (``msg``, encoded by the caller: a ``prepare`` spliced from parts encoded once) to
        ``name``'s live link, or nowhere: it is not numbered."""
        link = self.links.get(name)
        if link is not None and link.up:
            assert link.peer is not None
            link.peer.send_bytes(frame, msg)

    def _send_ack(self, name: str, q: int) -> None:
        link = self.links.get(name)
        if link is not None and link.up:
            assert link.peer is not None
            with contextlib.suppress(ConnectionResetError):
                link.peer.send(Message.of("ack", q=q))

    def accept(self, name: str, msg: Message) -> bool:
        """Reliable delivery of a message from ``name``'s agent: an ``ack`` releases kept messages, a
        numbered message already processed (a replay) is dropped. True when the run should process it."""
        session = self.sessions.get(name)
        if msg.type == "ack":
            if session is not None:
                session.acked(int(msg["q"]))
            return False
        return session is None or session.accept(msg)

    def processed(self, name: str, msg: Message) -> None:
        """The run processed ``msg`` from ``name``: acknowledge numbered ones now or soon."""
        if "q" in msg.fields:
            self.sessions.processed(name)

    # --- a fresh agent ---------------------------------------------------------------------------------

    def attach(self, name: str, peer: Peer, join: Message) -> None:
        """A fresh agent of ``name`` joined on ``peer``: a fresh conversation; ``welcome`` is sent."""
        link = self.get(name)
        link.peer = peer
        link.disconnected = False
        link.cancel_timer()
        link.agent_pid = int(join["pid"])
        self.sessions.open(name)
        peer.send(Message.of("welcome", host=name))

    def close(self, name: str, reason: str) -> None:
        """Close ``name``'s link (the host failed): what it still sends is ignored."""
        link = self.links.get(name)
        if link is None:
            return
        link.cancel_timer()
        link.disconnected = False
        peer, link.peer = link.peer, None
        if peer is not None and not peer.closed:
            peer.close(reason)

    def drop_link(self, name: str, reason: str = "link dropped by drop_link()") -> bool:
        """Test and operations hook: abort ``name``'s connection at once, as a broken network would (no
        close handshake). The agent keeps running and is expected to resume within ``reconnect_window``.
        False when the host has no open link."""
        link = self.links.get(name)
        if link is None or link.peer is None or link.peer.closed:
            return False
        link.peer.abort(reason)
        return True

    # --- a broken link ---------------------------------------------------------------------------------

    def disconnected(self, name: str, reason: str, on_gone: Callable[[str, str], None]) -> None:
        """``name``'s link broke while its agent may still run (the host is ``lost``): emit
        ``host.disconnected`` and, until :meth:`resume` or :meth:`close`, ask its launcher every moment whether
        the agent is gone: ``on_gone(name, why)`` then (the host's lifecycle keeps the window's deadline)."""
        link = self.get(name)
        link.disconnected = True
        link.disconnected_at = time.monotonic()
        self.bus.emit(HOST_DISCONNECTED, host=name, data={"reason": reason, "window": self.settings.reconnect_window})
        self._poll_agent(name, on_gone)

    def _poll_agent(self, name: str, on_gone: Callable[[str, str], None]) -> None:
        link = self.links.get(name)
        if link is None:
            return
        link.reconnect_timer = None
        if not link.disconnected:
            return
        gone = self.launcher.agent_state(name, link.agent_pid) if self.launcher is not None else None
        if gone is not None:
            on_gone(name, gone)
            return
        link.reconnect_timer = asyncio.get_running_loop().call_later(AGENT_POLL, self._poll_agent, name, on_gone)

    def resume(self, peer: Peer, name: str, join: Message) -> bool:
        """A ``join`` with ``resume`` from the agent of ``name`` (a ``lost`` host: the caller checked): re-attach
        it, tell it what we processed (``resume``) and replay what it has not, before anything new. False
        (the connection aborted, the host still lost) when its sequence numbers do not fit."""
        session = self.sessions.get(name)
        if session is None:
            peer.send(Message.of("reject", reason=f"host {peer.host!r} cannot resume (no session)"))
            peer.close("rejected")
            return False
        link = self.get(name)
        try:
            replay = list(session.replay(int(join.get("received", 0))))
        except ProtocolError as exc:
            peer.abort(f"bad resume: {exc}")
            return False
        old = link.peer
        if old is not None and old is not peer and not old.closed:
            old.abort("replaced by the agent's resumed connection")  # its end is ignored: not current
        link.cancel_timer()
        down_for = time.monotonic() - link.disconnected_at if link.disconnected and link.disconnected_at else 0.0
        link.peer = peer
        link.disconnected = False
        link.agent_pid = int(join["pid"])
        peer.send(Message.of("welcome", host=name))
        peer.send(Message.of("resume", received=session.received))
        for mtype, frame in replay:
            peer.send_bytes(frame, Message(mtype))
        self.bus.emit(
            HOST_RECONNECTED,
            host=name,
            data={"replayed": len(replay), "received": session.received, "down_for": round(down_for, 3)},
        )
        return True

    def live_peers(self) -> dict[str, Peer]:
        """Hosts whose link is up now, and their peers."""
        return {name: link.peer for name, link in self.links.items() if link.up and link.peer is not None}

    def cancel_timers(self) -> None:
        for link in self.links.values():
            link.cancel_timer()
