"""Agent links: reliable delivery, resumption and the reconnect window, host by host.

Role. :class:`Links` is the controller's side of each host's connection (docs/protocol.md, "Reconnection"),
owned by the :class:`~plush.controller.mesh.Mesh`: every message to an agent after ``welcome`` goes through
:meth:`Links.send` (numbered run messages are kept in the host's
:class:`~plush.controller.sessions.HostSession` until acknowledged), every message from an agent passes
:meth:`Links.accept` (acks, dedupe). When a link breaks while the agent still runs, the host is
*disconnected* and gets ``reconnect_window`` seconds to come back with a resuming ``join``
(:meth:`Links.resume`: ``welcome``, ``resume``, then the replay); an agent that is gone, or a window that
ends, makes it a host failure, which the link's :class:`LinkClient` (the run) decides what to do with.

Invariants: a message is written only to the host's current, open, connected link; while disconnected,
numbered messages are only kept (replayed in order on resume, before anything new); a resume is accepted
only while the run goes on and the host may resume; one agent death is one failure (an exit the
launcher's watcher reports is left to it, with a fallback). Whether an agent is gone is its launcher's
answer (``Launcher.agent_state``): this module knows no machine.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass
from typing import Protocol

from plush.config import Settings
from plush.controller.catalogue import HOST_DISCONNECTED, HOST_RECONNECTED
from plush.controller.events import EventBus
from plush.controller.sessions import AGENT_POLL, SessionTable, numbered
from plush.errors import ProtocolError
from plush.fabric.listener import Peer
from plush.launch.base import Launcher
from plush.protocol.messages import Message

__all__ = ["Link", "LinkClient", "Links"]

#: run states in which a broken link is the host's end, not a failure
_DONE = ("finished", "stopped", "failed")
#: run states in which a broken link cannot be resumed (nothing numbered was exchanged yet, or it is over)
_NOT_RESUMABLE = ("starting", "joined", *_DONE)


class LinkClient(Protocol):
    """What the links ask of the run that uses them."""

    @property
    def finished(self) -> bool: ...

    def host_state(self, name: str) -> str | None:
        """The host's state in the run (None: not a host of it)."""

    def link_ended(self, name: str) -> None:
        """The link of a host whose part is over (finished, stopped, failed) closed: nothing to do but note."""

    def link_failed(self, name: str, reason: str) -> None:
        """The host's link is gone for good (its agent died, or it did not resume in time): a failure."""


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

    def __init__(self, settings: Settings, bus: EventBus, client: LinkClient, launcher: Launcher | None) -> None:
        self.settings = settings
        self.bus = bus
        self.client = client
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

    def lost(self, name: str, reason: str) -> None:
        """The connection to ``name``'s agent is gone (closed, broken, or declared dead by liveness).

        If the agent still runs (and is not stopped), only the link broke: the host is *disconnected* and
        gets ``reconnect_window`` seconds to resume (see :meth:`resume`); otherwise it has failed."""
        state = self.client.host_state(name)
        if state is None:
            return
        if state in _DONE or self.client.finished:
            self.client.link_ended(name)
            return
        link = self.get(name)
        gone = self._agent_gone(name)
        if gone is None and self._resumable(name):
            self._disconnected(name, link, reason)
            return
        if gone is not None and gone.startswith("exited") and self._launched(name):
            # the launcher's watcher reports this exit itself (the mesh's agent watch): let it, so that one
            # death is one failure; a fallback fails the host if nobody did within a moment
            loop = asyncio.get_running_loop()
            loop.call_later(AGENT_POLL, self._lost_fallback, name, link.agent_pid, reason, gone)
            return
        self.client.link_failed(name, reason if gone is None else f"{reason}; its agent {gone}")

    def _resumable(self, name: str) -> bool:
        return (
            self.settings.reconnect_window > 0
            and self.sessions.get(name) is not None
            and self.client.host_state(name) not in (None, *_NOT_RESUMABLE)
        )

    def _agent_gone(self, name: str) -> str | None:
        """Why ``name``'s agent can no longer resume ("exited", "is stopped"), or None when it runs or its
        launcher cannot tell (the link then gets its window)."""
        link = self.links.get(name)
        if self.launcher is None or link is None:
            return None
        return self.launcher.agent_state(name, link.agent_pid)

    def _launched(self, name: str) -> bool:
        """Whether ``name``'s agent is the one the launcher started (and the mesh watches)."""
        agent = self.launcher.agent(name) if self.launcher is not None else None
        link = self.links.get(name)
        return agent is not None and link is not None and agent.pid == link.agent_pid

    def _lost_fallback(self, name: str, pid: int | None, reason: str, gone: str) -> None:
        link = self.links.get(name)
        if link is None or self.client.finished or link.agent_pid != pid:
            return
        if self.client.host_state(name) not in (None, "starting", *_DONE):  # nobody failed it meanwhile
            self.client.link_failed(name, f"{reason}; its agent {gone}")

    def _disconnected(self, name: str, link: Link, reason: str) -> None:
        link.disconnected = True
        link.disconnected_at = now = time.monotonic()
        window = self.settings.reconnect_window
        self.bus.emit(HOST_DISCONNECTED, host=name, data={"reason": reason, "window": window})
        self._watch_reconnect(name, now + window, reason)

    def _watch_reconnect(self, name: str, deadline: float, reason: str) -> None:
        """While ``name`` is disconnected: fail it once its agent is gone or the window is over."""
        link = self.links.get(name)
        if link is None:
            return
        link.reconnect_timer = None
        if not link.disconnected or self.client.finished:
            return
        if not self._resumable(name):  # failed, restarted or replaced meanwhile: no longer ours to decide
            link.disconnected = False
            return
        gone = self._agent_gone(name)
        now = time.monotonic()
        if gone is not None or now >= deadline:
            link.disconnected = False
            window = self.settings.reconnect_window
            why = f"its agent {gone}" if gone else f"its agent did not reconnect within {window:g}s"
            self.client.link_failed(name, f"{reason}; {why}")
            return
        link.reconnect_timer = asyncio.get_running_loop().call_later(
            min(AGENT_POLL, deadline - now), self._watch_reconnect, name, deadline, reason
        )

    def resume(self, peer: Peer, name: str, join: Message) -> None:
        """A ``join`` with ``resume``: the agent of ``name`` comes back after its link broke. Re-attach it,
        tell it what we processed (``resume``) and replay what it has not, before anything new."""
        session = self.sessions.get(name)
        state = self.client.host_state(name)
        if state is None or session is None or self.client.finished or not self._resumable(name):
            why = (
                "the run is over"
                if self.client.finished
                else f"host {peer.host!r} cannot resume (it is {state or 'unknown'})"
            )
            peer.send(Message.of("reject", reason=why))
            peer.close("rejected")
            return
        link = self.get(name)
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
        try:
            replay = list(session.replay(int(join.get("received", 0))))
        except ProtocolError as exc:
            peer.abort(f"bad resume: {exc}")
            self.client.link_failed(name, f"its agent resumed with a bad sequence number: {exc}")
            return
        for mtype, frame in replay:
            peer.send_bytes(frame, Message(mtype))
        self.bus.emit(
            HOST_RECONNECTED,
            host=name,
            data={"replayed": len(replay), "received": session.received, "down_for": round(down_for, 3)},
        )

    def live_peers(self) -> dict[str, Peer]:
        """Hosts whose link is up now, and their peers."""
        return {name: link.peer for name, link in self.links.items() if link.up and link.peer is not None}

    def cancel_timers(self) -> None:
        for link in self.links.values():
            link.cancel_timer()
