"""The control server (plush.api.server) stays up whatever a client sends, and talks to its own user only.

A real server on a real Unix socket over a real Controller (no host connected: nothing here needs agents);
raw connections send what no plush command would: an oversized line, lines that are not JSON, not an object,
an unknown op, a missing argument. Each gets one error reply and the server answers the next request. A
process of another user that reaches the socket is refused by its uid (SO_PEERCRED).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from plush.api.control import MAX_REQUEST
from plush.api.handlers import HANDLERS
from plush.api.server import ControlServer
from plush.config import Settings
from plush.controller.api import Controller


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[ControlServer]:
    controller = Controller(Settings(runs_dir=str(tmp_path / "runs")))
    served = ControlServer(controller, name="t", kind="serve", on_quit=lambda reason: served.ended())
    await served.start()
    try:
        yield served
    finally:
        await served.close()
        await controller.quit()


async def _ask(path: Path, *lines: bytes) -> list[dict[str, object]]:
    reader, writer = await asyncio.open_unix_connection(str(path), limit=2**20)
    try:
        replies = []
        for line in lines:
            writer.write(line)
            await writer.drain()
            replies.append(json.loads(await reader.readline()))
        return replies
    finally:
        writer.close()
        await writer.wait_closed()


INFO = b'{"op": "info", "args": {"what": "control"}}\n'


async def test_the_socket_is_0600_and_named_in_the_control_directory(server: ControlServer) -> None:
    assert server.registration is not None
    path = server.registration.socket_path
    assert path.name == "t.sock" and (os.stat(path).st_mode & 0o777) == 0o600
    (reply,) = await _ask(path, INFO)
    assert reply["ok"] is True and reply["result"]["running"] is False  # type: ignore[index]


@pytest.mark.parametrize(
    ("line", "error"),
    [
        (b"not json\n", "malformed request"),
        (b"[1, 2]\n", "malformed request: not a JSON object"),
        (b'{"args": {}}\n', "malformed request"),
        (b'{"op": 3}\n', "malformed request"),
        (b'{"op": "frobnicate"}\n', "unknown request 'frobnicate' (this controller serves: abort, connect"),
        (b'{"op": "info"}\n', "missing argument 'what'"),
        (b'{"op": "info", "args": {"what": 3}}\n', "argument 'what'"),
        (b'{"op": "info", "args": {"what": "weather"}}\n', "info about 'weather'?"),
        (b'{"op": "abort"}\n', "no application is running"),
        (b"\xff\xfe\n", "malformed request"),
    ],
)
async def test_a_malformed_request_gets_an_error_and_the_connection_goes_on(
    server: ControlServer, line: bytes, error: str
) -> None:
    assert server.registration is not None
    refused, answered = await _ask(server.registration.socket_path, line, INFO)
    assert refused["ok"] is False and error in str(refused["error"]), refused
    assert refused["status"] in (1, 2)
    assert answered["ok"] is True


async def test_an_oversized_request_is_refused_and_the_server_stays_up(server: ControlServer) -> None:
    assert server.registration is not None
    path = server.registration.socket_path
    huge = b'{"op": "info", "args": {"what": "' + b"x" * MAX_REQUEST + b'"}}\n'
    (refused,) = await _ask(path, huge)
    assert refused == {"ok": False, "error": f"request over {MAX_REQUEST} bytes; connection closed", "status": 2}
    (answered,) = await _ask(path, INFO)
    assert answered["ok"] is True


def test_the_registry_holds_every_documented_request() -> None:
    ops = {"load", "connect", "disconnect", "info", "run", "stop", "release", "fail", "abort", "quit", "subscribe"}
    assert ops <= set(HANDLERS)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act as another user")
async def test_another_user_s_process_is_refused(server: ControlServer) -> None:
    """Even when the socket is opened to it (it is not: 0600 in a 0700 directory; here a hard link in a
    directory anyone may enter, the socket 0666), another uid is told no and its request is not served."""
    import shutil
    import tempfile

    assert server.registration is not None
    path = server.registration.socket_path
    public = Path(tempfile.mkdtemp(prefix="plush-peer-"))  # on /tmp, as the test's tmp dir: a hard link works
    try:
        os.chmod(public, 0o755)
        os.link(path, public / "s.sock")
        os.chmod(path, 0o666)
        code = (
            "import os, socket, sys; os.setgid(65534); os.setuid(65534);"
            "s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])\n"
            "print(s.makefile('rb').readline().decode(), end='')\n"
            "try:\n    s.sendall(sys.argv[2].encode()); s.recv(1)\nexcept OSError: pass"
        )
        done = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-c", code, str(public / "s.sock"), '{"op": "quit"}\n'],
            capture_output=True,
            timeout=60,
            check=False,
        )
    finally:
        shutil.rmtree(public)
    assert done.returncode == 0, done.stderr
    reply = json.loads(done.stdout)
    assert reply["ok"] is False and "refused: uid 65534" in reply["error"]
    assert not server.is_ended
    (answered,) = await _ask(path, INFO)
    assert answered["ok"] is True


async def test_a_refused_run_is_answered_and_not_logged_as_a_failure(
    server: ControlServer, caplog: pytest.LogCaptureFixture
) -> None:
    assert server.registration is not None
    with caplog.at_level(logging.DEBUG, logger="plush"):
        (reply,) = await _ask(server.registration.socket_path, b'{"op": "run", "args": {"detach": true}}\n')
        (after,) = await _ask(server.registration.socket_path, INFO)  # the spawned task's end has been seen
    assert reply["ok"] is False and "no application" in str(reply["error"])
    assert after["ok"] is True
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], caplog.text
