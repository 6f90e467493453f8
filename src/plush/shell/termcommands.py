"""The terminal's commands: one table (:data:`COMMANDS`), each command a thin call into :class:`plush.Controller`.

Role: parse a command line's words and call the controller; print what it answers (``info`` through
:mod:`plush.shell.views`). No logic of its own: what a command does is what its Controller call does. The
session (:mod:`plush.shell.terminal`) owns the prompt, the signals and the run in the background; it passes
itself as the :class:`Session` each command receives.

Invariants: a command's error is a :class:`~plush.errors.PlushError` (or click's usage error) for the session
to print as one ``plush: error: ...`` line; the terminal goes on.
"""

from __future__ import annotations

import difflib
import shlex
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from plush.errors import PlushError

if TYPE_CHECKING:
    from rich.console import Console

    from plush.controller.api import Controller

__all__ = ["COMMANDS", "Command", "Session", "closest", "split_command"]


class Session(Protocol):
    """What a command may use of the terminal session."""

    controller: Controller
    console: Console

    def say(self, line: str) -> None: ...

    async def start_run(self, hosts: dict[str, int]) -> None: ...

    async def quit(self) -> None: ...


Handler = Callable[[Session, list[str]], Coroutine[Any, Any, None]]


@dataclass(frozen=True)
class Command:
    name: str
    usage: str
    summary: str
    handler: Handler
    #: what its arguments complete to: ``hosts``, ``files``, ``barriers``, ``info``, ``commands``, ``restart``
    #: (hosts and block paths) or ``""``
    completes: str = ""


COMMANDS: dict[str, Command] = {}


def command(name: str, usage: str, summary: str, completes: str = "") -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        COMMANDS[name] = Command(name, usage, summary, fn, completes)
        return fn

    return register


#: ``shell CMD``: run as ``sh -c CMD`` on each host
SH_C = True


def split_command(line: str) -> tuple[str, list[str]]:
    """The command name and its arguments (two-word names: ``add node``, ``remove node``, ``create
    resources``; ``shell``: the rest of the line as typed, one argument); raises PlushError for an
    unbalanced quote."""
    first, _, rest = line.strip().partition(" ")
    if first == "shell":
        return first, [rest.strip()] if rest.strip() else []
    try:
        words = shlex.split(line)
    except ValueError as exc:
        raise PlushError(f"cannot read the command: {exc}") from None
    if not words:
        return "", []
    if len(words) > 1 and f"{words[0]} {words[1]}" in COMMANDS:
        return f"{words[0]} {words[1]}", words[2:]
    return words[0], words[1:]


def closest(name: str) -> str | None:
    """The command nearest to an unknown ``name`` (difflib), or None."""
    found = difflib.get_close_matches(name, list(COMMANDS), n=1, cutoff=0.5)
    return found[0] if found else None


def _at_most(args: list[str], n: int, usage: str) -> None:
    if len(args) > n:
        raise PlushError(f"too many arguments: {usage}")


def _one(args: list[str], usage: str) -> str:
    if len(args) != 1:
        raise PlushError(f"usage: {usage}")
    return args[0]


@command("load", "load FILE", "read and check an application spec (Plush XML or YAML)", "files")
async def load(s: Session, args: list[str]) -> None:
    project = s.controller.load(_one(args, "load FILE"))
    comps = ", ".join(f"{c.name} ({c.num_hosts.min}-{c.num_hosts.max})" for c in project.components)
    s.say(f"loaded {project.name}: components {comps}")


@command(
    "connect", "connect [N | HOST...]", "start agents: N sandbox hosts, pool hosts, or what the app needs", "hosts"
)
async def connect(s: Session, args: list[str]) -> None:
    from plush.resources.hostset import expand, fold

    hosts: Any
    if not args:
        hosts = None
    elif len(args) == 1 and args[0].isdigit():
        hosts = int(args[0])
    else:
        hosts = [name for arg in args for name in expand(arg)]
    names = await s.controller.connect(hosts)
    s.say(f"connected {len(names)} hosts: {fold(names)}" if names else "nothing more to connect")


@command("disconnect", "disconnect [HOST...]", "stop the agents of these hosts (default: every host)", "hosts")
async def disconnect(s: Session, args: list[str]) -> None:
    from plush.resources.hostset import expand, fold

    names = [name for arg in args for name in expand(arg)] or None
    await s.controller.disconnect(names)
    s.say(f"disconnected {fold(names) if names else 'every host'}")


@command("info", "info nodes [--failed] [HOSTSET] | mesh | control | app", "what the controller knows", "info")
async def info(s: Session, args: list[str]) -> None:
    from plush.controller.api import INFO_TOPICS
    from plush.shell.views import info_view

    if not args or args[0] not in INFO_TOPICS:
        raise PlushError(f"usage: {COMMANDS['info'].usage}")
    what, rest = args[0], args[1:]
    failed = "--failed" in rest
    others = [a for a in rest if a != "--failed"]
    if what != "nodes" and rest:
        raise PlushError(f"info {what} takes no more arguments")
    _at_most(others, 1, COMMANDS["info"].usage)
    view = info_view(what, s.controller.info(what), failed=failed, hostset=others[0] if others else None)
    with s.console.capture() as captured:  # one write, in order with the lines around it
        s.console.print(view)
    s.say(captured.get().rstrip("\n"))


@command("run", "run [N | COMPONENT=N ...]", "run the loaded application in the background")
async def run(s: Session, args: list[str]) -> None:
    from plush.shell.options import parse_hosts

    await s.start_run(parse_hosts(tuple(args)))


@command("stop", "stop", "stop the run in progress on request (STOPPED)")
async def stop(s: Session, args: list[str]) -> None:
    _running(s)
    s.controller.stop("stopped by request (stop)")


@command("abort", "abort [REASON]", "end the run in progress as failed")
async def abort(s: Session, args: list[str]) -> None:
    _running(s)
    s.controller.abort(" ".join(args) or "aborted by the user")


def _running(s: Session) -> None:
    if not s.controller.info("control")["running"]:
        raise PlushError("no application is running")


@command("fail", "fail HOST", "mark a host of the run failed (it is replaced, or the run goes on without it)", "hosts")
async def fail(s: Session, args: list[str]) -> None:
    host = _one(args, "fail HOST")
    s.controller.fail_host(host)
    s.say(f"marked {host} failed")


@command("release", "release BARRIER", "force a barrier of the run open", "barriers")
async def release(s: Session, args: list[str]) -> None:
    name = _one(args, "release BARRIER")
    s.controller.release_barrier(name)
    s.say(f"released {name}")


@command("shell", "shell CMD...", "run a command line on every connected host, output gathered")
async def shell(s: Session, args: list[str]) -> None:
    from plush.shell.exec_command import ExecRequest, exec_on

    if not args:
        raise PlushError("usage: shell CMD...")
    # the command line as typed (the session passes it whole): pipes and quotes reach ``sh -c``
    request = ExecRequest(cmd=(" ".join(args),), shell=SH_C, gather=True)

    def emit(stream: str, line: str) -> None:
        s.say(line)

    status = await exec_on(s.controller, request, emit)
    if status:
        s.say(f"(exit status {status})")


@command("match", "match", "which connected hosts each component would get")
async def match(s: Session, args: list[str]) -> None:
    from plush.resources.hostset import fold

    matching = s.controller.match()
    for component, hosts in matching.hosts.items():
        spares = matching.spares.get(component, ())
        more = f" (spares: {fold(spares)})" if spares else ""
        s.say(f"{component}: {len(hosts)} hosts: {fold(hosts)}{more}")


@command("add node", "add node HOST [GROUP]", "add a local host to the pool (connect it with connect HOST)")
async def add_node(s: Session, args: list[str]) -> None:
    from plush.resources.host import Host

    if not 1 <= len(args) <= 2:
        raise PlushError("usage: add node HOST [GROUP]")
    s.controller.add_node(Host(name=args[0], address="127.0.0.1", group=args[1] if len(args) > 1 else None))
    s.say(f"added {args[0]} to the pool")


@command("remove node", "remove node HOST", "disconnect a host and remove it from the pool", "hosts")
async def remove_node(s: Session, args: list[str]) -> None:
    host = _one(args, "remove node HOST")
    await s.controller.remove_node(host)
    s.say(f"removed {host}")


@command("save", "save FILE [--force]", "write the loaded application as Plush XML (--force: replace FILE)", "files")
async def save(s: Session, args: list[str]) -> None:
    force = "--force" in args
    path = _one([a for a in args if a != "--force"], COMMANDS["save"].usage)
    saved = s.controller.save(path, overwrite=force)
    s.say(f"saved {s.controller.project.name if s.controller.project else 'the application'} in {saved}")


@command(
    "restart",
    "restart [HOST | BLOCK [HOSTS]]",
    "restart a host's agent, a block's processes (on HOSTS), or the application; also past its restart policy",
    "restart",
)
async def restart(s: Session, args: list[str]) -> None:
    _at_most(args, 2, COMMANDS["restart"].usage)
    if len(args) == 2 and not args[0].startswith("/"):
        raise PlushError(f"usage: {COMMANDS['restart'].usage} (HOSTS go after a block path)")
    done = s.controller.restart(args[0] if args else None, args[1] if len(args) > 1 else None)
    s.say(done.message)


@command("create resources", "create resources", "create the hosts the application's netns resources ask for")
async def create_resources(s: Session, args: list[str]) -> None:
    from plush.resources.hostset import fold

    if args:
        raise PlushError("usage: create resources")
    done = await s.controller.create_resources()
    if done.cluster:
        s.say(f"created {fold(done.created)} (cluster {done.cluster}, removed when the next run ends)")
    s.say(f"connected {fold(done.connected) or 'no host'}")


@command("help", "help [COMMAND]", "list the commands, or say what one does", "commands")
async def help_(s: Session, args: list[str]) -> None:
    if args:
        name = " ".join(args)
        found = COMMANDS.get(name)
        if found is None:
            raise PlushError(f"no command {name!r}")
        s.say(f"{found.usage}\n  {found.summary}")
        return
    width = max(len(c.usage) for c in COMMANDS.values())
    for c in COMMANDS.values():
        s.say(f"{c.usage.ljust(width)}  {c.summary}")
    s.say("Ctrl-C cancels the command in progress; Ctrl-D or quit leaves (stopping the run this terminal started).")


@command("quit", "quit", "stop the run in progress, disconnect every host and leave")
async def quit_(s: Session, args: list[str]) -> None:
    await s.quit()
