"""A controller listener in its own process with a low RLIMIT_NOFILE (for test_fabric_preauth).

Usage: ``python emfile_controller.py STATE_DIR``. Prints ``port N``, then ``joined HOST`` for each agent it
welcomes; logs (level INFO, ``LEVEL name: message``) go to stderr; exits 0 when stdin closes.
"""

from __future__ import annotations

import asyncio
import logging
import os
import resource
import sys
from pathlib import Path

from fabric_world import TOKEN

from plush.config import Settings
from plush.fabric.listener import ControllerListener
from plush.fabric.tls import ensure_ca, server_context
from plush.protocol.messages import Message

#: descriptors left free above those open once the listener runs
HEADROOM = 24


async def main(state_dir: Path) -> None:
    ca = ensure_ca(state_dir)
    settings = Settings(silence_timeout=60.0, ping_timeout=60.0, handshake_timeout=60.0)
    listener = ControllerListener(ssl_context=server_context(ca), token=TOKEN, run_id="emfile", settings=settings)
    await listener.start()
    in_use = len(os.listdir("/proc/self/fd"))
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (in_use + HEADROOM, hard))
    print("port", listener.port, flush=True)
    loop = asyncio.get_running_loop()
    stdin_closed = loop.create_future()
    loop.add_reader(sys.stdin.fileno(), lambda: stdin_closed.done() or stdin_closed.set_result(None))

    async def pump() -> None:
        async for event in listener:
            if event.message is not None and event.message.type == "join":
                host = str(event.message["host"])
                event.peer.send(Message.of("welcome", host=host))
                print("joined", host, flush=True)

    task = asyncio.ensure_future(pump())
    try:
        await stdin_closed
    finally:
        task.cancel()
        await listener.close(timeout=5.0)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).parent))
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    asyncio.run(main(Path(sys.argv[1])))
