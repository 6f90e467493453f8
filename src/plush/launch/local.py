"""The local launcher: agents as processes on this machine, one working directory each (sandbox hosts).

By default agents are forked by a zygote (``python -m plush.agent.zygote``, see
:mod:`plush.launch.processes`): one interpreter imports the agent's closure once and forks one agent per
host, which is ~5x cheaper in CPU than one interpreter per agent and never blocks the controller's event
loop. With ``fork_server=False`` each agent is its own ``sys.executable -m plush.agent --connect HOST:PORT
--ca CA --token-file F --host NAME --workdir DIR`` (the same arguments the zygote's children get). Agents
find the package through ``PYTHONPATH`` (the directory that holds ``plush``), so this works from a source
tree or an editable install. Invariants:

- the token is written once to ``<run_dir>/.agent/token`` (mode 0600, directory 0700) and passed as a path;
  it is never on a command line, in the environment, in a zygote request, or in a log;
- what the launcher makes in the run directory gets the results' modes (``dir_mode``, ``file_mode``: the
  host directories, their ``work/``, ``agent.log``, ``.agent/zygote.log``), exactly, whatever the umask; it
  never changes the umask, which agents and applications inherit;
- every agent gets ``<run_dir>/hosts/<name>/work/`` as its working directory; its stdout and stderr go to
  ``<run_dir>/hosts/<name>/agent.log`` (no pipes to drain, so hundreds of agents cost the controller nothing);
- every agent leads its own session and process group; :meth:`LocalLauncher.stop_all` sends SIGTERM to
  each group, waits up to ``stop_grace`` seconds, SIGKILLs the groups still there, waits for every agent,
  then closes the zygote -- no agent and no zygote survives the launcher (nor the controller's death: the
  zygote ends its agents when its stdin closes);
- no orphan: everything the launcher starts carries ``PLUSH_SANDBOX_RUN=<token>`` in its environment (the
  zygote, the agents, their guards, the application processes); before its first agent starts, the launcher
  registers the run (:mod:`plush.launch.leftovers`: a record locked while the controller lives), and at the
  end of :meth:`LocalLauncher.stop_all` it kills whatever still carries the token and removes the record.
  If the controller dies instead, the next ``plush`` command finds the record unlocked and does that;
- bytecode: agents compile into a cache shared by runs (``PYTHONPYCACHEPREFIX`` =
  ``$XDG_CACHE_HOME/plush/pycache/<interpreter>-plush<version>``), which the warm-up (the zygote's own
  imports, or one import of the agent's closure) fills before the first agent starts; Python checks each
  source's mtime and size, so a shared cache is never stale.

Size: about 440 lines, kept whole: the agents, the fork server's client, the sweep and the host directories
share the launcher's one table of agents and its one workspace.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Collection, Iterable, Sequence
from pathlib import Path
from typing import IO

import plush
from plush.errors import LaunchError
from plush.launch.base import AgentContact, Launcher, RunResult
from plush.launch.leftovers import SANDBOX_VARIABLE, Registration, new_token, register
from plush.launch.processes import AgentProcess, ForkRequest, SpawnedProcess, ZygoteClient
from plush.processes.sweep import kill_host_processes, process_state
from plush.processes.tree import find_with_env, terminate
from plush.resources.host import Host
from plush.resources.sandbox import local_properties

__all__ = ["LOCAL_ADDRESS", "LocalAgent", "LocalLauncher", "SandboxHosts", "pycache_dir", "source_root"]

#: the address of every local sandbox host (what its processes get as ``PLUSH_ADDR``)
LOCAL_ADDRESS = "127.0.0.1"

log = logging.getLogger(__name__)

_SPAWN_BATCH = 32  # without the zygote: yield to the event loop between batches of spawns
#: what the warm-up imports: everything an agent imports, the runtime included
_AGENT_CLOSURE = "import plush.agent.__main__, plush.agent.runtime"


def source_root() -> Path:
    """The directory that holds the ``plush`` package (what agents need on ``PYTHONPATH``)."""
    return Path(plush.__file__).resolve().parent.parent


def pycache_dir(python: str = sys.executable) -> Path:
    """The agents' bytecode cache for interpreter ``python``, shared by runs of this plush version."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    if os.path.realpath(python) == os.path.realpath(sys.executable):
        tag = sys.implementation.cache_tag or "python"
    else:
        tag = "python-" + hashlib.sha1(os.path.realpath(python).encode()).hexdigest()[:10]  # noqa: S324
    return Path(base) / "plush" / "pycache" / f"{tag}-plush{plush.__version__}"


class LocalAgent:
    """One local agent process (spawned, or forked by the zygote)."""

    def __init__(self, name: str, workdir: Path, process: AgentProcess) -> None:
        self.name = name
        self.workdir = workdir
        self.log_path = workdir / "agent.log"
        self.process = process

    def __repr__(self) -> str:
        return f"<LocalAgent {self.name} pid={self.pid} rc={self.returncode}>"

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def returncode(self) -> int | None:
        return self.process.poll()

    @property
    def started_at(self) -> float:
        return self.process.started_at

    async def wait(self) -> int:
        """Wait for the agent to exit; its exit status (negative: the signal that killed it)."""
        return await self.process.wait()

    def stderr_tail(self, lines: int = 20) -> str:
        """The last lines the agent printed (its log), for error messages."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def signal_group(self, sig: int) -> bool:
        """Send ``sig`` to the agent's process group; whether the agent was still there to get it."""
        if self.process.poll() is not None:
            return False
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, sig)
            return True
        return False


class LocalLauncher(Launcher):
    """Starts agents on this machine under ``run_dir``; see the module docstring for the invariants."""

    capabilities = frozenset({"start_agent", "put_file", "run", "close", "signal", "kill_leftovers"})
    sweep_all_is_cheap = True  # one pass over this machine's /proc

    def __init__(
        self,
        run_dir: Path,
        contact: AgentContact,
        *,
        python: str = sys.executable,
        stop_grace: float = 5.0,
        extra_args: Sequence[str] = (),
        fork_server: bool = True,
        bytecode_cache: Path | None = None,
        dir_mode: int = 0o700,
        file_mode: int = 0o600,
    ) -> None:
        self.run_dir = Path(run_dir)
        self.dir_mode = dir_mode
        self.file_mode = file_mode
        self.contact = contact
        self.python = python
        self.stop_grace = stop_grace
        self.extra_args = tuple(extra_args)
        self.fork_server = fork_server
        self.agents: dict[str, LocalAgent] = {}
        secret_dir = self.run_dir / ".agent"
        secret_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(secret_dir, 0o700)
        self.ca_file = secret_dir / "ca.pem"
        with self._create(self.ca_file, 0o600) as fh:
            fh.write(contact.ca_pem)
        self.token_file = secret_dir / "token"
        with self._create(self.token_file, 0o600) as fh:
            fh.write(contact.token.reveal().encode())
        env = dict(os.environ)
        root = str(source_root())
        env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        # compiled bytecode goes to a cache shared by runs (never the source tree)
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        self.bytecode_cache = self._usable_cache(bytecode_cache or pycache_dir(python), secret_dir / "pycache")
        env["PYTHONPYCACHEPREFIX"] = str(self.bytecode_cache)
        self.token = new_token()
        env[SANDBOX_VARIABLE] = self.token
        self._registration: Registration | None = None
        self._env = env
        self._warmed = False
        self._zygote: ZygoteClient | None = None

    @staticmethod
    def _create(path: Path, mode: int, *, append: bool = False) -> IO[bytes]:
        """``path`` opened for writing, created with exactly ``mode`` (the umask is not ours to change)."""
        flags = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC | (os.O_APPEND if append else os.O_TRUNC)
        fd = os.open(path, flags, mode)
        try:
            os.fchmod(fd, mode)
            return os.fdopen(fd, "ab" if append else "wb")
        except BaseException:
            os.close(fd)
            raise

    def _make_dirs(self, path: Path) -> None:
        """``path`` and its missing parents below the run directory, with the results' directory mode."""
        missing = []
        while path != self.run_dir and not path.is_dir():
            missing.append(path)
            path = path.parent
        for each in reversed(missing):
            with contextlib.suppress(FileExistsError):
                os.mkdir(each, self.dir_mode)
                os.chmod(each, self.dir_mode)

    @staticmethod
    def _usable_cache(preferred: Path, fallback: Path) -> Path:
        try:
            preferred.mkdir(parents=True, exist_ok=True)
        except OSError:
            return fallback
        return preferred if os.access(preferred, os.W_OK | os.X_OK) else fallback

    def host_dir(self, name: str) -> Path:
        if not name or "/" in name or name in (".", ".."):
            raise LaunchError(name, "a local host name must be a plain file name")
        return self.run_dir / "hosts" / name

    def work_dir(self, name: str) -> Path:
        """The host's working directory (processes run there); its agent.log stays one level up."""
        return self.host_dir(name) / "work"

    def agent_args(self, name: str) -> list[str]:
        """The agent's arguments (after ``python -m plush.agent``); they hold no secret."""
        args = [
            "--connect",
            f"{self.contact.host}:{self.contact.port}",
            "--ca",
            str(self.ca_file),
            "--token-file",
            str(self.token_file),
            "--host",
            name,
            "--workdir",
            str(self.work_dir(name)),
        ]
        if self.contact.server_name:
            args += ["--server-name", self.contact.server_name]
        return args + list(self.extra_args)

    def argv(self, name: str) -> list[str]:
        """The agent's command line when it is spawned (it holds no secret)."""
        return [self.python, "-m", "plush.agent", *self.agent_args(name)]

    def _prepare_host(self, name: str) -> Path:
        existing = self.agents.get(name)
        if existing is not None and existing.returncode is None:
            raise LaunchError(name, "its agent is already running")
        host_dir = self.host_dir(name)
        self._make_dirs(host_dir / "work")
        self._create(host_dir / "agent.log", self.file_mode, append=True).close()  # before the agent opens it
        return host_dir

    def _spawn(self, name: str) -> LocalAgent:
        workdir = self._prepare_host(name)
        with open(workdir / "agent.log", "ab") as log_file:
            try:
                popen = subprocess.Popen(
                    self.argv(name),
                    stdin=subprocess.DEVNULL,
                    stdout=log_file,
                    stderr=subprocess.STDOUT,
                    cwd=workdir,
                    env=self._env,
                    start_new_session=True,
                    close_fds=True,
                )
            except OSError as exc:
                raise LaunchError(name, f"cannot start {self.python}: {exc}") from exc
        agent = LocalAgent(name, workdir, SpawnedProcess(popen))
        self.agents[name] = agent
        return agent

    async def start_agent(self, name: str) -> LocalAgent:
        (agent,) = await self.start_agents([name])
        return agent

    async def warm_up(self) -> None:
        """Compile and import the agent's whole closure once before agents start: start the zygote (it
        imports everything, then waits for requests), or without it run one import into the cache. The run
        is registered first (nothing of it runs before)."""
        if self._registration is None:
            try:
                self._registration = register(self.token, self.run_dir, stop_grace=self.stop_grace)
            except OSError as exc:
                log.warning("cannot register the run for clean-up after a crash: %s", exc)
        if self.fork_server:
            if self._zygote is None or not self._zygote.running:
                self._create(self.run_dir / ".agent" / "zygote.log", self.file_mode, append=True).close()
                zygote = ZygoteClient(
                    self.python, self._env, grace=self.stop_grace, log_path=self.run_dir / ".agent" / "zygote.log"
                )
                self._zygote = zygote
                await zygote.start()
            return
        if self._warmed:
            return
        self._warmed = True
        proc = await asyncio.create_subprocess_exec(
            self.python, "-c", _AGENT_CLOSURE, env=self._env, stdin=subprocess.DEVNULL
        )
        await proc.wait()

    async def start_agents(self, names: Iterable[str]) -> Sequence[LocalAgent]:
        """Start the agents of ``names``; returns once each has a pid (not once they joined)."""
        names = list(names)
        if len(set(names)) != len(names):
            raise LaunchError(names[0], "a host name is given twice")
        await self.warm_up()
        if not self.fork_server:
            started: list[LocalAgent] = []
            for i, name in enumerate(names):
                if i and i % _SPAWN_BATCH == 0:
                    await asyncio.sleep(0)  # let the listener accept the first ones meanwhile
                started.append(self._spawn(name))
            return started
        assert self._zygote is not None
        requests = []
        for name in names:
            workdir = self._prepare_host(name)
            requests.append(ForkRequest(self.agent_args(name), workdir, workdir / "agent.log"))
        processes = await self._zygote.fork(requests)
        agents = [LocalAgent(n, r.cwd, p) for n, r, p in zip(names, requests, processes, strict=True)]
        for agent in agents:
            self.agents[agent.name] = agent
        return agents

    async def put_file(self, name: str, source: Path, dest: str) -> None:
        target = (self.work_dir(name) / dest).resolve()
        if not target.is_relative_to(self.work_dir(name).resolve()):
            raise LaunchError(name, f"{dest!r} is outside the host's working directory")
        target.parent.mkdir(parents=True, exist_ok=True)
        await asyncio.to_thread(shutil.copyfile, source, target)

    async def run(self, name: str, argv: Sequence[str]) -> RunResult:
        workdir = self.work_dir(name)
        workdir.mkdir(parents=True, exist_ok=True)
        proc = await asyncio.create_subprocess_exec(
            *argv, cwd=workdir, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        out, err = await proc.communicate()
        assert proc.returncode is not None
        return RunResult(proc.returncode, out, err)

    def agent(self, name: str) -> LocalAgent | None:
        return self.agents.get(name)

    def alive(self) -> list[LocalAgent]:
        return [a for a in self.agents.values() if a.returncode is None]

    def address(self, name: str) -> str:
        return LOCAL_ADDRESS

    def agent_state(self, name: str, pid: int | None) -> str | None:
        """Judged for the agents this launcher started (the last one of ``name``): its exit status, else
        its process state in ``/proc``; None for any other pid (not ours: the link gets its window)."""
        agent = self.agents.get(name)
        if agent is None or pid is None or agent.pid != pid:
            return None
        if agent.returncode is not None:
            return f"exited ({agent.returncode})"
        return process_state(agent.pid)

    def signal_agent(self, name: str, sig: int) -> bool:
        agent = self.agents.get(name)
        return agent is not None and agent.signal_group(sig)

    async def kill_leftovers(self, run_id: str, hosts: Collection[str] | None) -> list[int]:
        """One pass over ``/proc`` in a thread (the event loop goes on meanwhile), for the processes that carry
        this launcher's token (another controller's run may have the same id)."""
        mark = f"{SANDBOX_VARIABLE}={self.token}"
        return await asyncio.to_thread(kill_host_processes, run_id, None if hosts is None else list(hosts), mark=mark)

    async def stop_agent(self, name: str, grace: float | None = None) -> None:
        """SIGTERM the agent's group, SIGKILL after ``grace`` seconds (``stop_grace`` by default; 0: at
        once), wait until it exited."""
        agent = self.agents.get(name)
        if agent is None or agent.returncode is not None:
            return
        grace = self.stop_grace if grace is None else grace
        if grace > 0 and agent.signal_group(signal.SIGTERM):
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(agent.wait()), grace)
        if agent.returncode is None:
            agent.signal_group(signal.SIGKILL)
            await agent.wait()

    async def stop_all(self, grace: float | None = None) -> None:
        """SIGTERM every agent's group, SIGKILL after ``grace`` seconds, wait for them all, close the zygote."""
        grace = self.stop_grace if grace is None else grace
        agents = list(self.agents.values())
        try:
            for agent in agents:
                agent.signal_group(signal.SIGTERM)
            waits = asyncio.gather(*(a.wait() for a in agents))
            try:
                await asyncio.wait_for(asyncio.shield(waits), grace)
            except TimeoutError:
                for agent in agents:
                    agent.signal_group(signal.SIGKILL)
                await waits
        finally:
            zygote, self._zygote = self._zygote, None
            if zygote is not None:
                await zygote.close()
            await self._end_leftovers()

    async def _end_leftovers(self) -> None:
        """Kill whatever still carries this launcher's token (a guard still at work after its agent was
        SIGKILLed, a process it missed), then remove the run's record."""
        registration, self._registration = self._registration, None
        if registration is None:
            return
        token = self.token
        left = await asyncio.to_thread(terminate, lambda: find_with_env(SANDBOX_VARIABLE, token), 0.0)
        if left:
            log.warning("killed %d process(es) left after the agents stopped: %s", len(left), left)
        registration.close()

    async def close(self) -> None:
        await self.stop_all()


class SandboxHosts:
    """The local sandbox's hosts: named ``local-1``, ``local-2``, ... in the order they are asked for (the
    first ones a run's components, later ones replacements), all at :data:`LOCAL_ADDRESS` with this machine's
    properties (:func:`~plush.resources.sandbox.local_properties`, read once). ``taken``: how many were handed
    out already (the next is ``local-<taken+1>``); ``properties``: theirs, when known."""

    def __init__(self, *, taken: int = 0, properties: dict[str, float | str] | None = None) -> None:
        self._taken = taken
        self._properties = properties

    def take(self, count: int = 1) -> list[Host]:
        if self._properties is None:
            self._properties = local_properties()
        first, self._taken = self._taken + 1, self._taken + count
        return [
            Host(f"local-{k}", LOCAL_ADDRESS, provider="local", properties=self._properties)
            for k in range(first, self._taken + 1)
        ]

    @property
    def taken(self) -> int:
        """How many hosts were handed out so far."""
        return self._taken
