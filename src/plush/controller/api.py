"""The one public API of the controller: :class:`Controller`, a service that outlives application runs.

Every front end (``plush run``, the terminal, ``plush exec``, the HTTP/XML-RPC API, the web UI) calls this and
nothing else; they are thin faces over these calls, named after the Plush terminal's commands:

- ``load(spec)``: read and validate an application (it becomes the loaded one);
- ``connect(hosts)``: start an agent on each host and wait until it joined (local sandbox hosts: a count, or
  :class:`~plush.resources.host.Host` entries of the ``local`` provider); ``disconnect([host])``;
  ``add_node(host)`` / ``remove_node(name)`` change the pool; ``create_resources()`` makes the hosts the
  application's ``<resource type="netns">`` asks for, leased until the next run ends
  (:mod:`plush.controller.resourcing`);
- ``match()``: which connected hosts each component would get (the pure matcher);
- ``run()``: run the loaded application, again and again on the same connected agents (a second run starts
  no agent: its hosts are prepared at once, and stay connected at its end). With no host connected, a run
  connects the local sandbox hosts it needs itself, in its run directory, and disconnects them at its end
  (what ``plush run`` does: load -> run (connect) -> quit);
- ``exec(cmd, hosts)``: the distributed shell: one command on many connected hosts, one request and one
  reply each, beside any run (:mod:`plush.controller.execs`; its result gathered by
  :mod:`plush.controller.gather`); ``copy(file, dest, hosts)`` / ``gather(path, outdir, hosts)``: files to and
  from the hosts' exec directories, through their content caches (:mod:`plush.controller.transfers`);
- ``stop()`` (a requested, normal end), ``abort()`` (a failure), ``fail_host``, ``release_barrier``,
  ``restart`` (:mod:`plush.controller.restarts`) steer the run in progress; ``save(path)`` writes the loaded
  application as Plush XML (:mod:`plush.controller.saving`); ``subscribe(kinds, hosts, blocks)`` streams
  events; ``info("nodes"|"mesh"|"control"|"app")`` answers with plain data, ``tree()`` the loaded
  application's block tree and DAG (:func:`plush.spec.tree.block_tree`), ``states()`` each host's phase and
  blocks' states (:mod:`plush.controller.runstates`); ``results`` reads the runs of the
  runs directory, their reports, logs and outputs (:class:`plush.controller.results.RunResults`); ``quit()``
  stops the run in progress, disconnects every host and ends.

Invariants: at most one application runs at a time; a run's hosts come from a pool through the matcher (the
connected hosts, a pool, or the local sandbox provider's fresh hosts), and so does every replacement
(:mod:`plush.controller.hostsource`: ``rematch`` with the failed hosts excluded and :attr:`Controller.samples`,
the latest host monitor sample of each host whose agent runs, kept from ``host.sample`` events); nothing here
knows where a host is (the launcher does) or decides a failure (the run's parts do).

Size: about 650 lines, one method per call of the public API (each a thin call into the mesh, the matcher or
the run engine) and the four sources of a run's hosts; the views of ``info`` live in
:mod:`plush.controller.info`, runs in :mod:`plush.controller.appruns`, replacements in
:mod:`plush.controller.hostsource`.
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
from plush.controller.catalogue import APP_LOADED, HOST_SAMPLE
from plush.controller.copyresult import TransferResult
from plush.controller.engine import OutputCallback, RunEngine
from plush.controller.events import Event, EventBus, Subscription
from plush.controller.execs import DEFAULT_TIMEOUT, EXEC_LIMIT
from plush.controller.gather import ExecResult, HostOutput
from plush.controller.hostsource import HostSource, live_sample, match_run
from plush.controller.info import app_info, control_info, mesh_info, nodes_info
from plush.controller.mesh import Mesh
from plush.controller.preflight import preflight
from plush.controller.resourcing import CreatedResources, Resources, wants_netns
from plush.controller.restarts import Restarted
from plush.controller.results import RunResults
from plush.controller.rundir import RESULTS_MODES, RunDir
from plush.controller.runledger import RunLedger
from plush.controller.runstatus import RunStatus
from plush.controller.transfers import DEFAULT_TRANSFER_TIMEOUT
from plush.errors import PlushError
from plush.launch.base import AgentContact, Launcher
from plush.launch.local import LocalLauncher, SandboxHosts
from plush.resources.host import Host, Pool
from plush.resources.matcher import LiveSample, Matching
from plush.resources.providers import LocalSandbox
from plush.resources.sandbox import sandbox_notice
from plush.spec.model import Project

__all__ = ["Controller", "CreatedResources", "ExecResult", "RunResult", "TransferResult"]

log = logging.getLogger(__name__)

#: the host kinds (providers) a launcher serves
LAUNCHED = ("local", "ssh")

#: what ``info`` answers about
INFO_TOPICS = ("nodes", "mesh", "control", "app")


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
        #: the kind of host the controller's mesh connects (``local`` or ``ssh``: one launcher per mesh)
        self._mesh_kind = "local"
        #: the latest host monitor sample of each host whose agent runs (``host.sample`` events)
        self.samples: dict[str, LiveSample] = {}
        self.bus.add_sink(self._on_event)
        #: what the run in progress (or the last) did to its hosts and work queues (``states()``)
        self.ledger = RunLedger()
        self.bus.add_sink(self.ledger)
        self._idle = asyncio.Event()
        self._idle.set()
        #: hosts made for this controller (``create_resources``, ``<resource type="netns">``): leases
        self.resources = Resources(self)

    def _on_event(self, event: Event) -> None:
        if event.name == HOST_SAMPLE and event.host is not None:
            sample = live_sample(event.data)
            if sample is not None:
                self.samples[event.host] = sample

    # --- the application ----------------------------------------------------------------------------------

    def load(self, path: str | Path) -> Project:
        """Read and validate a spec (Plush XML or YAML), which becomes the loaded application (``app.loaded``
        tells every subscriber, whichever face loaded it); raises SpecError listing every problem."""
        from plush.spec.load import load_spec

        self.project = load_spec(Path(path))
        self.bus.emit(APP_LOADED, data={"application": self.project.name, "spec": self.project.source or str(path)})
        return self.project

    def tree(self) -> dict[str, Any]:
        """The loaded application's block tree and DAG, plain data (:func:`plush.spec.tree.block_tree`)."""
        from plush.spec.tree import block_tree

        return block_tree(self._loaded(None))

    def states(self) -> dict[str, Any]:
        """Each host of the run in progress (or the last) with its phase and its blocks' states, its failures,
        replacements and work queues, and the id of the latest event included
        (:func:`plush.controller.runstates.run_states`)."""
        from plush.controller.runstates import run_states

        return run_states(self.engine, self.bus.history(), self.ledger)

    @property
    def results(self) -> RunResults:
        """The runs of the ``runs_dir`` setting: their status, reports, logs and outputs."""
        return RunResults(self.settings.runs_dir)

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
        kind = _one_kind(chosen)
        if self.mesh is not None and not self.mesh.closed and chosen and kind != self._mesh_kind:
            raise PlushError(
                f"this controller's connected hosts are {self._mesh_kind} hosts: {kind} hosts cannot join them "
                "(one kind of host per controller for now; disconnect them first)"
            )
        if self.mesh is None or self.mesh.closed:
            self._mesh_kind = kind
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
            if host.provider not in LAUNCHED:
                raise PlushError(f"host {host.name}: no launcher for {host.provider!r} hosts (only local, ssh)")
            chosen.append(host)
        _one_kind(chosen)
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
        meshes: list[Mesh] = []
        self.mesh = Mesh(
            self.settings,
            self.bus,
            mesh_id=mesh_id,
            workspace=workspace,
            launcher=self._launcher(self._mesh_kind, workspace, dir_mode, file_mode, meshes),
        )
        meshes.append(self.mesh)
        await self.mesh.start()
        return self.mesh

    def _launcher(
        self, kind: str, workspace: Path, dir_mode: int, file_mode: int, meshes: list[Mesh]
    ) -> Callable[[AgentContact], Launcher]:
        """The launcher factory of a mesh of ``kind`` hosts (``meshes``: filled with the mesh once made, whose
        members the SSH launcher looks its hosts up in)."""
        settings = self.settings
        if kind == "ssh":
            from plush.launch.ssh import SSHLauncher
            from plush.launch.sshconn import SSHConnections

            def host_of(name: str) -> Host | None:
                member = meshes[0].members.get(name) if meshes else None
                return member.host if member is not None else None

            def make_ssh(contact: AgentContact) -> Launcher:
                connections = SSHConnections(
                    config=settings.ssh_config,
                    known_hosts=settings.ssh_known_hosts,
                    connect_timeout=settings.ssh_connect_timeout,
                    handshakes=settings.ssh_handshakes,
                )
                return SSHLauncher(
                    workspace.name,
                    contact,
                    host_of,
                    connections=connections,
                    stop_grace=settings.stop_grace,
                    agent_grace=settings.agent_grace,
                    link=settings.ssh_link,
                )

            return make_ssh

        def make(contact: AgentContact) -> Launcher:
            return LocalLauncher(
                workspace, contact, stop_grace=settings.stop_grace, dir_mode=dir_mode, file_mode=file_mode
            )

        return make

    async def create_resources(
        self, project: Project | None = None, *, hosts: Mapping[str, int] | None = None
    ) -> CreatedResources:
        """Plush's ``create resources``: the hosts the application's ``<resource type="netns">`` asks for are made
        (a cluster of network namespaces; root only: ClusterError, exit 2) and join the pool, leased until the
        next run ends (or ``quit``); then every pool host not connected is connected. ``hosts``: counts per
        component, as for ``run`` (default each ``min``). :mod:`plush.controller.resourcing`."""
        return await self.resources.create(project or self.project, hosts)

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
        for name in names:
            self.samples.pop(name, None)

    def match(
        self, project: Project | None = None, hosts: Mapping[str, int] | None = None, seed: int | None = None
    ) -> Matching:
        """Which connected hosts each component of the application would get, and its spares (pure: no host
        is contacted; the less loaded first by the hosts' latest samples, none over a component's live
        limits). ``seed``: default, the ``seed`` setting. Raises MatchError (``COMPONENT: need N, ...``) when
        no matching exists."""
        project = self._loaded(project)
        connected = self.mesh.joined() if self.mesh is not None and not self.mesh.closed else []
        return self._match_connected(project, connected, hosts or {}, self._seed(seed))

    def _seed(self, seed: int | None) -> int | None:
        return seed if seed is not None else self.settings.seed

    def _match_connected(
        self, project: Project, connected: Sequence[Host], wanted: Mapping[str, int], seed: int | None
    ) -> Matching:
        """The matching on connected hosts (local sandbox hosts accept any resource group), their samples."""
        local = all(h.provider == "local" for h in connected)
        return match_run(project, Pool(connected), wanted, seed, samples=self.samples, by_group=not local)

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
        directory for this run only. ``seed`` (default: the ``seed`` setting) shuffles the pool before
        matching. A failed host is replaced by the host ``rematch`` prefers now (see the module). Raises
        :class:`~plush.errors.SpecError` (or MatchError) before anything starts when the run is refused;
        With none connected and no ``pool``, a spec whose components name ``netns`` resources runs on hosts
        made for it (:mod:`plush.controller.resourcing`: root only), removed at its end. ``on_notice`` (default:
        this module's logger) hears, after ``on_start``, which components run here instead of the resources
        their spec names, or the cluster made for the run. Called while the last run's end is decided but its
        stop phase (processes stopped, outputs collected, hosts reset) is not over, it waits for that phase."""
        project = self._loaded(project)
        while not self._idle.is_set():  # the last run's end is decided, its stop phase not over: wait for it
            if self.engine is not None and not self.engine.finished:
                raise PlushError("an application is already running on this controller; abort it first")
            await self._idle.wait()
        self._idle.clear()  # this run's, until its end is written (or it is refused)
        try:
            return await self._run(project, hosts, on_output, on_start, on_notice, seed, pool)
        finally:
            self._idle.set()

    async def _run(
        self,
        project: Project,
        hosts: Mapping[str, int] | None,
        on_output: OutputCallback | None,
        on_start: Callable[[RunDir], None] | None,
        on_notice: Callable[[str], None] | None,
        seed: int | None,
        pool: Pool | None,
    ) -> RunResult:
        mesh = self.mesh if self.mesh is not None and not self.mesh.closed and self.mesh.joined() else None
        seed = self._seed(seed)
        notice: str | None = None
        if mesh is not None:
            preflight(project, self.settings, hosts, requirements=False)
            source = self._connected_source(project, mesh, hosts or {}, seed)
        elif pool is not None:
            preflight(project, self.settings, hosts, requirements=False)
            source = self._pool_source(project, pool, hosts or {}, seed)
        elif wants_netns(project):  # on a cluster made for this run (plush.controller.resourcing)
            pool, counts = await self.resources.for_run(project, hosts)
            source = self._pool_source(project, pool, counts, seed, by_group=False)
            notice = f"running on {len(pool)} hosts made for this run: cluster {self.resources.leases[-1].cluster}"
        else:
            counts = preflight(project, self.settings, hosts)
            source = await self._sandbox_source(project, counts, seed)
            notice = sandbox_notice(project, counts)
        rundir = RunDir.create(self.settings.runs_dir, mode=self.settings.results_mode)
        # held until the run's end is written; the kernel drops it if this process dies (plush report: dead)
        status = RunStatus.create(rundir.root, rundir.run_id, rundir.file_mode)
        meshes: list[Mesh] = []
        kind = _one_kind(list(pool)) if pool is not None and mesh is None else "local"
        run_mesh = mesh or Mesh(
            self.settings,
            self.bus,
            mesh_id=rundir.run_id,
            workspace=rundir.root,
            launcher=self._launcher(kind, rundir.root, rundir.dir_mode, rundir.file_mode, meshes),
        )
        meshes.append(run_mesh)
        self.engine = RunEngine(
            project,
            settings=self.settings,
            rundir=rundir,
            bus=self.bus,
            hosts=source.assigned(),
            new_host=source.new_host,
            mesh=run_mesh,
            keep=mesh is not None,
            on_output=on_output,
            heal_start=kind == "ssh",
        )
        self.runs += 1

        def follow(event: Event) -> None:
            source.observe(event.name, event.host, event.data)

        self.bus.add_sink(follow)

        def started(rundir: RunDir) -> None:
            if on_start is not None:
                on_start(rundir)
            if notice is not None:
                (on_notice or log.warning)(notice)

        try:
            return await record_run(self.engine, project, rundir, status, self.bus, started)
        finally:
            self.bus.remove_sink(follow)
            if mesh is None:  # the run's agents are gone: so are their samples
                kept = {h.name for h in self.mesh.joined()} if self.mesh is not None and not self.mesh.closed else set()
                self.samples = {n: s for n, s in self.samples.items() if n in kept}
            await self.resources.run_ended()  # leases end with the run

    # --- where a run's hosts come from: a matching, and replacements by rematch (plush.controller.hostsource) ---

    def _connected_source(
        self, project: Project, mesh: Mesh, wanted: Mapping[str, int], seed: int | None
    ) -> HostSource:
        """A run on connected hosts: matched with their latest samples; a replacement is an idle connected
        host the matcher chooses, else (on the local sandbox) a new sandbox host."""
        joined = mesh.joined()
        matching = self._match_connected(project, joined, wanted, seed)
        fresh = None
        if all(h.provider == "local" for h in joined):

            def fresh() -> Host:
                host = self._sandbox.take(1)[0]
                self.pool.add(host)
                return host

        # every joined host is idle or in this run (one run at a time): the matching's hosts are taken
        return HostSource(project, matching, lambda: Pool(mesh.joined()), samples=self.samples, fresh=fresh)

    def _pool_source(
        self, project: Project, pool: Pool, wanted: Mapping[str, int], seed: int | None, *, by_group: bool = True
    ) -> HostSource:
        """A run on a pool's hosts (a pool file's, a discovery command's, a cluster made for it), connected for
        this run only: matched by group (unless not ``by_group``); a replacement is the host the matcher chooses
        (spares first), none beyond the pool."""
        foreign = sorted({h.provider for h in pool if h.provider not in LAUNCHED})
        if foreign:
            raise PlushError(f"no launcher for {', '.join(map(repr, foreign))} hosts (only local, ssh)")
        _one_kind(list(pool))
        matching = match_run(project, pool, wanted, seed, by_group=by_group)
        return HostSource(project, matching, lambda: pool, samples=self.samples)

    async def _sandbox_source(self, project: Project, counts: Mapping[str, int], seed: int | None) -> HostSource:
        """A run on fresh local sandbox hosts: the local sandbox provider's ``local-1`` … ``local-N`` (N the
        counts' sum), matched with any resource group (each component gets exactly its count, in component
        order unless a seed permutes them: as ``plush plan`` shows); a replacement is a new sandbox host
        (``local-N+1``, ...), the pool having no spare."""
        total = sum(counts.values())
        sandbox = Pool(await LocalSandbox(total).hosts())
        matching = match_run(project, sandbox, counts, seed, by_group=False)
        first = next(iter(sandbox), None)
        more = SandboxHosts(taken=total, properties=dict(first.properties) if first is not None else None)
        return HostSource(project, matching, lambda: sandbox, samples=self.samples, fresh=lambda: more.take(1)[0])

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

    def restart(self, target: str | None = None, hosts: str | Iterable[str] | None = None) -> Restarted:
        """The operator's restart during a run (the terminal's ``restart``; :mod:`plush.controller.restarts`):
        ``target`` None: the application; a host name or host set: each host's agent in place; a block path:
        its processes on every host where it runs (``hosts``: on those only). Also when the restart policy
        is spent. Raises PlushError saying why it cannot (no run, unknown host or block, nothing running)."""
        from plush.controller.restarts import restart

        return restart(self.engine, target, hosts)

    def save(self, path: str | Path, *, overwrite: bool = False) -> Path:
        """Write the loaded application as a Plush XML spec at ``path`` (:mod:`plush.controller.saving`);
        an existing file is replaced only with ``overwrite``. Returns the path written."""
        from plush.controller.saving import save_spec

        return save_spec(self._loaded(None), Path(path), overwrite=overwrite)

    async def quit(self, reason: str = "the controller quits") -> None:
        """Stop the run in progress (and wait for its end), disconnect every host, close the mesh."""
        if self.engine is not None and not self.engine.finished:
            self.engine.stop(reason)
        await self._idle.wait()
        mesh, self.mesh = self.mesh, None
        try:
            if mesh is not None and not mesh.closed:
                await mesh.close()
        finally:
            await self.resources.release_all()

    # --- the distributed shell ------------------------------------------------------------------------------------

    async def exec(
        self,
        cmd: str | Sequence[str],
        hosts: str | Iterable[str] | None = None,
        *,
        group: str | None = None,
        exclude: str | Iterable[str] | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        shell: bool = False,
        limit: int = EXEC_LIMIT,
        on_result: Callable[[HostOutput], None] | None = None,
    ) -> ExecResult:
        """Run ``cmd`` once on each selected connected host and return every host's answer
        (:class:`~plush.controller.gather.ExecResult`: ``results``, ``timed_out``, ``unreachable``, ``status``).

        ``cmd``: an argv (a string is split as a shell would), or with ``shell`` a command line for ``sh -c``.
        Hosts: ``hosts`` (a host set such as ``"local-[1-40,43]"``, or names) and/or ``group`` (a resource
        group), else every host of the mesh but those disconnected; less ``exclude``. A connected host runs
        it at once, idle or in a run (beside the application); one still connecting is waited for up to
        ``join_timeout``; any other is unreachable. Each host's agent kills the command at ``timeout``
        seconds; its reply carries at most ``limit`` bytes of stdout and of stderr. ``on_result`` hears each
        reply as it comes. Raises :class:`~plush.controller.execs.ExecError` when nothing can be sent."""
        from plush.controller.execs import run_exec

        return await run_exec(
            self.mesh,
            self.pool,
            cmd,
            hosts=hosts,
            group=group,
            exclude=exclude,
            timeout=timeout,
            shell=shell,
            limit=limit,
            join_timeout=self.settings.join_timeout,
            on_result=on_result,
        )

    async def copy(
        self,
        source: str | Path,
        dest: str,
        hosts: str | Iterable[str] | None = None,
        *,
        group: str | None = None,
        exclude: str | Iterable[str] | None = None,
        timeout: float = DEFAULT_TRANSFER_TIMEOUT,
    ) -> TransferResult:
        """Copy the local file ``source`` to ``dest`` on each selected connected host (as :meth:`exec` selects
        them): ``dest`` is relative to the host's exec directory (a plain relative path: no ``..``, not
        absolute). The file travels through each host's content cache, checked by sha256, only to hosts whose
        cache lacks it (:mod:`plush.controller.transfers`). Raises ExecError when nothing can be sent or
        ``dest`` is refused."""
        from plush.controller.transfers import run_copy

        return await run_copy(
            self.mesh,
            self.pool,
            source,
            dest,
            hosts=hosts,
            group=group,
            exclude=exclude,
            timeout=timeout,
            join_timeout=self.settings.join_timeout,
        )

    async def gather(
        self,
        path: str,
        outdir: str | Path,
        hosts: str | Iterable[str] | None = None,
        *,
        group: str | None = None,
        exclude: str | Iterable[str] | None = None,
        timeout: float = DEFAULT_TRANSFER_TIMEOUT,
    ) -> TransferResult:
        """Bring the file ``path`` (relative to each selected host's exec directory) into ``outdir`` as
        ``NAME.HOST`` (``NAME``: its base name), checked by sha256 (:mod:`plush.controller.transfers`)."""
        from plush.controller.transfers import run_gather

        return await run_gather(
            self.mesh,
            self.pool,
            path,
            outdir,
            hosts=hosts,
            group=group,
            exclude=exclude,
            timeout=timeout,
            join_timeout=self.settings.join_timeout,
        )

    # --- watching ----------------------------------------------------------------------------------------------

    def subscribe(
        self,
        kinds: Iterable[str] | None = None,
        hosts: Iterable[str] | None = None,
        blocks: Iterable[str] | None = None,
        *,
        maxlen: int | None = None,
        since: int | None = None,
    ) -> Subscription:
        """Events from now on: those whose name matches one of ``kinds`` (``process.exited``, a prefix
        ``process`` for every ``process.*``, or a pattern ``host.*``), concern one of ``hosts``, and whose
        block is under one of ``blocks`` (block paths); None: no filter on that. ``maxlen``: a lossy
        subscription keeping the newest ``maxlen`` events (``missed`` counts the others). ``since``: an event's
        ``seq``: the journaled events after it that the bus still remembers come first (a resumed stream)."""
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
            maxlen=maxlen,
            names=None if kind_list is None else named,
            where=None if unfiltered else wanted,
            since=since,
        )

    def info(self, what: str) -> Any:
        """Plain data (JSON-ready) about ``nodes`` (each host: name, address, group, properties, state,
        agent_pid, component), the ``mesh``, the ``control`` (settings, the loaded application, the run) or
        the ``app`` (the loaded application and its run)."""
        if what == "nodes":
            return nodes_info(self.pool, self._shown_mesh(), self.engine)
        if what == "mesh":
            return mesh_info(self._shown_mesh())
        if what == "control":
            return control_info(self.settings, self.project, self.engine, self.runs)
        if what == "app":
            return app_info(self.project, self.engine)
        raise PlushError(f"info about {what!r}? one of: {', '.join(INFO_TOPICS)}")

    def _shown_mesh(self) -> Mesh | None:
        """The mesh ``info`` shows: the connected agents', else the run in progress's own (a run on hosts it
        connected itself, such as ``plush run SPEC``'s)."""
        if self.mesh is not None and not self.mesh.closed:
            return self.mesh
        engine = self.engine
        return engine.mesh if engine is not None and not engine.finished else self.mesh


def _kind_matches(kind: str, name: str) -> bool:
    if any(c in kind for c in "*?["):
        return fnmatch.fnmatchcase(name, kind)
    return name == kind or name.startswith(kind + ".")


def _one_kind(hosts: Sequence[Host]) -> str:
    """The one kind (provider) of ``hosts`` (``local`` when there is none); mixing local and ssh hosts in one
    run or mesh is refused (one launcher per mesh for now)."""
    kinds = sorted({h.provider for h in hosts})
    if len(kinds) > 1:
        raise PlushError(
            f"a run cannot mix {' and '.join(kinds)} hosts yet (one kind of host per run): use a pool of one kind"
        )
    return kinds[0] if kinds else "local"
