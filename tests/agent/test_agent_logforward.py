"""LogForwarder: the agent's warnings and errors become ``log`` messages (bounded, never re-entered).

The whole path (a real agent's warning journaled as ``agent.log``) is in
tests/integration/test_run_agent_settings.py; here, what a run cannot show reliably.
"""

from __future__ import annotations

import asyncio
import logging
import threading

from plush.agent.logforward import MAX_TEXT, LogForwarder
from plush.protocol.messages import Message, validate

log = logging.getLogger("plush.agent.test")


class Recorder:
    """A channel that keeps what is sent; logging while sending (as a failing link would)."""

    def __init__(self) -> None:
        self.sent: list[Message] = []

    def send(self, msg: Message) -> None:
        validate(msg)
        self.sent.append(msg)
        log.warning("the link logs while sending")  # must not be forwarded again (no recursion)


async def test_warnings_and_errors_are_forwarded_bounded_once() -> None:
    channel = Recorder()
    forward = LogForwarder(channel, asyncio.get_running_loop())  # type: ignore[arg-type]
    forward.attach()
    try:
        log.info("not forwarded")
        log.warning("disk %s is full", "/x")
        log.error("x" * (MAX_TEXT * 2))
        thread = threading.Thread(target=log.warning, args=("from a thread",))
        thread.start()
        thread.join()
        for _ in range(100):  # the thread's line is handed to the loop
            if len(channel.sent) >= 3:
                break
            await asyncio.sleep(0.01)
    finally:
        forward.detach()
    log.warning("after detach")
    texts = [(m["level"], m["text"]) for m in channel.sent]
    assert texts[0] == ("warning", "plush.agent.test: disk /x is full")
    assert texts[1][0] == "error" and len(texts[1][1]) == MAX_TEXT and texts[1][1].endswith("...")
    assert texts[2:] == [("warning", "plush.agent.test: from a thread")]
