"""``plush shell`` (and ``plush`` alone on a terminal): the interactive Plush terminal.

A face of :class:`~plush.controller.api.Controller`, in-process, listening on its control socket as ``plush
serve`` does (:class:`~plush.api.server.ControlServer`: ``plush info``, ``release``, ... work from another
terminal). The commands are :mod:`plush.shell.termcommands`; this module owns the prompt (prompt_toolkit:
persistent history in the state directory, completion of commands, host names and host sets, block paths,
barriers, info topics and files), the run in the background, and the keys:

- ``run`` returns to the prompt once the run has started; its output, the events ``plush run`` prints and its
  last lines arrive above the prompt (``patch_stdout``);
- Ctrl-C cancels the command in progress (a ``connect``, a ``shell``), or clears the line at the prompt; it
  never ends the terminal nor the run in the background (``stop``/``abort`` do);
- Ctrl-D quits, asking first when an application runs (then stops it, as ``quit`` does); ``quit`` (or a
  ``plush quit`` from another terminal) stops the run in progress, disconnects every host and exits 0.

Invariants: every task this session starts (the run, its event printer, the server's) ends before it returns;
a command's error is one ``plush: error: ...`` line and the terminal goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import click

from plush.shell.cli import cli, error_status, load_cli_settings, notice, spec_problem_lines, warn
from plush.shell.options import NAME_HELP

if TYPE_CHECKING:
    from prompt_toolkit import PromptSession
    from prompt_toolkit.completion import CompleteEvent, Completion
    from prompt_toolkit.document import Document

    from plush.api.server import ControlServer
    from plush.controller.api import Controller

__all__ = ["Terminal", "shell_command"]

PROMPT = "plush> "


@cli.command("shell")
@click.option("--name", default=None, metavar="NAME", help=NAME_HELP)
@click.option("--runs-dir", default=None, help="Where results go (default: ./plush-runs).")
def shell_command(name: str | None, runs_dir: str | None) -> None:
    """The interactive Plush terminal (also `plush` alone): load, connect, run, info, shell, release, ..."""
    if not sys.stdin.isatty():
        raise click.UsageError("plush shell needs a terminal (scripts: the plush subcommands it mirrors)")
    sys.exit(open_terminal(name, runs_dir))


def open_terminal(name: str | None = None, runs_dir: str | None = None) -> int:
    settings = load_cli_settings({"runs_dir": runs_dir})
    return asyncio.run(Terminal(settings, name).main())


class Terminal:
    """One terminal session over one in-process controller (see the module)."""

    def __init__(self, settings: Any, name: str | None) -> None:
        from rich.console import Console

        from plush.controller.api import Controller

        self.controller: Controller = Controller(settings)
        self.console = Console(highlight=False)
        self.settings = settings
        self._name = name
        self._server: ControlServer | None = None
        self._run: asyncio.Task[None] | None = None
        self._foreground: asyncio.Task[None] | None = None
        self._quitting = False
        self._session: PromptSession[str] | None = None

    def say(self, line: str) -> None:
        print(line, flush=True)

    # --- the session -----------------------------------------------------------------------------------------

    async def main(self) -> int:
        from prompt_toolkit import PromptSession
        from prompt_toolkit.history import FileHistory, InMemoryHistory
        from prompt_toolkit.patch_stdout import patch_stdout

        history: Any = InMemoryHistory()
        try:
            from plush.config import state_dir

            state = state_dir()
            state.mkdir(parents=True, exist_ok=True, mode=0o700)
            history = FileHistory(str(state / "terminal-history"))
        except OSError as exc:
            warn(f"no persistent history: {exc}")
        self._session = PromptSession(history=history, completer=make_completer(self.controller))
        await self._start_server()
        loop = asyncio.get_running_loop()
        try:
            with patch_stdout(raw=True):
                self.say("Plush terminal: help lists the commands; Ctrl-D or quit leaves")
                loop.add_signal_handler(signal.SIGINT, self._interrupt)
                loop.add_signal_handler(signal.SIGTERM, self._terminate)
                while not self._quitting:
                    line = await self._prompt(PROMPT)
                    if line is None:  # Ctrl-D
                        if await self._confirm_quit():
                            await self.quit()
                        continue
                    await self._execute(line)
        finally:
            await self._end()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)
        return 0

    async def _prompt(self, text: str) -> str | None:
        """One line, or None for Ctrl-D (or a ``plush quit`` from elsewhere); Ctrl-C clears the line."""
        assert self._session is not None
        while True:
            if self._quitting:
                return None
            try:
                return await self._session.prompt_async(text, handle_sigint=False)
            except KeyboardInterrupt:
                continue
            except EOFError:
                return None

    async def _confirm_quit(self) -> bool:
        if self._quitting or not self._running():
            return True
        from prompt_toolkit import PromptSession

        try:
            answer = await PromptSession[str]().prompt_async(
                "an application is running: stop it and quit? [y/N] ", handle_sigint=False
            )
        except (KeyboardInterrupt, EOFError):
            return False
        return answer.strip().lower() in ("y", "yes")

    def _running(self) -> bool:
        return bool(self.controller.info("control")["running"])

    async def _execute(self, line: str) -> None:
        from plush.shell.termcommands import COMMANDS, closest, split_command

        try:
            name, args = split_command(line)
            if not name:
                return
            found = COMMANDS.get(name) or (COMMANDS.get("quit") if name == "exit" else None)
            if found is None:
                near = closest(name)
                hint = f": did you mean '{near}'?" if near else ""
                self.say(f"plush: error: unknown command '{name}'{hint} (help lists the commands)")
                return
            self._foreground = asyncio.create_task(found.handler(self, args))
            await self._watch_keys(self._foreground)
        except asyncio.CancelledError:
            if self._foreground is None or not self._foreground.cancelled():
                raise
            self.say("plush: cancelled")
        except Exception as exc:
            self._error(exc)
        finally:
            self._foreground = None

    async def _watch_keys(self, task: asyncio.Task[None]) -> None:
        """Await ``task`` with the terminal in raw mode, Ctrl-C cancelling it (also a Ctrl-C typed while the
        prompt was ending: a key then, not a signal)."""
        from prompt_toolkit.input import create_input
        from prompt_toolkit.keys import Keys

        try:
            keys = create_input()
            raw, attached = keys.raw_mode(), keys.attach(lambda: self._keys(keys.read_keys(), Keys.ControlC))
        except (OSError, NotImplementedError, ValueError):  # not a terminal: the signal alone
            await task
            return
        with raw, attached:
            await task

    def _keys(self, pressed: list[Any], ctrl_c: Any) -> None:
        if any(k.key == ctrl_c for k in pressed):
            self._interrupt()

    def _error(self, exc: BaseException) -> None:
        from plush.errors import SpecError

        handled = error_status(exc)
        if handled is None:
            raise exc
        if isinstance(exc, SpecError):
            for line in spec_problem_lines(exc):
                self.say(line)
        elif handled[0] is not None:
            self.say(f"plush: error: {handled[0]}")

    def _interrupt(self) -> None:
        """Ctrl-C outside the prompt: cancel the command in progress (never the terminal, never the run)."""
        if self._foreground is not None and not self._foreground.done():
            self._foreground.cancel()

    def _terminate(self) -> None:
        self._request_quit()

    def _request_quit(self) -> None:
        self._quitting = True
        if self._foreground is not None and not self._foreground.done():
            self._foreground.cancel()
        session = self._session
        if session is not None and session.app.is_running:
            session.app.exit(exception=EOFError())

    # --- the control socket ----------------------------------------------------------------------------------------

    async def _start_server(self) -> None:
        from plush.api.server import ControlServer
        from plush.errors import PlushError

        server = ControlServer(self.controller, name=self._name, kind="serve", on_quit=lambda _: self._request_quit())
        try:
            await server.start()
        except (PlushError, OSError) as exc:
            if self._name is not None:
                raise
            warn(f"no control socket for this terminal: {exc}")
            return
        self._server = server

    # --- the run in the background -------------------------------------------------------------------------------

    async def start_run(self, hosts: dict[str, int]) -> None:
        """Start the loaded application; return once it started (its output then arrives above the prompt)."""
        from plush.errors import PlushError
        from plush.shell.console import SHOWN, LineWriter, print_events

        if self._run is not None and not self._run.done():
            raise PlushError("an application is already running in this terminal; stop or abort it first")
        started = asyncio.Event()
        writer = LineWriter()

        def on_start(rundir: Any) -> None:
            self.say(f"plush: run {rundir.run_id}: results in {rundir.root}")
            started.set()

        async def run() -> None:
            from plush.api.handlers import run_summary
            from plush.shell.console import end_status

            events = self.controller.subscribe(kinds=SHOWN)
            printer = asyncio.create_task(print_events(events))
            try:
                result = await self.controller.run(hosts=hosts, on_output=writer, on_start=on_start, on_notice=notice)
            finally:
                writer.flush()
                events.close()
                await printer
            if result.error is not None:
                raise result.error
            end_status(run_summary(result), 0)

        self._run = asyncio.create_task(run())
        self._run.add_done_callback(self._run_ended)
        waiting = asyncio.create_task(started.wait())
        try:
            await asyncio.wait({self._run, waiting}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiting.cancel()
        if self._run.done() and not self._run.cancelled() and self._run.exception() is not None:
            exc = self._run.exception()
            assert exc is not None
            raise exc

    def _run_ended(self, task: asyncio.Task[None]) -> None:
        if task.cancelled() or not task.done():
            return
        exc = task.exception()
        if exc is not None and not isinstance(exc, asyncio.CancelledError):
            with contextlib.suppress(Exception):
                if not self._quitting:
                    self._error(exc)

    async def quit(self) -> None:
        self._quitting = True

    async def _end(self) -> None:
        """Stop what this terminal started: the run, the hosts, the control socket."""
        await self.controller.quit("the terminal quits")
        if self._run is not None:
            await asyncio.gather(self._run, return_exceptions=True)
        if self._server is not None:
            self._server.ended()
            await self._server.close()


class _Completer:
    """Completion of command names, then of each command's arguments (hosts, barriers, topics, files)."""

    def __init__(self, controller: Controller) -> None:
        from prompt_toolkit.completion import PathCompleter

        self.controller = controller
        self.paths = PathCompleter(expanduser=True)

    def get_completions(self, document: Document, event: CompleteEvent) -> Iterable[Completion]:
        from prompt_toolkit.completion import Completion
        from prompt_toolkit.document import Document as Doc

        from plush.shell.termcommands import COMMANDS

        text = document.text_before_cursor
        words = text.split()
        current = "" if not words or text.endswith(" ") else words[-1]
        done = words if not current else words[:-1]
        if not done or (len(done) == 1 and f"{done[0]} {current}".strip() in _two_word_prefixes(done[0])):
            typed = " ".join([*done, current]) if done else current
            for name in COMMANDS:
                if name.startswith(typed) and name != typed:
                    yield Completion(name[len(typed) - len(current) :], start_position=-len(current))
            if done:
                return
            return
        name = " ".join(done[:2]) if " ".join(done[:2]) in COMMANDS else done[0]
        found = COMMANDS.get(name)
        if found is None:
            return
        if found.completes == "files":
            yield from self.paths.get_completions(Doc(current, len(current)), event)
            return
        for choice in self._choices(found.completes, done):
            if choice.startswith(current):
                yield Completion(choice, start_position=-len(current))

    def _choices(self, kind: str, done: list[str]) -> list[str]:
        from plush.shell.termcommands import COMMANDS

        if kind == "hosts":
            return self._hosts()
        if kind == "restart":  # restart HOST | BLOCK [HOSTS]
            if len(done) == 1:
                return [*self._blocks(), *self._hosts()]
            return self._hosts() if len(done) == 2 and done[1].startswith("/") else []
        if kind == "barriers":
            return [b["name"] for b in self.controller.info("control")["barriers"]]
        if kind == "commands":
            return list(COMMANDS)
        if kind == "info":
            if len(done) == 1:
                return ["nodes", "mesh", "control", "app"]
            if done[1] == "nodes":
                return ["--failed", *self._hosts()]
        return []

    def _hosts(self) -> list[str]:
        """The host names the controller knows, then their host set when there are several
        (``local-[1-40]``)."""
        from plush.resources.hostset import fold

        names = [node["name"] for node in self.controller.info("nodes")]
        return [*names, fold(names)] if len(names) > 1 else names

    def _blocks(self) -> list[str]:
        """The block paths of the loaded application that ``restart`` takes: component blocks, process and
        workflow blocks, workflow tasks, processes (not barriers)."""
        from plush.spec.model import BarrierBlock

        project = self.controller.project
        if project is None:
            return []
        out = []
        for path, block in project.walk():
            if isinstance(block, BarrierBlock):
                continue
            out.append(str(path))
            out += [str(path / proc.name) for proc in getattr(block, "processes", ())]
        return out


def _two_word_prefixes(first: str) -> set[str]:
    from plush.shell.termcommands import COMMANDS

    return {name for name in COMMANDS if name.startswith(first + " ")} | {
        name[: i + 1] for name in COMMANDS if name.startswith(first + " ") for i in range(len(name))
    }


def make_completer(controller: Controller) -> Any:
    """The terminal's completer (prompt_toolkit's :class:`Completer` is imported only when a terminal opens)."""
    from prompt_toolkit.completion import Completer

    class _Term(_Completer, Completer):
        pass

    return _Term(controller)
