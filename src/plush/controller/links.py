"""Agent links: reliable delivery, resumption and the reconnect window of the run engine.

Role. :class:`LinksMixin` is the run engine's side of each host's connection (docs/protocol.md,
"Reconnection"): every message to an agent after ``welcome`` goes through :meth:`LinksMixin._send`
(numbered run messages are kept in the host's :class:`~plush.controller.sessions.HostSession` until
acknowledged), every message from an agent passes :meth:`LinksMixin._accept` (acks, dedupe). When a link
breaks while the agent still runs, the host is *disconnected* and gets ``reconnect_window`` seconds to come
back with a resuming ``join`` (:meth:`LinksMixin._on_resume`: ``welcome``, ``resume``, then the replay);
an agent that is gone, or a window that ends, makes it a host failure (handed to the failure ladder in
:mod:`~plush.controller.healing`).

Invariants: a message is written only to the host's current, open, connected link; while disconnected,
numbered messages are only kept (replayed in order on resume, before anything new); a resume is accepted
only while the run goes on and the host may resume; one agent death is one failure (an exit the
launcher's watcher reports is left to it, with a fallback).
"""

from __future__ import annotations

import asyncio
import contextlib
import time

from plush.controller.runstate import EngineState, HostSlot
from plush.controller.sessions import AGENT_POLL, numbered
from plush.errors import ProtocolError
from plush.fabric.listener import Peer
from plush.protocol.messages import Message

__all__ = ["LinksMixin"]


class LinksMixin(EngineState):
    """Sessions, acknowledgements, disconnection and resumption of :class:`~plush.controller.engine.RunEngine`."""

    def _send(self, host: str, msg: Message) -> None:
        """Every message to an agent after ``welcome`` goes through here.

        Run messages (and ``go``) are numbered and kept until the agent acknowledges them, so that they are
        replayed if the agent resumes after a broken link; while the host is disconnected they are only
        kept. Other messages (``prepare``, ``stop``) go to a live link or nowhere."""
        slot = self.slots.get(host)
        if slot is None:
            return
        peer = slot.peer
        up = peer is not None and not peer.closed and not slot.disconnected
        session = self.sessions.get(host)
        if session is not None and numbered(msg.type):
            frame = session.number(msg)
            if up:
                assert peer is not None
                with contextlib.suppress(ConnectionResetError):  # kept: replayed when the agent resumes
                    peer.send_bytes(frame, msg)
        elif up:
            assert peer is not None
            peer.send(msg)

    def _host_lost(self, slot: HostSlot, reason: str) -> None:
        """The connection to ``slot``'s agent is gone (closed, broken, or declared dead by liveness).

        If the agent still runs (and is not stopped), only the link broke: the host is *disconnected* and
        gets ``reconnect_window`` seconds to resume (see :meth:`_on_resume`); otherwise it has failed."""
        if slot.state in ("finished", "stopped", "failed") or self.finished:
            slot.state = "stopped" if slot.state == "finished" else slot.state
            return
        gone = self._agent_gone(slot)
        if gone is None and self._resumable(slot):
            self._disconnected(slot, reason)
            return
        if gone is not None and gone.startswith("exited") and self._launched(slot):
            # the launcher's watcher reports this exit itself (_watch_agent): let it, so that one death is
            # one failure; a fallback fails the host if nobody did within a moment
            loop = asyncio.get_running_loop()
            loop.call_later(AGENT_POLL, self._lost_fallback, slot.name, slot.agent_pid, reason, gone)
            return
        self._host_failed(slot, reason if gone is None else f"{reason}; its agent {gone}")

    def drop_link(self, host: str, reason: str = "link dropped by drop_link()") -> bool:
        """Test and operations hook: abort ``host``'s connection at once, as a broken network would (no
        close handshake). The agent keeps running and is expected to resume within ``reconnect_window``.
        False when the host has no open link."""
        slot = self.slots.get(host)
        if slot is None or slot.peer is None or slot.peer.closed:
            return False
        slot.peer.abort(reason)
        return True

    def _send_ack(self, host: str, q: int) -> None:
        slot = self.slots.get(host)
        peer = slot.peer if slot is not None else None
        if slot is not None and peer is not None and not peer.closed and not slot.disconnected:
            with contextlib.suppress(ConnectionResetError):
                peer.send(Message.of("ack", q=q))

    def _accept(self, slot: HostSlot, msg: Message) -> bool:
        """Reliable delivery of a message from ``slot``'s agent: an ``ack`` releases kept messages, a
        numbered message already processed (a replay) is dropped. True when the engine should process it."""
        session = self.sessions.get(slot.name)
        if msg.type == "ack":
            if session is not None:
                session.acked(int(msg["q"]))
            return False
        return session is None or session.accept(msg)

    def _resumable(self, slot: HostSlot) -> bool:
        return (
            self.settings.reconnect_window > 0
            and self.sessions.get(slot.name) is not None
            and slot.state not in ("starting", "joined", "finished", "stopped", "failed")
        )

    def _agent_gone(self, slot: HostSlot) -> str | None:
        """Why ``slot``'s agent can no longer resume ("exited", "is stopped"), or None when it runs or its
        launcher cannot tell (the link then gets its window)."""
        launcher = self._launcher
        return launcher.agent_state(slot.name, slot.agent_pid) if launcher is not None else None

    def _launched(self, slot: HostSlot) -> bool:
        """Whether ``slot``'s agent is the one this run's launcher started (and watches)."""
        launcher = self._launcher
        agent = launcher.agent(slot.name) if launcher is not None else None
        return agent is not None and agent.pid == slot.agent_pid

    def _lost_fallback(self, name: str, pid: int | None, reason: str, gone: str) -> None:
        slot = self.slots.get(name)
        if slot is None or self.finished or slot.agent_pid != pid:
            return
        if slot.state not in ("starting", "finished", "stopped", "failed"):  # nobody failed it meanwhile
            self._host_failed(slot, f"{reason}; its agent {gone}")

    def _disconnected(self, slot: HostSlot, reason: str) -> None:
        slot.disconnected = True
        slot.disconnected_at = now = time.monotonic()
        window = self.settings.reconnect_window
        self.bus.emit("host.disconnected", host=slot.name, data={"reason": reason, "window": window})
        self._watch_reconnect(slot.name, now + window, reason)

    def _watch_reconnect(self, name: str, deadline: float, reason: str) -> None:
        """While ``name`` is disconnected: fail it once its agent is gone or the window is over."""
        slot = self.slots.get(name)
        if slot is None:
            return
        slot.reconnect_timer = None
        if not slot.disconnected or self.finished:
            return
        if not self._resumable(slot):  # failed, restarted or replaced meanwhile: no longer ours to decide
            slot.disconnected = False
            return
        gone = self._agent_gone(slot)
        now = time.monotonic()
        if gone is not None or now >= deadline:
            slot.disconnected = False
            window = self.settings.reconnect_window
            why = f"its agent {gone}" if gone else f"its agent did not reconnect within {window:g}s"
            self._host_failed(slot, f"{reason}; {why}")
            return
        slot.reconnect_timer = asyncio.get_running_loop().call_later(
            min(AGENT_POLL, deadline - now), self._watch_reconnect, name, deadline, reason
        )

    def _on_resume(self, peer: Peer, slot: HostSlot | None, join: Message) -> None:
        """A ``join`` with ``resume``: the agent of ``slot`` comes back after its link broke. Re-attach it,
        tell it what we processed (``resume``) and replay what it has not, before anything new."""
        session = self.sessions.get(slot.name) if slot is not None else None
        if slot is None or session is None or self.finished or not self._resumable(slot):
            state = slot.state if slot is not None else "unknown"
            why = "the run is over" if self.finished else f"host {peer.host!r} cannot resume (it is {state})"
            peer.send(Message.of("reject", reason=why))
            peer.close("rejected")
            return
        old = slot.peer
        if old is not None and old is not peer and not old.closed:
            old.abort("replaced by the agent's resumed connection")  # its end is ignored: not current
        if slot.reconnect_timer is not None:
            slot.reconnect_timer.cancel()
            slot.reconnect_timer = None
        down_for = time.monotonic() - slot.disconnected_at if slot.disconnected and slot.disconnected_at else 0.0
        slot.peer = peer
        slot.disconnected = False
        slot.agent_pid = int(join["pid"])
        peer.send(Message.of("welcome", host=slot.name))
        peer.send(Message.of("resume", received=session.received))
        try:
            replay = list(session.replay(int(join.get("received", 0))))
        except ProtocolError as exc:
            peer.abort(f"bad resume: {exc}")
            self._host_failed(slot, f"its agent resumed with a bad sequence number: {exc}")
            return
        for mtype, frame in replay:
            peer.send_bytes(frame, Message(mtype))
        self.bus.emit(
            "host.reconnected",
            host=slot.name,
            data={"replayed": len(replay), "received": session.received, "down_for": round(down_for, 3)},
        )
