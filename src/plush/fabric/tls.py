"""TLS for the controller<->agent overlay: the per-controller CA and the listener's server certificate.

:func:`ensure_ca` creates, once, a self-signed CA (ECDSA P-256) under ``<state_dir>/ca/`` -- the key and
certificate files are 0600 in a 0700 directory -- and loads it on later calls. :func:`server_context`
issues a short-lived server certificate for the listener's names (``127.0.0.1``, ``localhost`` and any
given) and returns the ``ssl.SSLContext`` that serves it. The certificate's key never touches the disk
outside the 0700 CA directory, and only for the instant ``ssl`` needs a file to load it.

Agents trust exactly this CA: they build their context from the CA certificate PEM with
:func:`plush.agent.link.client_ssl_context` (stdlib only; it ships). TLS 1.2 is the floor; agents ask for
1.3 where their ssl module has it, so two modern ends always speak 1.3.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import secrets
import socket
import ssl
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["CA", "DEFAULT_NAMES", "ensure_ca", "issue_server_cert", "server_context"]

#: names every listener certificate covers
DEFAULT_NAMES = ("127.0.0.1", "localhost", "::1")
_CA_DAYS = 3650
_SERVER_DAYS = 30


@dataclass(frozen=True)
class CA:
    """The controller's certificate authority: its certificate (PEM, for agents) and its key."""

    cert_path: Path
    key_path: Path
    cert_pem: bytes
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.chmod(path, 0o600)


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Plush"), x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    )


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _create_ca(cert_path: Path, key_path: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    name = _name("Plush controller CA " + socket.gethostname())
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(_now() - datetime.timedelta(minutes=5))
        .not_valid_after(_now() + datetime.timedelta(days=_CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(ski, critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    _write_private(key_path, key_pem)
    _write_private(cert_path, cert.public_bytes(serialization.Encoding.PEM))


def ensure_ca(state_dir: Path) -> CA:
    """The CA stored under ``state_dir/ca``, created on first use (files 0600, directory 0700)."""
    ca_dir = Path(state_dir) / "ca"
    ca_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(ca_dir, 0o700)
    cert_path, key_path = ca_dir / "ca.pem", ca_dir / "ca.key"
    if not (cert_path.exists() and key_path.exists()):
        _create_ca(cert_path, key_path)
    cert_pem = cert_path.read_bytes()
    key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValueError(f"{key_path} does not hold an EC private key")
    return CA(cert_path, key_path, cert_pem, x509.load_pem_x509_certificate(cert_pem), key)


def issue_server_cert(ca: CA, hostnames: Iterable[str] = ()) -> tuple[bytes, bytes]:
    """A server certificate signed by ``ca`` for ``hostnames`` plus :data:`DEFAULT_NAMES`: (cert PEM, key PEM)."""
    names: list[x509.GeneralName] = []
    seen: set[str] = set()
    for host in (*DEFAULT_NAMES, *hostnames):
        if host in seen:
            continue
        seen.add(host)
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    key = ec.generate_private_key(ec.SECP256R1())
    ca_ski = ca.cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("plush controller"))
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(_now() - datetime.timedelta(minutes=5))
        .not_valid_after(_now() + datetime.timedelta(days=_SERVER_DAYS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False)
        .sign(ca.key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def server_context(ca: CA, hostnames: Iterable[str] = ()) -> ssl.SSLContext:
    """The listener's TLS context: a fresh certificate from ``ca`` for ``hostnames`` (+ loopback names)."""
    cert_pem, key_pem = issue_server_cert(ca, hostnames)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.options |= ssl.OP_NO_COMPRESSION
    # ssl loads chains only from files: a private file in the 0700 CA directory, removed at once
    tmp = ca.cert_path.parent / f".server-{secrets.token_hex(8)}.pem"
    try:
        _write_private(tmp, key_pem + cert_pem + ca.cert_pem)
        ctx.load_cert_chain(tmp)
    finally:
        tmp.unlink(missing_ok=True)
    return ctx
