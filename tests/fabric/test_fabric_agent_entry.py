"""The agent's entry point: argument parsing, the token source, the runtime choice, the TLS client context."""

from __future__ import annotations

import argparse
import io
import ssl
from pathlib import Path

import pytest

from plush.agent.__main__ import MinimalRuntime, load_runtime, parse_address, parse_args, read_token
from plush.agent.link import client_ssl_context
from plush.fabric.tls import ensure_ca, server_context


def test_parse_address() -> None:
    assert parse_address("127.0.0.1:4000") == ("127.0.0.1", 4000)
    assert parse_address("[::1]:9") == ("::1", 9)
    with pytest.raises(argparse.ArgumentTypeError, match="HOST:PORT"):
        parse_address("nohost")


def test_the_token_comes_from_a_file_or_stdin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "t").write_text("abc123\n")
    assert read_token(str(tmp_path / "t")).reveal() == "abc123"
    monkeypatch.setattr("sys.stdin", io.StringIO("from-stdin\n"))
    assert read_token("-").reveal() == "from-stdin"


def test_there_is_no_token_flag() -> None:
    with pytest.raises(SystemExit):
        parse_args(["--connect", "h:1", "--ca", "c", "--host", "h", "--workdir", "w", "--token", "x"])


def test_minimal_runtime_can_be_forced(tmp_path: Path) -> None:
    assert isinstance(load_runtime("h", tmp_path, "minimal"), MinimalRuntime)


def test_client_context_trusts_only_the_ca_and_checks_names(tmp_path: Path) -> None:
    ca = ensure_ca(tmp_path)
    ctx = client_ssl_context(ca.cert_pem)
    assert ctx.check_hostname and ctx.verify_mode == ssl.CERT_REQUIRED
    assert ctx.minimum_version >= ssl.TLSVersion.TLSv1_2
    assert [c["subject"] for c in ctx.get_ca_certs()] == [
        c["subject"] for c in client_ssl_context(ca.cert_pem).get_ca_certs()
    ]
    assert len(ctx.get_ca_certs()) == 1


def test_the_ca_is_created_once_and_private(tmp_path: Path) -> None:
    first = ensure_ca(tmp_path)
    server_context(first, ["controller.example.org"])
    second = ensure_ca(tmp_path)
    assert first.cert_pem == second.cert_pem
    assert (first.key_path.stat().st_mode & 0o777) == 0o600
    assert (first.key_path.parent.stat().st_mode & 0o777) == 0o700
    assert list(first.key_path.parent.glob(".server-*")) == []  # the server key file is gone after loading
