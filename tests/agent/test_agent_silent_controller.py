"""A real agent whose controller accepts its connection and never answers: the agent gives up at its connect
timeout, exits 1 and says why in words (an ``asyncio.TimeoutError`` has no text of its own)."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from plush.fabric.tls import ensure_ca


async def test_an_agent_no_controller_welcomes_exits_1_and_says_it_waited_for_a_welcome(tmp_path: Path) -> None:
    held: list[asyncio.StreamWriter] = []

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)  # accepted, never answered (a controller too busy to finish a handshake)

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    ca = ensure_ca(tmp_path / "state")
    (tmp_path / "ca.pem").write_bytes(ca.cert_pem)
    token = tmp_path / "token"
    token.write_text("not-a-real-token")
    os.chmod(token, 0o600)
    try:
        agent = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "plush.agent",
            "--connect",
            f"127.0.0.1:{port}",
            "--ca",
            str(tmp_path / "ca.pem"),
            "--token-file",
            str(token),
            "--host",
            "quiet-1",
            "--workdir",
            str(tmp_path / "work"),
            "--connect-timeout",
            "0.5",
            "--runtime",
            "minimal",
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        _, stderr = await asyncio.wait_for(agent.communicate(), 60)
    finally:
        server.close()
        for writer in held:
            writer.close()
    assert agent.returncode == 1
    text = stderr.decode()
    assert "agent failed: no welcome from the controller within its connect timeout (0.5s)" in text, text
