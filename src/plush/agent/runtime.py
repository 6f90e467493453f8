"""The agent's execution runtime: the conversation with the controller after ``prepared``.

Theory of operation. :class:`AgentRuntime` receives the ``prepare`` message (the spec model, this host's
name, component, environment and the packages it may need) and then serves one loop over the link:

- ``go install``: installs the component's software (:mod:`plush.agent.install`), replies ``installed`` or
  ``install.failed``;
- ``go execute``: runs one :class:`~plush.agent.program.HostProgram` per component block of this host's
  component, in parallel; when all have ended, sends ``finished`` with ``ok``;
- answers addressed to a waiting program — ``barrier.release``, ``work.item``/``work.none``, ``file.data``/
  ``file.end``/``file.error`` — resolve the matching future;
- ``reset`` (the application restarts): ends the execution and its process trees, keeps the link and the
  installed software, replies ``reset.done``; the next ``go execute`` numbers instances on from its
  ``instances`` field;
- ``restart`` (the operator's): the processes running under its block path are stopped and started again
  (:meth:`~plush.agent.program.HostProgram.restart`); a ``log`` warning when none runs here;
- ``end`` (the application is over; another may follow on this connection): as ``stop`` below, but the
  runtime stays: it replies ``ended`` and waits for the next ``prepare`` (a new application, a new run id:
  the model, host record and settings are replaced, ``prepared`` replies) or ``stop``;
- ``stop``: stops every process tree (SIGTERM, grace, SIGKILL; each stopped process still reports its
  exit), then every orphan the agent adopted as subreaper, uploads the outputs of the process blocks that
  did not complete (:meth:`~plush.agent.program.HostProgram.upload_unsent`), replies ``stopped`` and returns.

The runtime is also the programs' :class:`~plush.agent.program.Uplink`: every report becomes one message,
process output and uploads travel in binary frames and wait for the channel (backpressure from the
controller, or a full outbox while it is away, reaches the process's pipe).

The channel is normally an :class:`~plush.agent.session.AgentSession`: a broken connection is not the end
(the session reconnects and replays; processes keep running and nothing they write is lost). Only when the
channel itself ends -- the controller stayed away past ``agent_grace`` or rejected the agent -- does the
runtime stop every process and let :class:`~plush.agent.link.LinkClosed` propagate (the agent exits
non-zero; nothing is left behind). Standard library only, Python 3.8.
"""

from __future__ import annotations

import asyncio
import collections
import hashlib
import logging
import os
import signal
from pathlib import Path
from typing import Any, BinaryIO, Deque, Dict, List, Mapping, Optional, Tuple

from plush.agent.cache import ContentCache
from plush.agent.install import InstallError, install_component
from plush.agent.link import Channel, LinkClosed
from plush.agent.pkgrelay import PackageFetches, relay_for
from plush.agent.program import HostProgram, Uplink
from plush.hostmon.sample import sample
from plush.processes.policy import Backoff, ExitStatus
from plush.processes.runner import ProcessRunner
from plush.processes.tree import descendants, enable_subreaper, has_children, reap_all_descendants
from plush.protocol.agentsettings import AgentSettings
from plush.protocol.messages import Message
from plush.spec.model import Project, from_dict

__all__ = ["AgentRuntime", "create_runtime"]

log = logging.getLogger(__name__)

UPLOAD_CHUNK = 256 * 1024
#: seconds that orphans adopted by the agent get between SIGTERM and SIGKILL when the runtime stops
ORPHAN_GRACE = 1.0


class _Fetch:
    """One file being received from the controller."""

    def __init__(self, dest: str) -> None:
        self.dest = dest
        self.file = open(dest, "wb")  # noqa: SIM115 (closed in finish)
        self.digest = hashlib.sha256()
        self.size = 0
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def write(self, data: bytes) -> None:
        self.file.write(data)
        self.digest.update(data)
        self.size += len(data)

    def finish(self, error: Optional[str], size: int = 0, sha256: str = "") -> None:
        self.file.close()
        if error is None and (size != self.size or sha256 != self.digest.hexdigest()):
            error = "file arrived corrupted ({} bytes, expected {})".format(self.size, size)
        if not self.done.done():
            if error is None:
                self.done.set_result(None)
            else:
                self.done.set_exception(InstallError(self.dest, error))


class AgentRuntime(Uplink):
    """Runs this host's part of the application and reports through the link."""

    def __init__(self, host: str, workdir: Path) -> None:
        self.host = host
        self.workdir = workdir
        self.link: Optional[Channel] = None
        self.runner = ProcessRunner()
        self._barriers: Dict[str, asyncio.Future[None]] = {}
        self._work: Dict[str, Deque[asyncio.Future[Optional[str]]]] = {}
        self._fetches: Dict[int, _Fetch] = {}
        self._next_req = 0
        self._tasks: List[asyncio.Future[Any]] = []
        self._executions: List[asyncio.Future[Any]] = []  # ``go execute`` tasks (what ``reset`` ends)
        self._programs: List[HostProgram] = []  # of the current execution: their outputs are collected at stop
        self._packages = PackageFetches(lambda msg: self.link.send(msg) if self.link else None, self._new_req)

    # --- the conversation ---------------------------------------------------------------------------

    async def run(self, link: Channel, prepare: Message) -> None:
        self.link = link
        self._prepare(prepare)
        self.workdir.mkdir(parents=True, exist_ok=True)
        enable_subreaper()  # orphans of our processes re-parent to this agent, so _stop can end them
        monitor = asyncio.ensure_future(self._hostmon(self._settings.hostmon_interval))
        try:
            async for msg in link:
                if msg.type == "stop":
                    monitor.cancel()
                    await self._stop(float(msg["grace"]), collect=True)
                    link.send(Message.of("stopped"))
                    await link.drain()
                    return
                if msg.type == "end":  # the application is over; the agent stays for the next one
                    await self._stop(float(msg["grace"]), collect=True)
                    self._clear()
                    self._send("ended")
                elif msg.type == "prepare":  # the next application on this connection
                    await self._stop(self._settings.stop_grace)
                    self._clear()
                    self._prepare(msg)
                    link.send(Message.of("prepared"))
                else:
                    self._dispatch(msg, self._project, self._host, self._settings)
            raise LinkClosed("the controller went away")
        finally:
            monitor.cancel()
            await self._stop(self._settings.stop_grace)

    def _prepare(self, prepare: Message) -> None:
        """Take the application, this host's record and the settings of a ``prepare``."""
        self._project: Project = from_dict(prepare["spec"])
        self._host: Dict[str, Any] = prepare["host"]
        self._settings = AgentSettings.from_dict(prepare["settings"])

    def _clear(self) -> None:
        """Forget what waited on the ended application (barriers, work requests)."""
        self._barriers.clear()
        self._work.clear()
        self._executions = []

    def _dispatch(self, msg: Message, project: Project, host: Dict[str, Any], settings: AgentSettings) -> None:
        t = msg.type
        if t == "go":
            if msg["stage"] == "install":
                self._spawn(self._install(project, host))
            else:
                seeds = dict(host, instances=msg.get("instances") or {})
                self._spawn(self._execute(project, seeds, settings))
                self._executions.append(self._tasks[-1])
        elif t == "reset":
            self._spawn(self._reset(settings.stop_grace))
        elif t == "restart":  # the operator's: the processes under a block path, started again
            restarted = [p for program in self._programs for p in program.restart(msg["path"])]
            if not restarted:
                self._send(
                    "log", level="warning", text="restart {}: none of its processes runs here".format(msg["path"])
                )
        elif t == "barrier.release":
            fut = self._barriers.get(msg["name"])
            if fut is not None and not fut.done():
                fut.set_result(None)
        elif t in ("work.item", "work.none"):
            waiters = self._work.get(msg["path"])
            if waiters:
                waiters.popleft().set_result(msg["item"] if t == "work.item" else None)
        elif t in ("file.data", "file.end", "file.error", "file.peers") and self._packages.handles(msg["req"]):
            self._packages.serve(msg)  # a package fetch (relayed, or streamed by the controller)
        elif t == "file.data":
            fetch = self._fetches.get(msg["req"])
            if fetch is not None and msg.payload is not None:
                fetch.write(msg.payload)
        elif t in ("file.end", "file.error"):
            fetch = self._fetches.pop(msg["req"], None)
            if fetch is not None:
                if t == "file.end":
                    fetch.finish(None, msg["size"], msg["sha256"])
                else:
                    fetch.finish(msg["reason"])
        else:
            log.debug("ignored %r", t)

    async def _reset(self, grace: float) -> None:
        """``reset`` (the application restarts): end the execution and its processes, keep the link and the
        installed software, answer ``reset.done`` (after every report of the ended execution)."""
        runs, self._executions = self._executions, []
        self._programs = []  # the application restarts: what the ended execution made is not collected
        for task in runs:
            task.cancel()
        if runs:
            await asyncio.wait(runs)
        await self.runner.stop_all(grace)
        self._barriers.clear()
        self._work.clear()
        self._send("reset.done")

    def _spawn(self, coro: Any) -> None:
        self._tasks.append(asyncio.ensure_future(coro))

    async def _stop(self, grace: float, *, collect: bool = False) -> None:
        """End every task and process tree; with ``collect``, then upload the outputs of the blocks that did
        not complete (the controller's ``stop``; not when the controller is gone)."""
        for task in self._tasks:
            if not task.done():
                task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks)
        self._tasks = []
        await self._packages.close()
        await self.runner.stop_all(grace)
        await _end_orphans(min(grace, ORPHAN_GRACE))
        programs, self._programs = self._programs, []
        if collect:
            for program in programs:
                await program.upload_unsent()

    def _send(self, mtype: str, **fields: Any) -> None:
        assert self.link is not None
        self.link.send(Message.of(mtype, **fields))

    async def _install(self, project: Project, host: Dict[str, Any]) -> None:
        relay = host.get("relay")

        async def fetch_package(key: str, info: Mapping[str, Any], cache: ContentCache, sink: Any) -> Tuple[str, Any]:
            own = relay_for(relay, key) if isinstance(relay, dict) else None
            return await self._packages.fetch(key, info, own, cache, sink)  # no relay: the controller streams it

        try:
            names = await install_component(
                project,
                host["component"],
                str(self.workdir),
                self.fetch,
                host.get("packages", {}),
                fetch_package=fetch_package,
            )
        except InstallError as exc:
            self._send("install.failed", software=exc.software, reason=exc.reason)
            return
        self._send("installed", software=names)

    async def _execute(self, project: Project, host: Dict[str, Any], settings: AgentSettings) -> None:
        app = project.application
        env = {str(k): str(v) for k, v in host.get("env", {}).items()}
        backoff = Backoff(initial=settings.restart_backoff_initial, maximum=settings.restart_backoff_max)
        programs = [
            HostProgram(
                app.name,
                cb,
                workdir=str(self.workdir),
                env=env,
                uplink=self,
                runner=self.runner,
                default_action=app.failure_action,
                backoff=backoff,
                first_instances=host.get("instances"),
                stop_grace=settings.stop_grace,
            )
            for cb in app.component_blocks
            if cb.component == host["component"]
        ]
        self._programs = programs
        runs = [asyncio.ensure_future(p.run()) for p in programs]
        try:
            results = await asyncio.gather(*runs)
        except asyncio.CancelledError:
            # a stop: gather() cancelled every program but returns at the first that ends; let each stop
            # its processes and report their exits before the runtime replies ``stopped``
            await asyncio.wait(runs)
            raise
        self._send("finished", ok=all(results))

    async def _hostmon(self, interval: float) -> None:
        while True:
            try:
                self._send("hostmon", sample=sample(str(self.workdir)).to_dict())
            except (OSError, ValueError) as exc:
                log.debug("hostmon: %s", exc)
            await asyncio.sleep(interval)

    # --- Uplink ---------------------------------------------------------------------------------------

    async def block_state(self, path: str, state: str, **fields: Any) -> None:
        extra = {k: v for k, v in fields.items() if k in ("reason", "action") and v is not None}
        self._send("block", path=path, state=state, **extra)

    async def process_started(self, path: str, instance: int, pid: int) -> None:
        self._send("proc.started", path=path, instance=instance, pid=pid)

    async def process_exited(self, path: str, instance: int, status: ExitStatus, **fields: Any) -> None:
        extra = {k: v for k, v in fields.items() if k in ("action", "rule", "liveness") and v}
        self._send("proc.exited", path=path, instance=instance, code=status.code, signal=status.signal, **extra)

    async def output(self, path: str, instance: int, stream: str, data: bytes) -> None:
        assert self.link is not None
        await self.link.send_binary(Message.binary("output", data, path=path, instance=instance, stream=stream))

    async def enter_barrier(self, name: str, path: str) -> None:
        fut = asyncio.get_running_loop().create_future()
        self._barriers[name] = fut
        self._send("barrier.enter", name=name, path=path)
        await fut

    async def leave_barrier(self, name: str) -> None:
        self._send("barrier.leave", name=name)

    async def next_work(self, path: str) -> Optional[str]:
        fut: asyncio.Future[Optional[str]] = asyncio.get_running_loop().create_future()
        self._work.setdefault(path, collections.deque()).append(fut)
        self._send("work.next", path=path)
        return await fut

    async def work_done(self, path: str, item: str, ok: bool) -> None:
        self._send("work.done", path=path, item=item, ok=ok)

    def _new_req(self) -> int:
        self._next_req += 1
        return self._next_req

    async def fetch(self, key: str, dest: str) -> None:
        req = self._new_req()
        fetch = _Fetch(dest)
        self._fetches[req] = fetch
        try:
            self._send("fetch", req=req, key=key)
            await fetch.done
        finally:
            self._fetches.pop(req, None)
            if not fetch.file.closed:
                fetch.file.close()

    async def upload(self, path: str, name: str, source: BinaryIO, mode: int) -> None:
        assert self.link is not None
        digest = hashlib.sha256()
        size = 0
        while True:
            chunk = source.read(UPLOAD_CHUNK)
            if not chunk:
                break
            digest.update(chunk)
            size += len(chunk)
            await self.link.send_binary(Message.binary("upload", chunk, path=path, name=name))
        if size == 0:
            await self.link.send_binary(Message.binary("upload", b"", path=path, name=name))
        self._send("upload.end", path=path, name=name, size=size, sha256=digest.hexdigest(), mode=mode)


async def _end_orphans(grace: float) -> None:
    """End the orphans this agent adopted as subreaper: daemons that left their process tree and dropped
    its tag (a double fork, ``setsid``, an empty environment). SIGTERM, up to ``grace`` seconds, SIGKILL.

    Called once every process tree was stopped, so every live descendant is such an orphan; it must not
    outlive the runtime (the entry point's last-moment sweep can be cut short by the launcher's SIGTERM).
    """
    if not has_children() or not reap_all_descendants(signal.SIGTERM):
        return  # the usual case: nothing adopted, so no /proc walk on the way out
    loop = asyncio.get_running_loop()
    deadline = loop.time() + grace
    while descendants(os.getpid()) and loop.time() < deadline:  # noqa: ASYNC110 (no event for adopted orphans)
        await asyncio.sleep(0.05)
    reap_all_descendants(signal.SIGKILL)


def create_runtime(host: str, workdir: Path) -> AgentRuntime:
    """The plug-in point used by ``python -m plush.agent``."""
    return AgentRuntime(host, workdir)
