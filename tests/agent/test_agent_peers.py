"""A host's relay listener and fetcher (plush.agent.peers) over real TLS sockets on loopback: a child gets the
entry as its parent receives it, from the offset it holds; a source that fails is left for the next; a
connection without the copy's token, or with any other first line, gets nothing but ``NO``."""

from __future__ import annotations

import hashlib
import os
import socket
import ssl
import threading
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from plush.agent.link import client_ssl_context
from plush.agent.peers import RELAY_NAME, PeerServer, Progress, fetch_from_peers, pread_into, read_line, write_all
from plush.fabric.tls import ensure_ca, issue_server_cert
from plush.protocol.peerwire import MAX_LINE, PeerRequest, WireError, parse_answer
from plush.protocol.secret import Secret


@pytest.fixture(scope="module")
def relay(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    ca = ensure_ca(tmp_path_factory.mktemp("ca"))
    cert, key = issue_server_cert(ca, (RELAY_NAME,))
    token = Secret.generate().reveal()
    return {"token": token, "ca": ca.cert_pem.decode(), "cert": cert.decode(), "key": key.decode(), "timeout": 30.0}


@pytest.fixture()
def server() -> Any:
    srv = PeerServer()
    yield srv
    srv.close()


def _parent(tmp_path: Path, relay: dict[str, Any], server: PeerServer, data: bytes) -> tuple[Progress, int, str]:
    sha = "0" * 64  # the listener serves the offer's bytes; the child checks the sha256 (not here)
    path = tmp_path / "parent"
    path.write_bytes(b"")
    progress = Progress(str(path), len(data))
    return progress, server.offer(relay, sha, progress), sha


def test_the_digest_of_an_entry_is_the_sha256_of_what_was_appended_and_only_once_it_is_whole(tmp_path: Path) -> None:
    data = os.urandom(300_001)
    path = tmp_path / "entry"
    path.write_bytes(b"")
    progress = Progress(str(path), len(data))
    fd = os.open(path, os.O_WRONLY)
    try:
        for start in range(0, len(data), 65_536):
            assert progress.digest() is None  # not whole yet
            progress.append(fd, memoryview(data)[start : start + 65_536])
    finally:
        os.close(fd)
    assert path.read_bytes() == data and progress.written == len(data)
    assert progress.digest() == hashlib.sha256(data).hexdigest()
    skipped = Progress(str(path), 4)
    skipped.advance(4)  # bytes that did not go through append: no digest, the file is hashed instead
    assert skipped.digest() is None


@pytest.mark.parametrize("has_preadv", [True, False])
def test_pread_into_fills_the_view_from_the_offset_with_or_without_preadv(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, has_preadv: bool
) -> None:
    if not has_preadv:
        monkeypatch.delattr(os, "preadv", raising=False)
    path = tmp_path / "f"
    path.write_bytes(b"0123456789")
    buf = bytearray(b"xxxxxx")
    fd = os.open(path, os.O_RDONLY)
    try:
        assert pread_into(fd, memoryview(buf)[:4], 3) == 4 and bytes(buf) == b"3456xx"
        assert pread_into(fd, memoryview(buf), 8) == 2 and bytes(buf) == b"89" + b"56xx"
        assert pread_into(fd, memoryview(buf), 10) == 0
    finally:
        os.close(fd)


def test_a_child_gets_the_bytes_as_its_parent_receives_them_after_a_dead_source(
    tmp_path: Path, relay: dict[str, Any], server: PeerServer
) -> None:
    data = os.urandom(3 * 1024 * 1024 + 17)
    progress, port, sha = _parent(tmp_path, relay, server, data)
    fd = os.open(tmp_path / "parent", os.O_WRONLY)
    write_all(fd, data[:1000], 0)
    progress.advance(1000)  # the parent holds 1000 bytes so far

    def arrive() -> None:  # the rest reaches the parent while its child is served
        write_all(fd, data[1000:], 1000)
        progress.advance(len(data) - 1000)
        progress.finish(True)

    child = tmp_path / "child"
    child.write_bytes(data[:10])
    mine = Progress(str(child), len(data))
    mine.advance(10)  # the child already holds 10 bytes (a parent of it failed): it asks from there
    dead = socket.socket()
    dead.bind(("127.0.0.1", 0))
    dead_port = dead.getsockname()[1]
    dead.close()
    threading.Timer(0.05, arrive).start()
    cfd = os.open(child, os.O_WRONLY)
    try:
        failures = fetch_from_peers([["127.0.0.1", dead_port], ["127.0.0.1", port]], relay, sha, cfd, mine)
    finally:
        os.close(cfd)
        os.close(fd)
    assert len(failures) == 1 and str(dead_port) in failures[0]
    assert mine.written == len(data) and child.read_bytes() == data


def test_a_parent_whose_own_transfer_fails_drops_its_children_who_go_on_with_the_next_source(
    tmp_path: Path, relay: dict[str, Any], server: PeerServer
) -> None:
    progress, port, sha = _parent(tmp_path, relay, server, b"x" * 4096)
    threading.Timer(0.05, progress.finish, (False,)).start()
    child = tmp_path / "child"
    child.write_bytes(b"")
    mine = Progress(str(child), 4096)
    cfd = os.open(child, os.O_WRONLY)
    try:
        failures = fetch_from_peers([["127.0.0.1", port]], relay, sha, cfd, mine)
    finally:
        os.close(cfd)
    assert len(failures) == 1 and mine.written == 0  # the caller asks the controller for it all


def _ask(port: int, relay: dict[str, Any], line: bytes) -> bytes:
    ctx = client_ssl_context(relay["ca"])
    with (
        socket.create_connection(("127.0.0.1", port), 5) as raw,
        ctx.wrap_socket(raw, server_hostname=RELAY_NAME) as tls,
    ):
        tls.sendall(line)
        answer = read_line(tls)
        rest = tls.recv(1024)
    assert rest == b""  # closed after the answer: nothing served
    return answer


def test_a_wrong_token_or_sha_is_refused_and_a_client_that_does_not_trust_the_ca_cannot_talk(
    tmp_path: Path, relay: dict[str, Any], server: PeerServer
) -> None:
    _progress, port, sha = _parent(tmp_path, relay, server, b"secret")
    with pytest.raises(WireError, match="no such offer"):
        parse_answer(_ask(port, relay, PeerRequest(Secret.generate().reveal(), sha, 0).encode()))
    with pytest.raises(WireError, match="no such offer"):
        parse_answer(_ask(port, relay, PeerRequest(relay["token"], "1" * 64, 0).encode()))
    other = ensure_ca(tmp_path / "other")
    with pytest.raises(ssl.SSLError):
        _ask(port, {**relay, "ca": other.cert_pem.decode()}, PeerRequest(relay["token"], sha, 0).encode())


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(min_size=1, max_size=MAX_LINE + 40).filter(lambda b: not b.startswith(b"PLUSH-RELAY 1 ")))
def test_any_first_line_but_a_request_with_the_token_gets_no_and_nothing_else(
    tmp_path: Path, relay: dict[str, Any], server: PeerServer, line: bytes
) -> None:
    progress = Progress(str(tmp_path / "none"), 6)
    port = server.offer(relay, "0" * 64, progress)
    ctx = client_ssl_context(relay["ca"])
    with (
        socket.create_connection(("127.0.0.1", port), 5) as raw,
        ctx.wrap_socket(raw, server_hostname=RELAY_NAME) as tls,
    ):
        tls.sendall(line if line.endswith(b"\n") or len(line) > MAX_LINE else line + b"\n")
        answer = read_line(tls)
        assert answer.startswith(b"NO ") and tls.recv(1024) == b""


class _Counted(Progress):
    def __init__(self, path: str, size: int) -> None:
        super().__init__(path, size)
        self.advances = 0

    def advance(self, n: int) -> None:
        self.advances += 1
        super().advance(n)


def test_a_child_takes_what_has_arrived_at_once_not_one_tls_record_at_a_time(
    tmp_path: Path, relay: dict[str, Any], server: PeerServer
) -> None:
    """The parent holds the whole entry: the child reads it in writes of many 16 KiB TLS records each (one
    ``advance``, one wake-up of its own readers per write), not one per record."""
    data = os.urandom(4 * 1024 * 1024)
    progress, port, sha = _parent(tmp_path, relay, server, data)
    (tmp_path / "parent").write_bytes(data)
    progress.advance(len(data))
    progress.finish(True)
    child = tmp_path / "child"
    child.write_bytes(b"")
    mine = _Counted(str(child), len(data))
    cfd = os.open(child, os.O_WRONLY)
    try:
        assert fetch_from_peers([["127.0.0.1", port]], relay, sha, cfd, mine) == []
    finally:
        os.close(cfd)
    assert child.read_bytes() == data
    records = len(data) // 16384
    assert mine.advances <= records // 4, (mine.advances, records)
