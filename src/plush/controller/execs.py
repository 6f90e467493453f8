"""The distributed shell on the controller: one command on many connected hosts (:meth:`plush.Controller.exec`).

Role. A warm fast path beside the application runs: one ``exec`` request per host, encoded once and written to
every host's link in the same loop turn, one ``exec.result`` reply per host (docs/protocol.md); no journal
row, no event, no file per command. Three parts:

- :func:`select_hosts` (pure): which hosts a command goes to -- ``hosts`` (a host set, ``-w``), ``group``
  (``-g``: the hosts of a resource group), both (their union) or neither (every host of the mesh but those
  disconnected on purpose), less ``exclude`` (``-x``);
- :class:`ExecTable`, owned by the :class:`~plush.controller.mesh.Mesh`: the requests in progress. The mesh
  hands it every ``exec.result`` (:meth:`ExecTable.answered`) and every move of a host's lifecycle
  (:meth:`ExecTable.moved`): a host whose agent joins gets the requests that waited for it; a host that
  leaves the connected states (its agent died, its link broke, it was disconnected) is *unreachable* for
  every request it had not answered (an ``exec.result`` is not numbered: a reply lost with its link is never
  replayed). The file transfers of :mod:`plush.controller.transfers` (``plush copy``, ``plush gather``) are
  requests of the same table (:meth:`ExecTable.request`, their answers given by :meth:`ExecTable.settle`);
- :func:`run_exec`: the call itself. A selected host whose agent is connected -- idle or in a run: an exec
  runs beside the application and does not touch it -- gets the request now; one still connecting is waited
  for up to ``join_timeout`` (then it gets the request); any other is unreachable at once. A host that sent
  no reply within the command's timeout plus :data:`REPLY_MARGIN` is *timed out* (its agent kills the
  command at the timeout and says so in its reply, with what the command wrote before: timed out too).

Invariants: a request's id is unique per mesh; each selected host ends in exactly one of ``results`` (answered,
maybe ``timed_out``), ``timed_out`` without a reply, or ``unreachable``; :func:`run_exec` returns once every
host did, and never later than the latest of its deadlines; the pump never waits and never calls user code
(``on_result`` runs in the caller's task).
"""

from __future__ import annotations

import asyncio
import contextlib
import shlex
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from plush.controller.gather import ExecResult, HostOutput
from plush.controller.lifecycle import CONNECTED, CONNECTING, GONE, POOLED
from plush.errors import PlushError, ProtocolError
from plush.protocol.framing import encode
from plush.protocol.messages import Message, validate
from plush.resources.host import Host
from plush.resources.hostset import HostSet, natural_key

if TYPE_CHECKING:
    from plush.controller.links import Links
    from plush.resources.host import Pool

__all__ = [
    "DEFAULT_TIMEOUT",
    "EXEC_LIMIT",
    "MAX_EXEC_LIMIT",
    "REPLY_MARGIN",
    "ExecError",
    "ExecMesh",
    "ExecTable",
    "command_argv",
    "route",
    "run_exec",
    "select_hosts",
]

#: seconds a command may run by default before its agent kills it
DEFAULT_TIMEOUT = 60.0
#: bytes of each stream (stdout, stderr) a reply carries by default; the rest is dropped (``truncated``)
EXEC_LIMIT = 64 * 1024
#: the most bytes of each stream a reply may carry: both fit in one frame (the protocol's 16 MiB)
MAX_EXEC_LIMIT = 7 * 1024 * 1024
#: seconds beyond a command's timeout that the controller waits for its host's reply
REPLY_MARGIN = 5.0

OnResult = Callable[[HostOutput], None]


class ExecError(PlushError):
    """``plush exec`` cannot be carried out as asked: no command, no host selected, a host set naming hosts
    the controller does not know."""

    exit_code = 2


def command_argv(cmd: str | Sequence[str], shell: bool) -> list[str]:
    """The argv an agent runs: ``cmd`` as is (a string is split as a shell would, never run by one), or, with
    ``shell``, ``sh -c`` and the command as one string (a list's words joined by spaces)."""
    if shell:
        text = cmd if isinstance(cmd, str) else " ".join(cmd)
        if not text.strip():
            raise ExecError("no command to run")
        return ["/bin/sh", "-c", text]
    if isinstance(cmd, str):
        try:
            argv = shlex.split(cmd)
        except ValueError as exc:
            raise ExecError(f"cannot split {cmd!r} into arguments: {exc}") from None
    else:
        argv = [str(a) for a in cmd]
    if not argv:
        raise ExecError("no command to run")
    return argv


def select_hosts(
    known: Mapping[str, Host],
    default: Iterable[str],
    hosts: str | Iterable[str] | None = None,
    group: str | None = None,
    exclude: str | Iterable[str] | None = None,
) -> list[str]:
    """The hosts a command goes to, in natural order: those of ``hosts`` (a host set text or names, each a
    host of ``known``) and of resource ``group``; neither given: ``default``; less ``exclude``. Raises
    ExecError when a name is unknown or nothing is left."""
    chosen: set[str] = set()
    if hosts is not None:
        wanted = HostSet.parse(hosts) if isinstance(hosts, str) else HostSet(hosts)
        unknown = [n for n in wanted if n not in known]
        if unknown:
            raise ExecError(f"no host named {HostSet(unknown)} here (the hosts: {HostSet(known) or 'none'})")
        chosen.update(wanted)
    if group is not None:
        members = [n for n, h in known.items() if h.group == group]
        if not members:
            raise ExecError(f"no host of group {group!r} here")
        chosen.update(members)
    if hosts is None and group is None:
        chosen.update(default)
    if exclude is not None:
        chosen.difference_update(HostSet.parse(exclude) if isinstance(exclude, str) else HostSet(exclude))
    if not chosen:
        raise ExecError("no host selected (none is connected, or -x excluded them all)")
    return sorted(chosen, key=natural_key)


class _Exec:
    """One request in progress: who was sent it (and until when they may answer), who waits to join."""

    def __init__(self, msg: Message, frame: bytes, reply_timeout: float, on_result: OnResult | None) -> None:
        self.msg = msg
        self.frame = frame
        self.reply_timeout = reply_timeout
        self.on_result = on_result
        self.pending: dict[str, float] = {}  # sent: host -> reply deadline
        self.waiting: dict[str, float] = {}  # connecting: host -> join deadline
        self.results: dict[str, Any] = {}
        self.fresh: list[Any] = []  # answered, not yet handed to on_result
        self.timed_out: list[str] = []
        self.unreachable: dict[str, str] = {}
        self.wake = asyncio.Event()

    def settle(self) -> None:
        if self.fresh or not (self.pending or self.waiting):
            self.wake.set()


class ExecTable:
    """The requests in progress on a mesh: ``exec``, and the file transfers of
    :mod:`plush.controller.transfers` (see the module docstring)."""

    def __init__(self, links: Links) -> None:
        self.links = links
        self._execs: dict[int, _Exec] = {}
        self._next = 0

    def __len__(self) -> int:
        return len(self._execs)

    def next_req(self) -> int:
        """A new request number, unique on this mesh."""
        self._next += 1
        return self._next

    def expects(self, req: int, name: str) -> bool:
        """Whether request ``req`` was sent to ``name`` and waits for its answer."""
        ex = self._execs.get(req)
        return ex is not None and name in ex.pending

    def answered(self, name: str, msg: Message) -> None:
        """An ``exec.result`` from ``name``'s agent (a late or unknown one is dropped)."""
        data = msg.payload or b""
        out = int(msg["out"])
        result = HostOutput(
            name,
            msg["code"],
            msg["signal"],
            data[:out],
            data[out:],
            bool(msg["truncated"]),
            bool(msg["timed_out"]),
            float(msg["duration"]),
        )
        self.settle(int(msg["req"]), name, result, timed_out=result.timed_out)

    def settle(self, req: int, name: str, result: Any, *, timed_out: bool = False) -> None:
        """``name``'s answer to request ``req`` (dropped when late or unknown)."""
        ex = self._execs.get(req)
        if ex is None or ex.pending.pop(name, None) is None:
            return
        ex.results[name] = result
        if timed_out:
            ex.timed_out.append(name)
        if ex.on_result is not None:
            ex.fresh.append(result)
        ex.settle()

    def moved(self, name: str, connected: bool, reason: str = "") -> None:
        """``name``'s lifecycle moved: into a connected state (``connected``: requests waiting for it are
        sent) or out of them, not to connect again (``reason``: its requests not answered are lost)."""
        for ex in self._execs.values():
            if connected:
                if ex.waiting.pop(name, None) is not None:
                    self._send(ex, name, asyncio.get_running_loop().time())
                    ex.settle()
            elif ex.pending.pop(name, None) is not None or ex.waiting.pop(name, None) is not None:
                ex.unreachable[name] = reason or "its agent is gone"
                ex.settle()

    def _send(self, ex: _Exec, name: str, now: float) -> None:
        link = self.links.links.get(name)
        if link is None or not link.up:
            ex.unreachable[name] = "its link is down"
            return
        try:
            self.links.send_frame(name, ex.frame, ex.msg)
        except (ConnectionError, ProtocolError) as exc:
            ex.unreachable[name] = f"cannot send to its agent: {exc}"
            return
        ex.pending[name] = now + ex.reply_timeout

    async def run(
        self,
        argv: list[str],
        send: Sequence[str],
        wait: Sequence[str],
        unreachable: Mapping[str, str],
        *,
        timeout: float,
        limit: int,
        join_timeout: float,
        on_result: OnResult | None = None,
    ) -> tuple[dict[str, HostOutput], list[str], dict[str, str]]:
        """Send ``argv`` to the hosts of ``send`` now and to those of ``wait`` once they joined (within
        ``join_timeout``); the replies, the hosts timed out without one, the unreachable hosts and why."""
        req = self.next_req()
        msg = Message.of("exec", req=req, argv=argv, timeout=timeout, limit=limit)
        return await self.request(
            msg,
            send,
            wait,
            unreachable,
            reply_timeout=timeout + REPLY_MARGIN,
            join_timeout=join_timeout,
            on_result=on_result,
        )

    async def request(
        self,
        msg: Message,
        send: Sequence[str],
        wait: Sequence[str],
        unreachable: Mapping[str, str],
        *,
        reply_timeout: float,
        join_timeout: float,
        on_result: Callable[[Any], None] | None = None,
    ) -> tuple[dict[str, Any], list[str], dict[str, str]]:
        """Send request ``msg`` (its ``req`` from :meth:`next_req`) as :meth:`run` does; each host's answer is
        what :meth:`settle` is given for it, within ``reply_timeout`` seconds of its sending."""
        loop = asyncio.get_running_loop()
        req = int(msg["req"])
        validate(msg)
        ex = _Exec(msg, encode(msg), reply_timeout, on_result)
        ex.unreachable.update(unreachable)
        now = loop.time()
        for name in send:
            self._send(ex, name, now)
        ex.waiting = dict.fromkeys(wait, now + join_timeout)
        self._execs[req] = ex
        try:
            while ex.pending or ex.waiting or ex.fresh:
                fresh, ex.fresh = ex.fresh, []
                for result in fresh:
                    assert on_result is not None
                    on_result(result)
                now = loop.time()
                for name, deadline in list(ex.pending.items()):
                    if deadline <= now:
                        del ex.pending[name]
                        ex.timed_out.append(name)
                for name, deadline in list(ex.waiting.items()):
                    if deadline <= now:
                        del ex.waiting[name]
                        ex.unreachable[name] = f"its agent did not join within {join_timeout:g}s"
                if not (ex.pending or ex.waiting):
                    continue
                ex.wake.clear()
                nearest = min([*ex.pending.values(), *ex.waiting.values()])
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(ex.wake.wait(), max(0.0, nearest - now))
        finally:
            del self._execs[req]
        return ex.results, ex.timed_out, ex.unreachable


class _Member(Protocol):
    @property
    def host(self) -> Host: ...
    @property
    def state(self) -> str: ...
    @property
    def reason(self) -> str: ...


class ExecMesh(Protocol):
    """What a request asks of the mesh it goes through (:class:`~plush.controller.mesh.Mesh` is one)."""

    @property
    def closed(self) -> bool: ...
    @property
    def members(self) -> Mapping[str, _Member]: ...
    @property
    def execs(self) -> ExecTable: ...


def route(
    mesh: ExecMesh | None,
    pool: Pool,
    hosts: str | Iterable[str] | None,
    group: str | None,
    exclude: str | Iterable[str] | None,
) -> tuple[list[str], list[str], list[str], dict[str, str]]:
    """The hosts a request goes to (:func:`select_hosts` over the mesh's members and the pool), split: every
    one selected, those to send it now (connected), those to wait for (connecting), the unreachable and why."""
    members = mesh.members if mesh is not None and not mesh.closed else {}
    known: dict[str, Host] = {h.name: h for h in pool}
    known.update((n, m.host) for n, m in members.items())
    default = [n for n, m in members.items() if m.state not in (GONE, POOLED)]
    names = select_hosts(known, default, hosts, group, exclude)
    send, wait, unreachable = [], [], {}
    for name in names:
        member = members.get(name)
        state = member.state if member is not None else None
        if member is not None and state in CONNECTED:
            send.append(name)
        elif member is not None and state == CONNECTING:
            wait.append(name)
        elif member is not None and state not in (POOLED, GONE):
            unreachable[name] = member.reason or f"it is {state}"
        else:
            unreachable[name] = "not connected"
    return names, send, wait, unreachable


async def run_exec(
    mesh: ExecMesh | None,
    pool: Pool,
    cmd: str | Sequence[str],
    *,
    hosts: str | Iterable[str] | None = None,
    group: str | None = None,
    exclude: str | Iterable[str] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    shell: bool = False,
    limit: int = EXEC_LIMIT,
    join_timeout: float = 30.0,
    on_result: OnResult | None = None,
) -> ExecResult:
    """Run ``cmd`` on the selected hosts of ``mesh`` (and ``pool``: a pool host never connected is
    unreachable); see :meth:`plush.Controller.exec`."""
    if not timeout > 0:
        raise ExecError(f"the timeout must be a positive number of seconds, not {timeout!r}")
    if not 0 <= limit <= MAX_EXEC_LIMIT:
        raise ExecError(f"the output limit must be 0 to {MAX_EXEC_LIMIT} bytes, not {limit!r}")
    argv = command_argv(cmd, shell)
    names, send, wait, unreachable = route(mesh, pool, hosts, group, exclude)
    loop = asyncio.get_running_loop()
    started = loop.time()
    if mesh is None or (not send and not wait):
        results: dict[str, HostOutput] = {}
        timed_out: list[str] = []
    else:
        results, timed_out, unreachable = await mesh.execs.run(
            argv,
            send,
            wait,
            unreachable,
            timeout=timeout,
            limit=limit,
            join_timeout=join_timeout,
            on_result=on_result,
        )
    return ExecResult(
        names,
        dict(sorted(results.items(), key=lambda kv: natural_key(kv[0]))),
        sorted(timed_out, key=natural_key),
        sorted(unreachable, key=natural_key),
        unreachable,
        timeout,
        loop.time() - started,
    )
