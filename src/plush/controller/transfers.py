"""File fan-out and fan-in on connected hosts: ``plush copy`` and ``plush gather`` (:meth:`plush.Controller.copy`,
:meth:`plush.Controller.gather`).

Role. Requests of the distributed shell's kind (docs/protocol.md, "File fan-out and fan-in"): one ``copy`` or
``gather`` message, encoded once, to every selected host, beside any run, through the mesh's
:class:`~plush.controller.execs.ExecTable` (host selection, hosts still connecting waited for, a host that
leaves unreachable, each host's deadline) -- only the answers differ, and :class:`Transfers`, owned by the
mesh, handles them:

- **copy**: the file is hashed once (sha256, in a thread); each agent looks it up in its host's content cache
  and asks for the data only on a miss (``copy.fetch``): a task streams it (chunks read in a thread, written
  as the link drains, then ``copy.end``); the agent checks the sha256 before the data enter its cache, places
  the file and answers ``copy.result``. Hosts that reach each other (a peer network,
  :func:`~plush.controller.relayplan.peer_network`) fetch from each other instead: the copy carries a
  ``relay`` object (a one-off token, the relay certificate of the mesh's CA), and each ask is placed in the
  copy's :class:`~plush.controller.relayplan.RelayPlan` -- streamed by the controller, or told its peers
  (``copy.peers``); an ask with ``offset`` (its peers failed) is streamed from there;
- **gather**: each agent streams the file back (``gather.data``, then ``gather.end`` with its size, sha256 and
  mode); the data go to ``DIR/.NAME.HOST.part`` through a :class:`~plush.controller.diskwriter.DiskWriter`
  (no file I/O on the event loop; bounded memory), and only a file whose size and sha256 are the announced
  ones is renamed ``DIR/NAME.HOST`` (``NAME``: the base name of the remote path), with the host's permission
  bits (never setuid, setgid or sticky).

Paths on hosts are relative to each host's exec directory and judged by
:func:`~plush.spec.paths.host_path_problem` here (refused before anything is sent: ExecError, exit 2) and by
the agent again (which follows no symbolic link: :mod:`plush.agent.filecopy`).

Invariants: each selected host ends in exactly one of the result's ``results`` (ok or failed), ``timed_out``
or ``unreachable``; a gathered file exists under its final name only when its checksum matched; every task
and partial file of a request ends with the request (streams cancelled, ``.part`` files removed).

Size: about 430 lines, kept whole: copy and gather share the selection, the per-request state, the streaming
tasks and their clean-up, and the relay's offers (:mod:`plush.controller.relayplan` holds its pure plan).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Protocol

from plush.controller.copyresult import FileOutcome, TransferResult
from plush.controller.diskwriter import DiskWriter
from plush.controller.execs import DEFAULT_TIMEOUT, ExecError, ExecMesh, ExecTable, route
from plush.controller.relayplan import DEFAULT_FANOUT, Direct, RelayPlan, peer_network
from plush.fabric.tls import CA, issue_server_cert
from plush.protocol.messages import Message
from plush.protocol.secret import Secret
from plush.resources.hostset import natural_key
from plush.spec.paths import host_path_problem

if TYPE_CHECKING:
    from plush.resources.host import Pool

__all__ = [
    "CHUNK",
    "DEFAULT_TRANSFER_TIMEOUT",
    "REPLIES",
    "Transfers",
    "check_request",
    "run_copy",
    "run_gather",
]

#: bytes of a ``copy.data`` chunk (1 MiB: copies to 8 cluster hosts took ~0.75 s instead of ~1.05 s with 256 KiB,
#: the per-frame costs of the SSH channel halved)
CHUNK = 1024 * 1024
#: the name in the relay certificate (children check it: :data:`plush.agent.peers.RELAY_NAME`)
RELAY_NAME = "plush-relay"
#: seconds without data after which a relayed host leaves its parent for the next source
RELAY_SILENCE = 10.0
#: seconds each host has to complete a copy or a gather by default
DEFAULT_TRANSFER_TIMEOUT = 5 * DEFAULT_TIMEOUT
#: the agents' messages :meth:`Transfers.message` takes
REPLIES = frozenset({"copy.fetch", "copy.result", "gather.data", "gather.end"})


@dataclass(eq=False)
class _Copy:
    source: Path
    size: int
    plan: RelayPlan | None = None
    streams: set[asyncio.Task[None]] = field(default_factory=set)


@dataclass(eq=False)
class _Incoming:
    """One host's gathered file being written."""

    handle: int
    part: Path
    digest: Any = field(default_factory=hashlib.sha256)
    size: int = 0
    error: str | None = None


@dataclass(eq=False)
class _Gather:
    outdir: Path
    base: str
    writer: DiskWriter
    files: dict[str, _Incoming] = field(default_factory=dict)


class Transfers:
    """The file side of the ``copy`` and ``gather`` requests in progress on a mesh (see the module)."""

    def __init__(self, execs: ExecTable, *, fanout: int = DEFAULT_FANOUT) -> None:
        self.execs = execs
        self.fanout = fanout
        #: the mesh's CA (set when its listener starts): relayed copies need it
        self.ca: CA | None = None
        self._relay_cert: tuple[str, str] | None = None
        self.copies: dict[int, _Copy] = {}
        self.gathers: dict[int, _Gather] = {}
        self._counts = {"bytes_streamed": 0, "told_peers": 0, "asked_again": 0}

    def statistics(self) -> dict[str, int]:
        """Since the mesh started: bytes of copies the controller streamed, hosts told to fetch from peers
        (``copy.peers``), asks again after the peers failed (``copy.fetch`` with ``offset``)."""
        return dict(self._counts)

    def relay_cert(self) -> tuple[str, str] | None:
        """The relay certificate and key (PEM), issued once by the mesh's CA; None without a CA."""
        if self._relay_cert is None and self.ca is not None:
            cert, key = issue_server_cert(self.ca, (RELAY_NAME,))
            self._relay_cert = (cert.decode("ascii"), key.decode("ascii"))
        return self._relay_cert

    def message(self, name: str, msg: Message) -> None:
        """A message of :data:`REPLIES` from ``name``'s agent (one for a request it no longer waits for is
        dropped)."""
        req = int(msg["req"])
        if not self.execs.expects(req, name):
            return
        t = msg.type
        if t == "copy.fetch" and req in self.copies:
            job = self.copies[req]
            port, offset = msg.get("port"), int(msg.get("offset") or 0)
            self._counts["asked_again"] += "offset" in msg.fields
            step = job.plan.fetch(name, port, offset) if job.plan is not None else Direct(name, offset)
            if not isinstance(step, Direct):
                self.execs.links.send(name, Message.of("copy.peers", req=req, sources=[list(s) for s in step.sources]))
                self._counts["told_peers"] += 1
                return
            task = asyncio.get_running_loop().create_task(self._stream(req, name, job.source, step.offset))
            job.streams.add(task)
            task.add_done_callback(job.streams.discard)
        elif t == "copy.result" and req in self.copies:
            outcome = FileOutcome(name, msg["ok"], msg.get("reason") or "", msg["cached"], self.copies[req].size)
            self.execs.settle(req, name, outcome)
        elif t == "gather.data" and req in self.gathers:
            self._data(self.gathers[req], name, msg.payload or b"")
        elif t == "gather.end" and req in self.gathers:
            self._end(req, self.gathers[req], name, msg)

    async def _stream(self, req: int, name: str, source: Path, offset: int = 0) -> None:
        """Send ``source`` (from ``offset``) to ``name``'s agent: chunks read in a thread, written as the link
        drains."""
        links = self.execs.links
        peer = links.peer(name)
        if peer is None:
            return
        try:
            fh = await asyncio.to_thread(source.open, "rb")
            try:
                fh.seek(offset)
                while chunk := await asyncio.to_thread(fh.read, CHUNK):
                    links.send(name, Message.binary("copy.data", chunk, req=req))
                    self._counts["bytes_streamed"] += len(chunk)
                    await peer.drain()
            finally:
                fh.close()
        except OSError as exc:
            links.send(name, Message.of("copy.end", req=req, error=f"cannot read {source}: {exc.strerror or exc}"))
            return
        except ConnectionError:
            return  # the host is unreachable: its lifecycle says so
        links.send(name, Message.of("copy.end", req=req))

    # --- gather ---------------------------------------------------------------------------------------------

    def _open(self, job: _Gather, name: str) -> _Incoming:
        part = job.outdir / f".{job.base}.{name}.part"
        incoming = _Incoming(0, part)

        def opener() -> BinaryIO:
            return part.open("wb")

        def failed(exc: Exception) -> None:
            incoming.error = f"cannot write {part}: {getattr(exc, 'strerror', None) or exc}"

        incoming.handle = job.writer.open(part, opener, failed)
        job.files[name] = incoming
        return incoming

    def _data(self, job: _Gather, name: str, data: bytes) -> None:
        incoming = job.files.get(name) or self._open(job, name)
        incoming.digest.update(data)
        incoming.size += len(data)
        job.writer.write(incoming.handle, data)

    def _end(self, req: int, job: _Gather, name: str, msg: Message) -> None:
        if not msg["ok"]:
            self.discard(job, name)
            self.execs.settle(req, name, FileOutcome(name, False, msg.get("reason") or "failed"))
            return
        incoming = job.files.pop(name, None) or self._open(job, name)
        job.files.pop(name, None)
        size, sha = msg.get("size"), msg.get("sha256")
        if (size, sha) != (incoming.size, incoming.digest.hexdigest()):
            job.writer.close_file(incoming.handle, then=_unlink)
            why = f"the file arrived corrupted ({incoming.size} bytes, sha256 not the one the host sent)"
            self.execs.settle(req, name, FileOutcome(name, False, why))
            return
        final = job.outdir / f"{job.base}.{name}"
        mode = int(msg.get("mode", 0o644)) & 0o777

        def into_place(part: Path) -> None:
            os.chmod(part, mode & ~(stat.S_ISUID | stat.S_ISGID | stat.S_ISVTX))
            os.replace(part, final)

        def settled(ok: bool) -> None:
            outcome = FileOutcome(name, True, size=incoming.size, path=str(final))
            if not ok:
                outcome = FileOutcome(name, False, incoming.error or f"cannot write {final}")
            self.execs.settle(req, name, outcome)

        job.writer.close_file(incoming.handle, then=into_place, after=settled)

    def discard(self, job: _Gather, name: str) -> None:
        """Drop ``name``'s file of ``job`` being written (its ``.part`` removed)."""
        incoming = job.files.pop(name, None)
        if incoming is not None:
            job.writer.close_file(incoming.handle, then=_unlink)


def _unlink(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def _host_path(text: str, what: str) -> str:
    problem = host_path_problem(text)
    if problem is not None:
        raise ExecError(f"{what} {text!r}: {problem} (a path relative to each host's exec directory)")
    return text


def check_request(op: str, args: dict[str, Any]) -> None:
    """ExecError when the host path of ``op``'s arguments (``dest`` of a copy, ``path`` of a gather) is refused,
    or a copy's ``source`` is not a readable regular file: what a cold command checks before starting agents."""
    if op == "copy":
        _host_path(args["dest"], "destination")
        _digest(Path(args["source"]))
    else:
        _host_path(args["path"], "remote path")


def _digest(path: Path) -> tuple[str, int, int]:
    """sha256, size and permission bits of the regular file ``path`` (ExecError when it cannot be read)."""
    digest = hashlib.sha256()
    try:
        with path.open("rb") as fh:
            st = os.fstat(fh.fileno())
            if not stat.S_ISREG(st.st_mode):
                raise ExecError(f"{path} is not a regular file")
            while chunk := fh.read(1 << 20):
                digest.update(chunk)
    except OSError as exc:
        raise ExecError(f"cannot read {path}: {exc.strerror or exc}") from None
    return digest.hexdigest(), st.st_size, stat.S_IMODE(st.st_mode) & 0o777


def _make_dir(path: Path) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ExecError(f"cannot make {path}: {exc.strerror or exc}") from None


class TransferMesh(ExecMesh, Protocol):
    """What a transfer asks of the mesh (:class:`~plush.controller.mesh.Mesh` is one): a request's table and
    the transfers in progress."""

    @property
    def transfers(self) -> Transfers: ...


async def _request(
    mesh: TransferMesh | None,
    op: str,
    msg: Message | None,
    routed: tuple[list[str], list[str], list[str], dict[str, str]],
    timeout: float,
    join_timeout: float,
) -> TransferResult:
    names, send, wait, unreachable = routed
    loop = asyncio.get_running_loop()
    started = loop.time()
    results: dict[str, Any] = {}
    timed_out: list[str] = []
    if mesh is not None and msg is not None and (send or wait):
        results, timed_out, unreachable = await mesh.execs.request(
            msg, send, wait, unreachable, reply_timeout=timeout, join_timeout=join_timeout
        )
    return TransferResult(
        op,
        names,
        dict(sorted(results.items(), key=lambda kv: natural_key(kv[0]))),
        sorted(timed_out, key=natural_key),
        sorted(unreachable, key=natural_key),
        unreachable,
        timeout,
        loop.time() - started,
    )


def _checked_timeout(timeout: float) -> float:
    if not timeout > 0:
        raise ExecError(f"the timeout must be a positive number of seconds, not {timeout!r}")
    return timeout


async def run_copy(
    mesh: TransferMesh | None,
    pool: Pool,
    source: str | Path,
    dest: str,
    *,
    hosts: str | Iterable[str] | None = None,
    group: str | None = None,
    exclude: str | Iterable[str] | None = None,
    timeout: float = DEFAULT_TRANSFER_TIMEOUT,
    join_timeout: float = 30.0,
) -> TransferResult:
    """Copy the local file ``source`` to ``dest`` in each selected host's exec directory; see
    :meth:`plush.Controller.copy`."""
    _checked_timeout(timeout)
    _host_path(dest, "destination")
    path = Path(source)
    sha, size, mode = await asyncio.to_thread(_digest, path)
    routed = route(mesh, pool, hosts, group, exclude)
    if mesh is None:
        return await _request(None, "copy", None, routed, timeout, join_timeout)
    req = mesh.execs.next_req()
    job = _Copy(path, size)
    fields: dict[str, Any] = {}
    relay = _relay(mesh, pool, routed[1] + routed[2], timeout)
    if relay is not None:
        job.plan, fields["relay"] = relay
    mesh.transfers.copies[req] = job
    msg = Message.of("copy", req=req, dest=dest, sha256=sha, size=size, mode=mode, **fields)
    try:
        return await _request(mesh, "copy", msg, routed, timeout, join_timeout)
    finally:
        del mesh.transfers.copies[req]
        for task in job.streams:
            task.cancel()
        await asyncio.gather(*job.streams, return_exceptions=True)


def _relay(mesh: TransferMesh, pool: Pool, names: list[str], timeout: float) -> tuple[RelayPlan, dict[str, Any]] | None:
    """The relay tree of a copy to ``names`` and the ``relay`` field of its message, when at least two of them
    share a peer network (and the mesh relays: ``relay_fanout`` > 0, a CA); else None."""
    transfers = mesh.transfers
    launcher = transfers.execs.links.launcher
    if transfers.fanout == 0 or launcher is None:
        return None
    networks: dict[str, str | None] = {}
    for name in names:
        host = pool.get(name)
        member = mesh.members.get(name)
        host = host if host is not None else member.host if member is not None else None
        networks[name] = peer_network(host) if host is not None else None
    relayed = [n for n, net in networks.items() if net is not None]
    if len(relayed) < 2 or len({networks[n] for n in relayed}) == len(relayed):
        return None  # nobody to fetch from
    cert = transfers.relay_cert()
    if cert is None:
        return None
    addresses = {name: launcher.address(name) for name in relayed}
    plan = RelayPlan(transfers.fanout, networks, addresses)
    token = Secret.generate().reveal()
    field = {
        "token": token,
        "ca": transfers.ca.cert_pem.decode("ascii") if transfers.ca is not None else "",
        "cert": cert[0],
        "key": cert[1],
        "hosts": relayed,
        "timeout": timeout,
        "silence": RELAY_SILENCE,
    }
    return plan, field


async def run_gather(
    mesh: TransferMesh | None,
    pool: Pool,
    path: str,
    outdir: str | Path,
    *,
    hosts: str | Iterable[str] | None = None,
    group: str | None = None,
    exclude: str | Iterable[str] | None = None,
    timeout: float = DEFAULT_TRANSFER_TIMEOUT,
    join_timeout: float = 30.0,
) -> TransferResult:
    """Bring ``path`` (in each selected host's exec directory) into ``outdir`` as ``NAME.HOST``; see
    :meth:`plush.Controller.gather`."""
    _checked_timeout(timeout)
    _host_path(path, "remote path")
    directory = Path(outdir)
    await asyncio.to_thread(_make_dir, directory)
    routed = route(mesh, pool, hosts, group, exclude)
    if mesh is None:
        return await _request(None, "gather", None, routed, timeout, join_timeout)
    req = mesh.execs.next_req()
    job = _Gather(directory, path.rsplit("/", 1)[-1], DiskWriter())
    mesh.transfers.gathers[req] = job
    try:
        return await _request(mesh, "gather", Message.of("gather", req=req, path=path), routed, timeout, join_timeout)
    finally:
        del mesh.transfers.gathers[req]
        for name in list(job.files):  # timed out or unreachable mid-file: no partial file is left
            mesh.transfers.discard(job, name)
        await job.writer.close()
