"""Unauthenticated connections are bounded: caps, the handshake timeout, EMFILE, and agents still join."""

from __future__ import annotations

import asyncio
import contextlib
import os
import ssl
import sys
from pathlib import Path

from fabric_world import DEADLINE, TOKEN, next_event, start_listener

from plush.agent.link import AgentLink, client_ssl_context
from plush.config import Settings
from plush.fabric.listener import ControllerListener
from plush.fabric.tls import CA
from plush.protocol.messages import Message

JOIN = {"host": "h1", "pid": 1, "hostname": "x", "python": "3.11", "workdir": "/w", "agent_version": "0"}
HERE = Path(__file__).parent


async def until(cond: object, what: str) -> None:
    """Poll ``cond()`` until it holds (a deadline, not a timing assertion)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + DEADLINE
    while not cond():  # type: ignore[operator]
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


async def closed_by_server(reader: asyncio.StreamReader) -> bool:
    """True once the server closed this (silent) connection; what it sent before (an invite) is skipped."""
    with contextlib.suppress(ConnectionError, ssl.SSLError):
        while await asyncio.wait_for(reader.read(65536), DEADLINE):
            pass
    return True


async def join_agent(ca: CA, listener: ControllerListener, host: str = "h1") -> None:
    connecting = asyncio.ensure_future(
        AgentLink.connect(
            "127.0.0.1",
            listener.port,
            ssl_context=client_ssl_context(ca.cert_pem),
            token=TOKEN,
            join=dict(JOIN, host=host),
            connect_timeout=DEADLINE,
        )
    )
    peer, msg, _ = await next_event(listener)
    assert msg is not None and msg.type == "join" and peer.host == host
    peer.send(Message.of("welcome", host=host))
    link = await connecting
    await link.close()


async def test_idle_unauthenticated_connections_are_capped_oldest_first_and_an_agent_still_joins(
    tmp_path: Path,
) -> None:
    settings = Settings(silence_timeout=30.0, ping_timeout=30.0, preauth_limit=40, preauth_per_source=20)
    ca, listener = await start_listener(tmp_path, settings=settings)
    idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
    try:
        for _ in range(100):  # plain TCP, never a TLS byte: the cheapest way to hold a server's descriptor
            idle.append(await asyncio.open_connection("127.0.0.1", listener.port))
        await until(lambda: listener.admission.admitted == 100, "100 accepted connections")
        stats = listener.statistics()["preauth"]
        assert stats["held"] == 20 and stats["dropped"] == 80  # all from 127.0.0.1: the per-source cap
        # the oldest 80 were dropped, the newest 20 are held
        for reader, _ in idle[:80]:
            assert await closed_by_server(reader)
        await join_agent(ca, listener)  # a real agent still joins (it displaces the oldest idle one)
        assert listener.statistics()["preauth"]["held"] == 19  # the agent joined; one idle one made room
    finally:
        for _, writer in idle:
            writer.close()
        await listener.close()


async def test_a_silent_connection_is_dropped_after_the_handshake_timeout(tmp_path: Path) -> None:
    settings = Settings(silence_timeout=30.0, ping_timeout=30.0, join_timeout=600.0, handshake_timeout=0.3)
    ca, listener = await start_listener(tmp_path, settings=settings)
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", listener.port)  # no TLS at all
        assert await closed_by_server(reader)  # well before join_timeout
        writer.close()
        tls_reader, tls_writer = await asyncio.open_connection(
            "127.0.0.1", listener.port, ssl=client_ssl_context(ca.cert_pem), server_hostname="127.0.0.1"
        )  # TLS, then silence: no join
        assert await closed_by_server(tls_reader)
        tls_writer.close()
        await until(lambda: listener.statistics()["connections"] == 0, "both connections forgotten")
        assert listener.statistics()["refused"] == 2 and len(listener.admission) == 0
        await join_agent(ca, listener)
    finally:
        await listener.close()


async def test_out_of_descriptors_one_warning_and_agents_join_again(tmp_path: Path) -> None:
    """A controller with a low RLIMIT_NOFILE (a child process) flooded with idle connections."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(HERE / "emfile_controller.py"),
        str(tmp_path),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path)),
    )
    assert proc.stdout is not None and proc.stderr is not None and proc.stdin is not None
    flood: list[asyncio.StreamWriter] = []
    stderr: list[str] = []

    async def read_stderr() -> None:
        assert proc.stderr is not None
        async for line in proc.stderr:
            stderr.append(line.decode(errors="replace"))

    reading = asyncio.ensure_future(read_stderr())
    try:
        port = int((await asyncio.wait_for(proc.stdout.readline(), DEADLINE)).split()[1])
        ca_pem = (tmp_path / "ca" / "ca.pem").read_bytes()
        for _ in range(200):  # far over the child's descriptor limit: the rest wait in the backlog
            flood.append((await asyncio.open_connection("127.0.0.1", port))[1])
        await until(lambda: any("cannot accept" in line for line in stderr), "the out-of-descriptors warning")
        for round_ in range(2):  # agents still join, twice (the second after a fresh flood)
            link = await AgentLink.connect(
                "127.0.0.1",
                port,
                ssl_context=client_ssl_context(ca_pem),
                token=TOKEN,
                join=dict(JOIN, host=f"agent{round_}"),
                connect_timeout=DEADLINE,
            )
            await link.close()
            joined = (await asyncio.wait_for(proc.stdout.readline(), DEADLINE)).decode()
            assert joined.split() == ["joined", f"agent{round_}"]
            for _ in range(100):
                flood.append((await asyncio.open_connection("127.0.0.1", port))[1])
    finally:
        for writer in flood:
            writer.close()
        proc.stdin.close()
        try:
            await asyncio.wait_for(proc.wait(), DEADLINE)
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        await reading
    loud = [line for line in stderr if not line.startswith(("DEBUG", "INFO"))]
    assert not any("Traceback" in line for line in stderr), "".join(stderr[-40:])
    assert len(loud) == 1 and "cannot accept agent connections" in loud[0], "".join(loud[:20])
    assert proc.returncode == 0


async def test_an_agent_dropped_before_its_welcome_dials_again(tmp_path: Path) -> None:
    """The first connection is dropped at once (as the pre-auth bounds may drop it); the agent dials again."""
    ca, listener = await start_listener(tmp_path)
    accepted = 0

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()

    async def proxy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal accepted
        accepted += 1
        if accepted == 1:
            writer.transport.abort()
            return
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", listener.port)
        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    server = await asyncio.start_server(proxy, "127.0.0.1", 0)
    try:
        connecting = asyncio.ensure_future(
            AgentLink.connect(
                "127.0.0.1",
                server.sockets[0].getsockname()[1],
                ssl_context=client_ssl_context(ca.cert_pem),
                token=TOKEN,
                join=JOIN,
                connect_timeout=DEADLINE,
                retry_dropped=True,
            )
        )
        peer, msg, _ = await next_event(listener)
        assert msg is not None and msg.type == "join"
        peer.send(Message.of("welcome", host="h1"))
        link = await connecting
        assert accepted == 2
        await link.close()
    finally:
        server.close()
        await listener.close()
