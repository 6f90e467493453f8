"""The one public API of the controller: :class:`Controller`, a service that outlives application runs.

Every front end (``plush run``, the terminal, ``plush exec``, the HTTP/XML-RPC API, the web UI) calls this and
nothing else; they are thin faces over these calls, named after the Plush terminal's commands:

- ``load(spec)``: read and validate an application (it becomes the loaded one);
- ``connect(hosts)``: start an agent on each host and wait until it joined (local sandbox hosts: a count, or
  :class:`~plush.resources.host.Host` entries of the ``local`` provider); ``disconnect([host])``;
  ``add_node(host)`` / ``remove_node(name)`` change the pool;
- ``match()``: which connected hosts each component would get (the pure matcher);
- ``run()``: run the loaded application, again and again on the same connected agents (a second run starts
  no agent: its hosts are prepared at once, and stay connected at its end). With no host connected, a run
  connects the local sandbox hosts it needs itself, in its run directory, and disconnects them at its end
  (what ``plush run`` does: load -> run (connect) -> quit);
- ``stop()`` (a requested, normal end), ``abort()`` (a failure), ``fail_host``, ``release_barrier`` steer the
  run in progress; ``subscribe(kinds, hosts, blocks)`` streams events; ``info("nodes"|"mesh"|"control"|
  "app")`` answers with plain data; ``quit()`` stops the run in progress, disconnects every host and ends.

Invariants: at most one application runs at a time; a run's hosts come from the connected hosts through the
matcher (spares first for a replacement), or from a fresh local sandbox; nothing here knows where a host is
(the launcher does) or decides a failure (the run's parts do).

Size: about 430 lines, one method per call of the public API (each a thin call into the mesh, the matcher or
the run engine); the views of ``info`` live in :mod:`plush.controller.info`, runs in :mod:`plush.controller.appruns`.
"""

from __future__ import annotations

import asyncio
import fnmatch
import logging
import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from plush.config import Settings, load_settings
from plush.controller.appruns import RunResult, record_run
from plush.controller.engine import OutputCallback, RunEngine
from plush.controller.events import Event, EventBus, Subscription
from plush.controller.info import app_info, control_info, mesh_info, nodes_info
from plush.controller.mesh import Mesh
from plush.controller.preflight import preflight
from plush.controller.rundir import RESULTS_MODES, RunDir
from plush.controller.runstatus import RunStatus
from plush.errors import PlushError
from plush.launch.base import AgentContact, Launcher
from plush.launch.local import LocalLauncher, SandboxHosts
from plush.resources.host import Host, Pool
from plush.resources.matcher import Matching, match
from plush.resources.sandbox import sandbox_notice
from plush.spec.model import Project

__all__ = ["Controller", "RunResult"]

log = logging.getLogger(__name__)

#: what ``info`` answers about
INFO_TOPICS = ("nodes", "mesh", "control", "app")
#: the ``hosts`` key of ``run``/``match`` that applies to every component (bare ``--hosts N``)
EVERY = "*"


class Controller:
    """One controller: settings, events, the pool, the connected agents and the application run."""

    def __init__(self, settings: Settings | None = None) -> None:
        """``settings``: default, those ``plush`` itself reads (``PLUSH_*`` variables, the settings files)."""
        self.settings = settings if settings is not None else load_settings()[0]
        self.bus = EventBus()
        self.pool = Pool()
        #: the loaded application (``load``)
        self.project: Project | None = None
        #: the connected agents (``connect``); None until the first connect
        self.mesh: Mesh | None = None
        #: the application run in progress, or the last one
        self.engine: RunEngine | None = None
        self.runs = 0
        self._sandbox = SandboxHosts()
        self._idle = asyncio.Event()
        self._idle.set()

    # --- the application ----------------------------------------------------------------------------------

    def load(self, path: str | Path) -> Project:
        """Read and validate a spec (Plush XML or YAML), which becomes the loaded application; raises
        SpecError listing every problem."""
        from plush.spec.load import load_spec

        self.project = load_spec(Path(path))
        return self.project

    def _loaded(self, project: Project | None) -> Project:
        project = project or self.project
        if project is None:
            raise PlushError("no application is loaded (load a spec first)")
        return project

    # --- hosts ------------------------------------------------------------------------------------------------

    def add_node(self, host: Host) -> None:
        """Add ``host`` to the pool (connect it with ``connect([host])``; a run may also use it as a spare)."""
        self.pool.add(host)

    async def remove_node(self, name: str) -> None:
        """Disconnect ``name`` if it is connected and remove it from the pool."""
        await self.disconnect([name])
        self.pool.remove(name)

    async def connect(
        self, hosts: int | Iterable[Host | str] | Pool | None = None, *, workspace: Path | None = None
    ) -> list[str]:
        """Start an agent on each host and wait until each joined (``join_timeout`` from its own start).

        ``hosts``: a number of local sandbox hosts; hosts (:class:`Host` of the ``local`` provider, or names
        of the pool); or None: the sandbox hosts the loaded application needs beyond those connected.
        Returns the names connected; raises :class:`~plush.errors.PlushError` naming each host that did not
        join (those that did stay connected). ``workspace``: where the local launcher keeps the hosts'
        directories (default: a new ``mesh-...`` directory in ``runs_dir``)."""
        chosen = self._hosts_to_connect(hosts)
        mesh = await self._the_mesh(workspace)
        for host in chosen:
            self.pool.add(host)
        failed = await mesh.connect(chosen)
        if failed:
            why = "; ".join(f"{name}: {reason}" for name, reason in sorted(failed.items())[:10])
            raise PlushError(f"{len(failed)} of {len(chosen)} host(s) did not connect: {why}")
        return [h.name for h in chosen]

    def _hosts_to_connect(self, hosts: int | Iterable[Host | str] | Pool | None) -> list[Host]:
        if hosts is None:
            project = self._loaded(None)
            counts = preflight(project, self.settings)
            have = len(self.mesh.joined()) if self.mesh is not None and not self.mesh.closed else 0
            return self._sandbox.take(max(0, sum(counts.values()) - have))
        if isinstance(hosts, int):
            if hosts < 0:
                raise PlushError(f"cannot connect {hosts} hosts")
            return self._sandbox.take(hosts)
        chosen = []
        for each in hosts:
            host = self.pool.get(each) if isinstance(each, str) else each
            if host is None:
                raise PlushError(f"no host named {each!r} in the pool")
            if host.provider != "local":
                raise PlushError(f"host {host.name}: no launcher for {host.provider!r} hosts yet (only local)")
            chosen.append(host)
        return chosen

    async def _the_mesh(self, workspace: Path | None) -> Mesh:
        if self.mesh is not None and not self.mesh.closed:
            return self.mesh
        mesh_id = f"mesh-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"
        dir_mode, file_mode = RESULTS_MODES[self.settings.results_mode]
        if workspace is None:
            workspace = Path(self.settings.runs_dir).resolve() / mesh_id
            workspace.mkdir(parents=True, exist_ok=True, mode=dir_mode)
            os.chmod(workspace, dir_mode)
        workspace = workspace.resolve()
        self.mesh = Mesh(
            self.settings,
            self.bus,
            mesh_id=mesh_id,
            workspace=workspace,
            launcher=self._local_launcher(workspace, dir_mode, file_mode),
        )
        await self.mesh.start()
        return self.mesh

    def _local_launcher(self, workspace: Path, dir_mode: int, file_mode: int) -> Callable[[AgentContact], Launcher]:
        def make(contact: AgentContact) -> Launcher:
            return LocalLauncher(
                workspace, contact, stop_grace=self.settings.stop_grace, dir_mode=dir_mode, file_mode=file_mode
            )

        return make

    async def disconnect(self, hosts: Iterable[str] | None = None) -> None:
        """Stop the agents of ``hosts`` (every connected host when None); refused for a host of the run in
        progress."""
        mesh = self.mesh
        if mesh is None or mesh.closed:
            return
        names = list(hosts) if hosts is not None else list(mesh.members)
        engine = self.engine
        if engine is not None and not engine.finished:
            busy = [n for n in names if n in engine.hosts]
            if busy:
                raise PlushError(f"host(s) {', '.join(busy)} run the application in progress; stop it first")
        await mesh.disconnect(names)

    def match(
        self, project: Project | None = None, hosts: Mapping[str, int] | None = None, seed: int | None = None
    ) -> Matching:
        """Which connected hosts each component of the application would get, and its spares (pure: no host
        is contacted). Raises MatchError (``COMPONENT: need N, ...``) when no matching exists."""
        project = self._loaded(project)
        connected = self.mesh.joined() if self.mesh is not None and not self.mesh.closed else []
        return _match(project, connected, hosts or {}, seed)

    # --- the run ------------------------------------------------------------------------------------------------

    async def run(
        self,
        project: Project | None = None,
        *,
        hosts: Mapping[str, int] | None = None,
        on_output: OutputCallback | None = None,
        on_start: Callable[[RunDir], None] | None = None,
        on_notice: Callable[[str], None] | None = None,
        seed: int | None = None,
        pool: Pool | None = None,
    ) -> RunResult:
        """Run ``project`` (default: the loaded application) and return its result.

        On connected hosts: the matcher assigns them (``hosts``: exact counts per component, ``"*"`` for
        every one; else as many as each component's max allows), the agents are prepared at once and stay
        connected. With none connected: on fresh local sandbox hosts (``hosts``: component -> count, default
        each ``min``), connected in the run directory for this run only. With ``pool`` (hosts of the ``local``
        provider, as a pool file gives them) and none connected: the matcher chooses each component's hosts
        from it by group (``hosts`` as for connected hosts), connected under the pool's names in the run
        directory for this run only; a failed host is replaced by a spare of the matching. Raises
        :class:`~plush.errors.SpecError` (or MatchError) before anything starts when the run is refused;
        ``on_notice`` (default: this module's logger) hears, after ``on_start``, which components run here
        instead of the resources their spec names."""
        project = self._loaded(project)
        if self.engine is not None and not self.engine.finished:
            raise PlushError("an application is already running on this controller; abort it first")
        mesh = self.mesh if self.mesh is not None and not self.mesh.closed and self.mesh.joined() else None
        notice: str | None = None
        if mesh is not None:
            preflight(project, self.settings, hosts, requirements=False)
            matching = _match(project, mesh.joined(), hosts or {}, seed)
            assigned = {c: [_host(mesh, n) for n in names] for c, names in matching.hosts.items()}
            new_host = self._spare_source(mesh, matching)
        elif pool is not None:
            preflight(project, self.settings, hosts, requirements=False)
            assigned, new_host = _pool_hosts(project, pool, hosts or {}, seed)
        else:
            counts = preflight(project, self.settings, hosts)
            sandbox = SandboxHosts()
            assigned = {c.name: sandbox.take(counts[c.name]) for c in project.components}

            def new_host(component: str) -> Host | None:
                return sandbox.take(1)[0]

            notice = sandbox_notice(project, {c: len(h) for c, h in assigned.items()})
        rundir = RunDir.create(self.settings.runs_dir, mode=self.settings.results_mode)
        # held until the run's end is written; the kernel drops it if this process dies (plush report: dead)
        status = RunStatus.create(rundir.root, rundir.run_id, rundir.file_mode)
        run_mesh = mesh or Mesh(
            self.settings,
            self.bus,
            mesh_id=rundir.run_id,
            workspace=rundir.root,
            launcher=self._local_launcher(rundir.root, rundir.dir_mode, rundir.file_mode),
        )
        self.engine = RunEngine(
            project,
            settings=self.settings,
            rundir=rundir,
            bus=self.bus,
            hosts=assigned,
            new_host=new_host,
            mesh=run_mesh,
            keep=mesh is not None,
            on_output=on_output,
        )
        self.runs += 1
        self._idle.clear()

        def started(rundir: RunDir) -> None:
            if on_start is not None:
                on_start(rundir)
            if notice is not None:
                (on_notice or log.warning)(notice)

        try:
            return await record_run(self.engine, project, rundir, status, self.bus, started)
        finally:
            self._idle.set()

    def _spare_source(self, mesh: Mesh, matching: Matching) -> Callable[[str], Host | None]:
        """Replacement hosts of a run on connected hosts: the component's idle spares first, then (on the local
        sandbox) a new sandbox host."""
        spares = {c: list(names) for c, names in matching.spares.items()}
        local = all(h.provider == "local" for h in mesh.joined())

        def new_host(component: str) -> Host | None:
            for name in spares.get(component, []):
                spares[component].remove(name)
                if mesh.idle(name):
                    return _host(mesh, name)
            if local:
                host = self._sandbox.take(1)[0]
                self.pool.add(host)
                return host
            return None

        return new_host

    def abort(self, reason: str = "aborted by the user") -> None:
        """End the run in progress as failed (its report names ``reason`` as the root cause)."""
        if self.engine is not None:
            self.engine.abort(reason)

    def stop(self, reason: str = "stopped by request") -> None:
        """End the run in progress on request, cleanly: processes stopped (SIGTERM, ``stop_grace``, SIGKILL),
        outputs collected, agents stopped; its outcome and report say *stopped*, not failed. The path of
        Ctrl-C and of ``quit``."""
        if self.engine is not None:
            self.engine.stop(reason)

    def fail_host(self, host: str) -> None:
        """Mark ``host`` of the run in progress failed (the terminal's ``fail``): the ladder replaces it
        (rematch), goes on without it while its component keeps its min, or aborts the run."""
        if self.engine is None or self.engine.finished:
            raise PlushError("no application is running")
        self.engine.fail_host(host)

    def release_barrier(self, name: str) -> None:
        if self.engine is None:
            raise PlushError("no application is running")
        self.engine.release_barrier(name)

    async def quit(self, reason: str = "the controller quits") -> None:
        """Stop the run in progress (and wait for its end), disconnect every host, close the mesh."""
        if self.engine is not None and not self.engine.finished:
            self.engine.stop(reason)
        await self._idle.wait()
        mesh, self.mesh = self.mesh, None
        if mesh is not None and not mesh.closed:
            await mesh.close()

    # --- watching ----------------------------------------------------------------------------------------------

    def subscribe(
        self,
        kinds: Iterable[str] | None = None,
        hosts: Iterable[str] | None = None,
        blocks: Iterable[str] | None = None,
        *,
        maxlen: int | None = None,
    ) -> Subscription:
        """Events from now on: those whose name matches one of ``kinds`` (``process.exited``, a prefix
        ``process`` for every ``process.*``, or a pattern ``host.*``), concern one of ``hosts``, and whose
        block is under one of ``blocks`` (block paths); None: no filter on that. ``maxlen``: a lossy
        subscription keeping the newest ``maxlen`` events (``missed`` counts the others)."""
        kind_list = list(kinds) if kinds is not None else None
        host_set = set(hosts) if hosts is not None else None
        block_list = [b.rstrip("/") for b in blocks] if blocks is not None else None

        def named(name: str) -> bool:
            return kind_list is None or any(_kind_matches(k, name) for k in kind_list)

        def wanted(event: Event) -> bool:
            if host_set is not None and event.host not in host_set:
                return False
            if block_list is not None:
                block = event.block or ""
                if not any(block == b or block.startswith(b + "/") for b in block_list):
                    return False
            return True

        unfiltered = host_set is None and block_list is None
        return self.bus.subscribe(
            maxlen=maxlen, names=None if kind_list is None else named, where=None if unfiltered else wanted
        )

    def info(self, what: str) -> Any:
        """Plain data (JSON-ready) about ``nodes`` (each host: name, address, group, properties, state,
        agent_pid, component), the ``mesh``, the ``control`` (settings, the loaded application, the run) or
        the ``app`` (the loaded application and its run)."""
        if what == "nodes":
            return nodes_info(self.pool, self.mesh, self.engine)
        if what == "mesh":
            return mesh_info(self.mesh)
        if what == "control":
            return control_info(self.settings, self.project, self.engine, self.runs)
        if what == "app":
            return app_info(self.project, self.engine)
        raise PlushError(f"info about {what!r}? one of: {', '.join(INFO_TOPICS)}")


def _kind_matches(kind: str, name: str) -> bool:
    if any(c in kind for c in "*?["):
        return fnmatch.fnmatchcase(name, kind)
    return name == kind or name.startswith(kind + ".")


def _host(mesh: Mesh, name: str) -> Host:
    return mesh.members[name].host


def _match(project: Project, connected: Sequence[Host], wanted: Mapping[str, int], seed: int | None) -> Matching:
    """The matching of ``project`` on the ``connected`` hosts: local sandbox hosts accept any resource group."""
    every = wanted.get(EVERY)
    counts = {c.name: every for c in project.components} if every is not None else {}
    counts.update({k: v for k, v in wanted.items() if k != EVERY})
    local = all(h.provider == "local" for h in connected)
    return match(project.components, Pool(connected), wanted=counts, seed=seed, by_group=not local)


def _pool_hosts(
    project: Project, pool: Pool, wanted: Mapping[str, int], seed: int | None
) -> tuple[dict[str, list[Host]], Callable[[str], Host | None]]:
    """The hosts of each component from ``pool`` (matched by group; MatchError when no matching exists) and
    the source of replacements: the component's spares, in preference order."""
    foreign = sorted({h.provider for h in pool if h.provider != "local"})
    if foreign:
        raise PlushError(f"no launcher for {', '.join(map(repr, foreign))} hosts yet (only local)")
    every = wanted.get(EVERY)
    counts = {c.name: every for c in project.components} if every is not None else {}
    counts.update({k: v for k, v in wanted.items() if k != EVERY})
    matching = match(project.components, pool, wanted=counts, seed=seed, by_group=True)
    assigned = {c: [h for h in map(pool.get, names) if h is not None] for c, names in matching.hosts.items()}
    spares = {c: list(names) for c, names in matching.spares.items()}
    used = set(matching.used())

    def new_host(component: str) -> Host | None:
        while spares.get(component):
            name = spares[component].pop(0)
            if name not in used:
                used.add(name)
                return pool.get(name)
        return None

    return assigned, new_host
