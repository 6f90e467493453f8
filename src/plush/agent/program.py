"""The host program: what one host executes of its component block, block by block.

Theory of operation. A host runs one component block: a DAG of process, barrier and workflow blocks
(predecessor edges between siblings). :class:`HostProgram` starts every block whose predecessors have
completed, each in its own task, and reports each block's state through its :class:`Uplink`:

- a **process block** runs its processes in parallel; each process is started as instance 1, 2, ... Its
  exits go through the exit policies (:func:`plush.processes.policy.decide`): ``restart_process`` restarts it
  on this host after a back-off, ``ignore`` counts it as done, ``abort`` / ``restart_application`` fail the
  block and the program (the controller decides what happens next). A liveness monitor kills a hung process
  tree; the exit then counts as a signal exit. When all processes are done the block's ``outputs`` are
  uploaded (never through a symbolic link: :mod:`plush.agent.outputs`) and the block completes. The outputs
  of a process block that started but did not complete (stopped, or failed) are uploaded by
  :meth:`HostProgram.upload_unsent` once the program has ended, when the run stops (the agent calls it on
  the controller's ``stop``). The operator's ``restart`` (:meth:`HostProgram.restart`) stops the running
  processes under a block path and starts each again at once as its next instance, whatever its exit
  policies say (its exit is reported with ``restart_process``, rule :data:`OPERATOR_RULE`), and gives it
  its restart budget afresh.
- a **barrier block** asks the controller to enter and waits for the release. A **semaphore** waits for
  admission and gives its place back when its ``until`` block completes (or the program ends).
- a **workflow block** takes items from the controller until there are none left; each item's data file is
  fetched into the working directory and the task runs with the file's base name appended as last argument.

A failed block stops the program: blocks running are left to finish or be stopped by the controller, no new
block starts, and :meth:`HostProgram.run` returns False. The uplink is the only way out of this module, so
the program runs the same over TLS, SSH stdio, or an in-memory test link. Standard library only, Python 3.8.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
from typing import Any, BinaryIO, Dict, List, Mapping, Optional, Sequence, Set

from plush.agent.outputs import collect, open_contained
from plush.processes.liveness import watch_liveness_model
from plush.processes.policy import STOPPED, SUCCESS, UNHANDLED, Backoff, ExitStatus, decide
from plush.processes.runner import ProcessRunner, ProcessStartError
from plush.protocol.messages import data_key
from plush.spec.model import BarrierBlock, Block, ComponentBlock, Process, ProcessBlock, WorkflowBlock
from plush.spec.paths import BlockPath

__all__ = ["OPERATOR_RULE", "BlockFailed", "HostProgram", "Uplink"]

log = logging.getLogger(__name__)

#: the rule reported with the exit of a process the operator restarted (the ``restart`` message)
OPERATOR_RULE = "restarted by the operator"


class Uplink:
    """What a host program needs from its controller. The agent's link implements it over the wire."""

    async def block_state(self, path: str, state: str, **fields: Any) -> None:
        raise NotImplementedError

    async def process_started(self, path: str, instance: int, pid: int) -> None:
        raise NotImplementedError

    async def process_exited(self, path: str, instance: int, status: ExitStatus, **fields: Any) -> None:
        raise NotImplementedError

    async def output(self, path: str, instance: int, stream: str, data: bytes) -> None:
        raise NotImplementedError

    async def enter_barrier(self, name: str, path: str) -> None:
        """Until the controller releases (or admits, for a semaphore) this host at barrier ``name``."""
        raise NotImplementedError

    async def leave_barrier(self, name: str) -> None:
        raise NotImplementedError

    async def next_work(self, path: str) -> Optional[str]:
        """The next workflow item for this host, or None when the queue is finished."""
        raise NotImplementedError

    async def work_done(self, path: str, item: str, ok: bool) -> None:
        raise NotImplementedError

    async def fetch(self, key: str, dest: str) -> None:
        """Fetch a file the controller knows by ``key`` (a package path, a workflow item) to ``dest``."""
        raise NotImplementedError

    async def upload(self, path: str, name: str, source: BinaryIO, mode: int) -> None:
        """Send the open file ``source`` of this host back to the controller as output ``name`` of block
        ``path``, with its permission bits ``mode`` (the controller keeps them or narrows them)."""
        raise NotImplementedError


class BlockFailed(Exception):
    """A block failed: ``action`` is what the exit policies decided (abort or restart_application)."""

    def __init__(self, path: str, action: str, reason: str) -> None:
        super().__init__("{}: {} ({})".format(path, reason, action))
        self.path = path
        self.action = action
        self.reason = reason


class HostProgram:
    """Runs one component block on this host. :meth:`run` returns True when every block completed."""

    def __init__(
        self,
        app_name: str,
        cblock: ComponentBlock,
        *,
        workdir: str,
        env: Mapping[str, str],
        uplink: Uplink,
        runner: ProcessRunner,
        default_action: str = "abort",
        backoff: Optional[Backoff] = None,
        first_instances: Optional[Mapping[str, int]] = None,
        stop_grace: float = 5.0,
    ) -> None:
        self.root = BlockPath.of(app_name, cblock.name)
        self.cblock = cblock
        self.workdir = workdir
        self.env = dict(env)
        self.uplink = uplink
        self.runner = runner
        self.default_action = default_action
        self.backoff = backoff or Backoff()
        #: seconds a stopped process tree gets between SIGTERM and SIGKILL (the ``stop_grace`` setting)
        self.stop_grace = stop_grace
        self.states: Dict[str, str] = {b.name: "waiting" for b in cblock.blocks}
        #: the last instance number of each process path; ``first_instances`` carries a restarted host's or
        #: application's numbers over, so that numbers keep growing across restarts
        self.instances: Dict[str, int] = {str(k): int(v) for k, v in (first_instances or {}).items()}
        self.failure: Optional[BlockFailed] = None
        self._liveness: Dict[str, str] = {}  # process path -> why its liveness check killed it
        self._done: Dict[str, asyncio.Event] = {b.name: asyncio.Event() for b in cblock.blocks}
        self._held: Set[str] = set()  # semaphores this host holds
        #: process blocks (path -> block) started whose outputs were not uploaded yet
        self._unsent: Dict[str, ProcessBlock] = {}
        #: the running instance of each process path (what the operator's ``restart`` stops)
        self._running: Dict[str, Any] = {}
        #: process paths the operator asked to restart, until their exit is seen
        self._restarting: Set[str] = set()
        self._stops: Set["asyncio.Future[Any]"] = set()  # the restarts' stops in progress (kept referenced)

    # --- the DAG ------------------------------------------------------------------------------------

    async def run(self) -> bool:
        tasks = [asyncio.ensure_future(self._run_block(b)) for b in self.cblock.blocks]
        try:
            await asyncio.gather(*tasks)
        except BlockFailed as exc:
            self.failure = exc
            await _cancel_and_wait(tasks)
        except asyncio.CancelledError:
            # gather() passed the cancellation on to every block but gives up at the first one that ends:
            # wait until each has stopped its processes (and reported their exits) before ending
            await asyncio.wait(tasks)
            raise
        except BaseException:
            await _cancel_and_wait(tasks)  # an unexpected error (the link broke): no block runs on
            raise
        finally:
            for name in sorted(self._held):
                await self.uplink.leave_barrier(name)
            self._held.clear()
        return self.failure is None

    async def _run_block(self, block: Block) -> None:
        for pred in block.predecessors:
            await self._done[pred].wait()
        path = str(self.root / block.name)
        self.states[block.name] = "running"
        await self.uplink.block_state(path, "started")
        try:
            if isinstance(block, ProcessBlock):
                await self._run_process_block(path, block, ())
            elif isinstance(block, BarrierBlock):
                await self._run_barrier(path, block)
            elif isinstance(block, WorkflowBlock):
                await self._run_workflow(path, block)
        except BlockFailed as exc:
            self.states[block.name] = "failed"
            await self.uplink.block_state(path, "failed", reason=exc.reason, action=exc.action)
            raise
        self.states[block.name] = "completed"
        await self.uplink.block_state(path, "completed")
        self._done[block.name].set()
        for other in self.cblock.blocks:
            if isinstance(other, BarrierBlock) and other.until == block.name and other.name in self._held:
                self._held.discard(other.name)
                await self.uplink.leave_barrier(other.name)

    # --- barriers -----------------------------------------------------------------------------------

    async def _run_barrier(self, path: str, block: BarrierBlock) -> None:
        await self.uplink.enter_barrier(block.name, path)
        if block.kind == "semaphore":
            self._held.add(block.name)

    # --- workflows ----------------------------------------------------------------------------------

    async def _run_workflow(self, path: str, block: WorkflowBlock) -> None:
        task_path = path + "/" + block.task.name
        while True:
            item = await self.uplink.next_work(path)
            if item is None:
                return
            name = os.path.basename(item)
            await self.uplink.fetch(data_key(item), os.path.join(self.workdir, name))
            try:
                await self._run_process_block(task_path, block.task, (name,))
            except BlockFailed:
                await self.uplink.work_done(path, item, False)
                raise
            await self.uplink.work_done(path, item, True)

    # --- processes ----------------------------------------------------------------------------------

    async def _run_process_block(self, path: str, block: ProcessBlock, extra_args: Any) -> None:
        if block.outputs:
            self._unsent[path] = block
        runs = [asyncio.ensure_future(self._run_process(path, block, p, tuple(extra_args))) for p in block.processes]
        try:
            await asyncio.gather(*runs)
        except asyncio.CancelledError:
            await asyncio.wait(runs)  # each process stops and reports; see run()
            raise
        except BaseException:
            await _cancel_and_wait(runs)
            raise
        self._unsent.pop(path, None)
        await self._upload_outputs(path, block)

    async def _upload_outputs(self, path: str, block: ProcessBlock) -> None:
        """Upload the regular files the block's ``outputs`` match, never through a symbolic link (see
        :mod:`plush.agent.outputs`); a file that cannot be opened so is passed over with a log line."""
        if not block.outputs:
            return
        for name in collect(self.workdir, block.outputs):
            try:
                source, mode = open_contained(self.workdir, name)
            except OSError as exc:
                log.warning("%s: output %r not collected: %s", path, name, exc)
                continue
            with source:
                await self.uplink.upload(path, name, source, mode)

    async def upload_unsent(self) -> None:
        """Upload the outputs of the process blocks that started but did not complete (stopped or failed);
        call it once :meth:`run` has ended. A failed upload is logged and the others go on."""
        while self._unsent:
            path = min(self._unsent)
            block = self._unsent.pop(path)
            try:
                await self._upload_outputs(path, block)
            except (OSError, ValueError) as exc:
                log.warning("%s: outputs not collected: %s", path, exc)

    async def _run_process(self, block_path: str, block: ProcessBlock, proc: Process, extra: Any) -> None:
        path = block_path + "/" + proc.name
        restarts = 0
        model = proc if not extra else dataclasses.replace(proc, args=proc.args + tuple(extra))
        while True:
            instance = self.instances.get(path, 0) + 1
            self.instances[path] = instance
            status = await self._run_instance(path, block, model, instance)
            if path in self._restarting:  # the operator's restart: whatever the policies say, at once
                self._restarting.discard(path)
                self._liveness.pop(path, None)
                await self.uplink.process_exited(path, instance, status, action="restart_process", rule=OPERATOR_RULE)
                restarts = 0
                continue
            decision = decide(block.exit_policies, status, restarts, self.default_action)
            extra = {"liveness": self._liveness.pop(path)} if path in self._liveness else {}
            await self.uplink.process_exited(
                path, instance, status, action=decision.action, rule=decision.rule, **extra
            )
            if decision.completes_block:
                return
            if decision.action == "restart_process":
                delay = self.backoff.delay(restarts)
                restarts += 1
                await asyncio.sleep(delay)
                continue
            raise BlockFailed(path, decision.action, "{} ({})".format(status, decision.rule))

    async def _run_instance(self, path: str, block: ProcessBlock, proc: Process, instance: int) -> ExitStatus:
        async def sink(stream: str, data: bytes) -> None:
            await self.uplink.output(path, instance, stream, data)

        env = dict(self.env)
        env["PLUSH_BLOCK"] = path
        env["PLUSH_INSTANCE"] = str(instance)
        try:
            handle = await self.runner.start_model(proc, self.workdir, sink=sink, extra_env=env, append=instance > 1)
        except ProcessStartError as exc:
            await self.uplink.output(path, instance, "stderr", (str(exc) + "\n").encode())
            return ExitStatus(code=127)
        await self.uplink.process_started(path, instance, handle.pid)
        self._running[path] = handle
        watcher = None
        if block.liveness is not None:
            watcher = asyncio.ensure_future(watch_liveness_model(handle, block.liveness))
        try:
            status = await handle.wait()
            reason = handle.kill_reason or ""
            if reason.startswith("liveness"):
                self._liveness[path] = reason  # reported with the exit: the liveness check killed it
            return status
        except asyncio.CancelledError:
            # stopped from outside (the run ends, a sibling failed): the tree is stopped and its exit reported
            # (one report per start), even if this task is cancelled again meanwhile
            await _complete(self._stopped(path, handle, instance))
            raise
        finally:
            self._running.pop(path, None)
            if watcher is not None and not watcher.done():
                watcher.cancel()

    def restart(self, path: str) -> List[str]:
        """The operator's restart of the processes running under block path ``path`` (a component block, a
        block, a workflow's task or one process): each is stopped (SIGTERM, ``stop_grace``, SIGKILL) and
        started again as its next instance, its exit policies and restart budget set aside. Returns the
        process paths restarted (none: nothing of ``path`` runs here now)."""
        prefix = path.rstrip("/") + "/"
        chosen = sorted(p for p in self._running if p == path.rstrip("/") or p.startswith(prefix))
        for proc_path in chosen:
            if proc_path in self._restarting:
                continue
            self._restarting.add(proc_path)
            stop = asyncio.ensure_future(self._running[proc_path].stop(grace=self.stop_grace))
            self._stops.add(stop)
            stop.add_done_callback(self._stops.discard)
        return chosen

    async def _stopped(self, path: str, handle: Any, instance: int) -> None:
        status = await handle.stop(grace=self.stop_grace)
        if handle.kill_reason is None:  # it had exited by itself before the stop reached it: say so
            action, rule = (SUCCESS, "exit code 0 is success") if status.success else (UNHANDLED, _BY_ITSELF)
            await self.uplink.process_exited(path, instance, status, action=action, rule=rule)
            return
        await self.uplink.process_exited(path, instance, status, action=STOPPED, rule="stopped by plush")


_BY_ITSELF = "exited by itself while its block was being stopped"


async def _cancel_and_wait(tasks: "Sequence[asyncio.Future[Any]]") -> None:
    for task in tasks:
        if not task.done():
            task.cancel()
    if tasks:
        await asyncio.wait(tasks)


async def _complete(coro: Any) -> None:
    """Run the clean-up ``coro`` to its end although the calling task may be cancelled (again) meanwhile.

    Its own failure is logged, not raised: the caller is propagating a cancellation that must stay one.
    """
    fut = asyncio.ensure_future(coro)
    while True:
        try:
            await asyncio.shield(fut)
            return
        except asyncio.CancelledError:
            if fut.cancelled():
                raise
        except Exception:
            log.exception("clean-up failed")
            return
