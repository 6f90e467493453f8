"""SSH connections for the SSH launcher: one per target, admitted, checked, and failures in words.

Role: :class:`SSHConnections` opens (asyncssh) and keeps ONE connection per SSH target (address, port, user,
config), shared by every logical host behind it. It honours the user's OpenSSH client config (the ``ssh_config``
setting: ``Host``, ``HostName``, ``User``, ``Port``, ``IdentityFile``, ``ProxyJump``, ``UserKnownHostsFile``
...), or the target's own when its host names one (the ``ssh_config`` attribute of a directory entry, as the
hosts of ``plush cluster`` carry), and ssh-agent (``SSH_AUTH_SOCK``); it never prompts (no password,
keyboard-interactive or passphrase question: a key that needs one is not used), and offers curve25519-sha256
first in the key exchange (the hybrid post-quantum default costs several times the client CPU per handshake).

Host keys (``ssh_known_hosts``): ``accept-new`` -- a host with no key in known_hosts is trusted and its key
appended there, a host whose key differs from the one known is refused ("host key changed"); ``strict`` --
only known keys; ``off`` -- no check at all (anyone on the network path can pose as the host).

Jump hosts (``ProxyJump``): the connection to a jump host is opened here like any other (its own config entry,
known-hosts policy, admission, no prompt) and shared by every target behind it -- one handshake with a
bastion, however many hosts are behind it; each target is then reached through it (asyncssh's ``tunnel``).
A failure names the jump host (``jump host J: connection refused ...``, ``connection refused (ADDR through the
jump host J ...)``). Chains (``ProxyJump a,b``) are refused in words: give each jump host its own ProxyJump.

Admission control: sshd drops handshakes beyond its ``MaxStartups``; at most ``ssh_handshakes`` handshakes
are in flight per sshd address (and per ProxyJump host); a handshake that sshd closed before it completed is
retried with back-off (``RETRIES`` times) and the failure says so when retries run out. Every attempt is bounded
by ``ssh_connect_timeout`` end to end (DNS, TCP, the jump host's connection and the handshake included).

Invariants: at most one connection attempt per target at a time (concurrent callers share it); a failure is
a :class:`SSHFailure` whose message names the cause in words (authentication failed, host key changed, host
key unknown, connection refused, timed out, cannot resolve, sshd refused the connection (MaxStartups)).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import asyncssh

__all__ = ["KEX_ALGS", "RETRIES", "SSHConnections", "SSHFailure", "SSHTarget"]

log = logging.getLogger(__name__)

#: key exchanges offered, curve25519 first (then asyncssh's defaults)
KEX_ALGS = [
    "curve25519-sha256",
    "curve25519-sha256@libssh.org",
    "curve448-sha512",
    "ecdh-sha2-nistp256",
    "mlkem768x25519-sha256",
    "diffie-hellman-group14-sha256",
    "diffie-hellman-group16-sha512",
]
#: handshakes sshd closed early (MaxStartups) are retried this many times, with back-off from _BACKOFF seconds
RETRIES = 8
_BACKOFF = 0.1
_BACKOFF_MAX = 2.0


class SSHFailure(Exception):
    """An SSH connection or command failed; the message says why in words (no host name: the caller adds it)."""


@dataclass(frozen=True)
class SSHTarget:
    """Where one SSH connection goes: the address (a ``~/.ssh/config`` alias or a name), port and user
    (None: from the config, else OpenSSH's defaults), and the OpenSSH client config it is read with (None:
    the connections' own, the ``ssh_config`` setting; a host's ``ssh_config`` attribute names its own)."""

    address: str
    port: int | None = None
    user: str | None = None
    config: str | None = None


class _Client(asyncssh.SSHClient):
    """Host key checks beyond the known keys: ``accept-new`` adds a host never seen, a changed key is refused."""

    def __init__(self, policy: str, known: asyncssh.SSHKnownHosts, path: Path | None) -> None:
        self.policy = policy
        self.known = known
        self.path = path
        self.problem: str | None = None

    def validate_host_public_key(self, host: str, addr: str, port: int, key: asyncssh.SSHKey) -> bool:
        names = (host, addr)
        known_keys = [k for n in names for k in self.known.match(n, addr, port if port != 22 else None)[0]]
        if known_keys:
            where = f" in {self.path}" if self.path else ""
            self.problem = f"host key changed (known_hosts{where} has another key for {host}: if the host was "
            self.problem += "reinstalled, remove its line there)"
            return False
        if self.policy != "accept-new" or self.path is None:
            self.problem = f"host key unknown ({host} is not in known_hosts and ssh_known_hosts is strict)"
            return False
        entry = host if port == 22 else f"[{host}]:{port}"
        line = f"{entry} {key.export_public_key().decode().strip()}\n"
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            with os.fdopen(fd, "a") as fh:
                fh.write(line)
        except OSError as exc:
            log.warning("cannot add %s to %s: %s", host, self.path, exc)
        log.info("added the key of %s to %s (ssh_known_hosts = accept-new)", host, self.path)
        return True


class SSHConnections:
    """One connection per target, opened under admission control (see the module docstring)."""

    def __init__(
        self,
        *,
        config: str = "~/.ssh/config",
        known_hosts: str = "accept-new",
        connect_timeout: float = 15.0,
        handshakes: int = 10,
    ) -> None:
        path = Path(config).expanduser() if config else None
        self.config: Sequence[str] = [str(path)] if path is not None and path.is_file() else []
        self.policy = known_hosts
        self.connect_timeout = connect_timeout
        self.handshakes = handshakes
        self._doors: dict[tuple[str, int], asyncio.Semaphore] = {}
        self._hostnames: dict[SSHTarget, str] = {}
        self._conns: dict[SSHTarget, asyncssh.SSHClientConnection] = {}
        self._opening: dict[SSHTarget, asyncio.Task[asyncssh.SSHClientConnection]] = {}
        #: handshakes retried after sshd closed them early (for tests and ``statistics``)
        self.retried = 0

    def options(self, target: SSHTarget) -> asyncssh.SSHClientConnectionOptions:
        """The connection options of ``target``: its config entry, the policy's known hosts, no prompt."""
        kwargs: dict[str, object] = {}
        if target.port is not None:
            kwargs["port"] = target.port
        if target.user is not None:
            kwargs["username"] = target.user
        options = asyncssh.SSHClientConnectionOptions(
            config=self._config_of(target),
            host=target.address,
            kex_algs=KEX_ALGS,
            password_auth=False,
            kbdint_auth=False,
            connect_timeout=self.connect_timeout,
            **kwargs,
        )
        # what :meth:`hostname` answers, from the config just read: reading it again costs the whole file
        self._hostnames.setdefault(target, str(options.config.get("Hostname", target.address) or target.address))
        return options

    def _config_of(self, target: SSHTarget) -> list[str]:
        """The config files ``target`` is read with: its own (when it names one that exists), else ours."""
        if target.config:
            path = Path(target.config).expanduser()
            return [str(path)] if path.is_file() else []
        return list(self.config)

    def hostname(self, target: SSHTarget) -> str:
        """``target``'s address as the SSH config resolves it (its ``HostName``, else the address itself)."""
        name = self._hostnames.get(target)
        if name is None:
            self.options(target)  # reads the config once, notes the name
            name = self._hostnames[target]
        return name

    def _door(self, options: asyncssh.SSHClientConnectionOptions, target: SSHTarget) -> list[asyncio.Semaphore]:
        """The admission semaphores of a handshake: its sshd address, and its jump host if any."""
        config = options.config
        host = str(config.get("Hostname", target.address) or target.address)
        port = target.port or int(str(config.get("Port", 22) or 22))
        keys = [(host, port)]
        jump = _jump_of(options)
        if jump:
            keys.append((f"jump:{jump}", 0))
        return [self._doors.setdefault(k, asyncio.Semaphore(self.handshakes)) for k in keys]

    async def _through(self, jump: str, config: str | None) -> asyncssh.SSHClientConnection:
        """The connection to jump host ``jump`` (``[user@]host[:port]``, a ``Host`` of the config or a name),
        opened like any other (admitted, checked, never prompting; read with the target's ``config``) and
        shared by every host behind it."""
        if "," in jump:
            raise SSHFailure(f"ProxyJump {jump}: chains are not supported; give each jump host its own ProxyJump")
        user, _, rest = jump.rpartition("@")
        host, colon, port = rest.partition(":")
        if colon and not port.isdigit():
            raise SSHFailure(f"ProxyJump {jump}: not [user@]host[:port]")
        try:
            return await self.connection(SSHTarget(host, int(port) if colon else None, user or None, config))
        except SSHFailure as exc:
            raise SSHFailure(f"jump host {jump}: {exc}") from exc

    async def connection(self, target: SSHTarget) -> asyncssh.SSHClientConnection:
        """The open connection to ``target`` (opened now if there is none); raises :class:`SSHFailure`."""
        conn = self._conns.get(target)
        if conn is not None and not conn.is_closed():
            return conn
        task = self._opening.get(target)
        if task is None:
            task = self._opening[target] = asyncio.get_running_loop().create_task(self._open(target))
            task.add_done_callback(lambda _t: self._opening.pop(target, None))
        conn = await asyncio.shield(task)
        self._conns[target] = conn
        return conn

    def open_targets(self) -> list[SSHTarget]:
        """The targets with an open connection (jump hosts included)."""
        return [t for t, c in self._conns.items() if not c.is_closed()]

    def forget(self, target: SSHTarget) -> None:
        """Drop the connection to ``target`` (the next call opens a new one)."""
        conn = self._conns.pop(target, None)
        if conn is not None:
            conn.close()

    async def _open(self, target: SSHTarget) -> asyncssh.SSHClientConnection:
        options = self.options(target)
        doors = self._door(options, target)
        delay = _BACKOFF
        last: Exception | None = None
        for attempt in range(RETRIES + 1):
            early = False
            async with contextlib.AsyncExitStack() as stack:
                for door in doors:
                    await stack.enter_async_context(door)
                try:
                    return await self._attempt(target, options)
                except _EarlyClose as exc:
                    early = True
                    last = exc
            if early and attempt < RETRIES:
                self.retried += 1
                await asyncio.sleep(delay * (1 + random.random()))
                delay = min(delay * 2, _BACKOFF_MAX)
        raise SSHFailure(
            f"sshd refused the connection {RETRIES + 1} times (MaxStartups: too many handshakes at once, "
            f"lower ssh_handshakes or raise sshd's MaxStartups): {last}"
        )

    def _known(self, options: asyncssh.SSHClientConnectionOptions) -> tuple[asyncssh.SSHKnownHosts, Path | None]:
        given = options.known_hosts if isinstance(options.known_hosts, list) else []
        files = [Path(str(f)).expanduser() for f in given] or [Path("~/.ssh/known_hosts")]
        path = files[0].expanduser()
        existing = [str(f) for f in files if f.is_file()]
        return (asyncssh.read_known_hosts(existing) if existing else asyncssh.import_known_hosts("")), path

    async def _attempt(
        self, target: SSHTarget, options: asyncssh.SSHClientConnectionOptions
    ) -> asyncssh.SSHClientConnection:
        client: _Client | None = None
        kwargs: dict[str, object] = {}
        if self.policy == "off":
            kwargs["known_hosts"] = None
        else:
            known, path = self._known(options)
            client = _Client(self.policy, known, path)
            kwargs["known_hosts"] = known
            kwargs["client_factory"] = lambda: client
        config = options.config
        port = target.port or int(str(config.get("Port", 22) or 22))
        address = f"{config.get('Hostname', target.address) or target.address}:{port}"
        jump = _jump_of(options)
        via = f" through the jump host {jump}" if jump else ""
        try:
            async with asyncio.timeout(self.connect_timeout):  # end to end: the jump host's connection too
                if jump:
                    kwargs["tunnel"] = await self._through(jump, target.config)
                return await asyncssh.connect(target.address, options=options, **kwargs)
        except TimeoutError as exc:
            raise SSHFailure(f"timed out connecting to {address}{via} (after {self.connect_timeout:g} s)") from exc
        except asyncssh.ChannelOpenError as exc:  # the jump host could not open the way to the target
            if "refused" in exc.reason.lower():
                raise SSHFailure(f"connection refused ({address}{via}: no sshd listening there?)") from exc
            raise SSHFailure(f"the jump host {jump} cannot reach {address}: {exc.reason}") from exc
        except asyncssh.HostKeyNotVerifiable as exc:
            problem = client.problem if client is not None else None
            raise SSHFailure(problem or f"host key not verifiable ({exc.reason})") from exc
        except asyncssh.PermissionDenied as exc:
            user = options.username if hasattr(options, "username") else target.user
            raise SSHFailure(
                f"authentication failed (user {user} at {address}: no key was accepted, from IdentityFile, "
                "~/.ssh/id_* or ssh-agent, passwords are never asked)"
            ) from exc
        except ConnectionRefusedError as exc:
            raise SSHFailure(f"connection refused ({address}{via}: no sshd listening there?)") from exc
        except socket.gaierror as exc:
            raise SSHFailure(f"cannot resolve {target.address} ({exc.strerror})") from exc
        except (asyncssh.ConnectionLost, ConnectionResetError, BrokenPipeError) as exc:
            raise _EarlyClose(f"{address}: {exc}") from exc
        except asyncssh.DisconnectError as exc:
            raise SSHFailure(f"sshd at {address} disconnected: {exc.reason}") from exc
        except OSError as exc:
            raise SSHFailure(f"cannot connect to {address}: {exc.strerror or exc}") from exc

    async def close(self) -> None:
        """Close every connection (and cancel the ones being opened)."""
        for task in list(self._opening.values()):
            task.cancel()
        conns, self._conns = list(self._conns.values()), {}
        for conn in conns:
            conn.close()
        for conn in conns:
            with contextlib.suppress(Exception):
                await conn.wait_closed()


def _jump_of(options: asyncssh.SSHClientConnectionOptions) -> str | None:
    """The config's ``ProxyJump`` for these options (None: none)."""
    jump = options.config.get("ProxyJump")
    text = str(jump).strip() if jump else ""
    return text if text and text.lower() != "none" else None


class _EarlyClose(Exception):
    """sshd closed a handshake before it completed (MaxStartups, or a bastion overloaded): retried."""
