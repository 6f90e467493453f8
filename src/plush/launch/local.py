"""The local launcher: agents as processes on this machine, one working directory each (sandbox hosts).

Each agent runs ``sys.executable -m plush.agent --connect HOST:PORT --ca CA --token-file F --host NAME
--workdir DIR`` with ``PYTHONPATH`` pointing at the directory that holds the ``plush`` package, so it works
from a source tree or an editable install. Invariants:

- the token is written once to ``<run_dir>/.agent/token`` (mode 0600, directory 0700) and passed as a path;
  it is never on a command line, in the environment, or in a log;
- every agent gets ``<run_dir>/hosts/<name>/work/`` as its working directory; its stdout and stderr go to
  ``<run_dir>/hosts/<name>/agent.log`` (no pipes to drain, so hundreds of agents cost the controller nothing);
- every agent leads its own process group (``start_new_session``); :meth:`LocalLauncher.stop_all` sends
  SIGTERM to each group, waits up to ``stop_grace`` seconds, then SIGKILLs the groups still there, and
  reaps every agent -- no agent survives the launcher;
- starting is concurrent: :meth:`start_agents` forks all agents without waiting for any to import or join
  (after one warm-up import that fills the run's bytecode cache, ``PYTHONPYCACHEPREFIX``);
  waiting for an exit uses a pidfd on the event loop (no thread, no polling) where the OS has them.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

import plush
from plush.errors import LaunchError
from plush.launch.base import AgentContact, Launcher, RunResult

__all__ = ["LocalAgent", "LocalLauncher", "source_root"]

_SPAWN_BATCH = 32  # yield to the event loop between batches of forks


def source_root() -> Path:
    """The directory that holds the ``plush`` package (what agents need on ``PYTHONPATH``)."""
    return Path(plush.__file__).resolve().parent.parent


class LocalAgent:
    """One local agent process."""

    def __init__(self, name: str, workdir: Path, process: subprocess.Popen[bytes]) -> None:
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

    async def wait(self) -> int:
        """Wait for the agent to exit and reap it; its exit status."""
        if self.process.poll() is not None:
            return self.process.returncode
        loop = asyncio.get_running_loop()
        try:
            fd = os.pidfd_open(self.process.pid)
        except (AttributeError, OSError):  # no pidfd (old kernels): a thread waits
            return await asyncio.to_thread(self.process.wait)
        exited: asyncio.Future[None] = loop.create_future()

        def readable() -> None:
            if not exited.done():
                exited.set_result(None)

        loop.add_reader(fd, readable)
        try:
            await exited
        finally:
            loop.remove_reader(fd)
            os.close(fd)
        return self.process.wait()

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

    capabilities = frozenset({"start_agent", "put_file", "run", "close"})

    def __init__(
        self,
        run_dir: Path,
        contact: AgentContact,
        *,
        python: str = sys.executable,
        stop_grace: float = 5.0,
        extra_args: Sequence[str] = (),
    ) -> None:
        self.run_dir = Path(run_dir)
        self.contact = contact
        self.python = python
        self.stop_grace = stop_grace
        self.extra_args = tuple(extra_args)
        self.agents: dict[str, LocalAgent] = {}
        secret_dir = self.run_dir / ".agent"
        secret_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(secret_dir, 0o700)
        self.ca_file = secret_dir / "ca.pem"
        self.ca_file.write_bytes(contact.ca_pem)
        self.token_file = secret_dir / "token"
        fd = os.open(self.token_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(contact.token.reveal())
        os.chmod(self.token_file, 0o600)
        env = dict(os.environ)
        root = str(source_root())
        env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        # compiled bytecode goes to a cache of the run (not the source tree), shared by all its agents
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(secret_dir / "pycache")
        self._env = env
        self._warmed = False

    def host_dir(self, name: str) -> Path:
        if not name or "/" in name or name in (".", ".."):
            raise LaunchError(name, "a local host name must be a plain file name")
        return self.run_dir / "hosts" / name

    def work_dir(self, name: str) -> Path:
        """The host's working directory (processes run there); its agent.log stays one level up."""
        return self.host_dir(name) / "work"

    def argv(self, name: str) -> list[str]:
        """The agent's command line (it holds no secret)."""
        argv = [
            self.python,
            "-m",
            "plush.agent",
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
            argv += ["--server-name", self.contact.server_name]
        return argv + list(self.extra_args)

    def _spawn(self, name: str) -> LocalAgent:
        if name in self.agents and self.agents[name].returncode is None:
            raise LaunchError(name, "its agent is already running")
        workdir = self.host_dir(name)
        workdir.mkdir(parents=True, exist_ok=True)
        with open(workdir / "agent.log", "ab") as log_file:
            try:
                process = subprocess.Popen(
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
        agent = LocalAgent(name, workdir, process)
        self.agents[name] = agent
        return agent

    async def start_agent(self, name: str) -> LocalAgent:
        return self._spawn(name)

    async def warm_up(self) -> None:
        """Compile the agent's modules once into the run's bytecode cache, so N agents don't compile N times."""
        if self._warmed:
            return
        self._warmed = True
        proc = await asyncio.create_subprocess_exec(
            self.python, "-c", "import plush.agent.__main__", env=self._env, stdin=subprocess.DEVNULL
        )
        await proc.wait()

    async def start_agents(self, names: Iterable[str]) -> Sequence[LocalAgent]:
        await self.warm_up()
        started: list[LocalAgent] = []
        for i, name in enumerate(names):
            if i and i % _SPAWN_BATCH == 0:
                await asyncio.sleep(0)  # let the listener accept the first ones meanwhile
            started.append(self._spawn(name))
        return started

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

    def alive(self) -> list[LocalAgent]:
        return [a for a in self.agents.values() if a.returncode is None]

    async def stop_all(self, grace: float | None = None) -> None:
        """SIGTERM every agent's group, SIGKILL after ``grace`` seconds, and reap them all."""
        grace = self.stop_grace if grace is None else grace
        agents = list(self.agents.values())
        for agent in agents:
            agent.signal_group(signal.SIGTERM)
        waits = asyncio.gather(*(a.wait() for a in agents))
        try:
            await asyncio.wait_for(asyncio.shield(waits), grace)
        except TimeoutError:
            for agent in agents:
                agent.signal_group(signal.SIGKILL)
            await waits

    async def close(self) -> None:
        await self.stop_all()
