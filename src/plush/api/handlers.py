"""The requests a controller's control socket serves: a registry of handlers, each a thin call into
:class:`plush.Controller`.

Role: the one table from a request's ``op`` to what it does (:mod:`plush.api.server` reads it). Each handler is
``async def handler(req: Request) -> result``: it reads its arguments with :meth:`Request.arg` (a missing or
mistyped one is an error reply, exit status 2), calls the controller, may stream event lines with
``await req.send({...})`` before returning, and returns the JSON-ready result of the final line. Raising a
:class:`~plush.errors.PlushError` is an error reply with its ``exit_code``.

Adding a request is one decorated function (here, or in a module the server imports: :mod:`plush.api.server`)::

    @handler("exec")
    async def exec_(req: Request) -> Any:
        return await req.controller.exec(req.arg("argv", list), ...)

The ops: ``load``, ``connect``, ``create_resources``, ``disconnect``, ``info``, ``run`` (streamed, or
``detach``), ``stop``, ``release``, ``fail``, ``abort``, ``quit``, ``subscribe`` (streamed); the distributed
shell's ``exec`` (streamed per host) in :mod:`plush.api.shell_handlers`. Events on the wire
(:func:`wire_event`): the event's ``to_dict()`` with its one-line form ``line``; process output as ``name``
``process.output``, ``host``, ``block``, ``instance``, ``stream`` and ``data`` (text, ``surrogateescape``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from plush.api.control import bytes_to_text
from plush.controller.catalogue import PROCESS_OUTPUT
from plush.errors import PlushError

if TYPE_CHECKING:
    from plush.controller.api import Controller, RunResult
    from plush.controller.events import Event, Subscription
    from plush.controller.rundir import RunDir

__all__ = ["HANDLERS", "BadRequest", "Request", "handler", "run_summary", "wire_event"]


class BadRequest(PlushError):
    """A request's arguments are missing or of the wrong kind."""

    exit_code = 2


class ServerSide(Protocol):
    """What a handler may ask of the server (:class:`plush.api.server.ControlServer`)."""

    @property
    def name(self) -> str: ...

    @property
    def is_ended(self) -> bool: ...

    #: the web UI's address and token (None without an HTTP listener)
    web_url: str | None
    web_token: str | None

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]: ...

    def quit(self, reason: str) -> None: ...

    async def wait_ended(self) -> None: ...


_MISSING: Any = object()


@dataclass
class Request:
    """One request being answered."""

    server: ServerSide
    controller: Controller
    args: dict[str, Any]
    #: send one event line to the client (before the final line)
    send: Callable[[dict[str, Any]], Awaitable[None]]

    def arg(self, name: str, kind: type | tuple[type, ...], default: Any = _MISSING) -> Any:
        """Argument ``name``, of ``kind``; ``default`` when absent or null (no default: required)."""
        value = self.args.get(name)
        if value is None:
            if default is _MISSING:
                raise BadRequest(f"missing argument {name!r}")
            return default
        if not isinstance(value, kind) or (isinstance(value, bool) and kind is int):
            raise BadRequest(f"argument {name!r}: {type(value).__name__} is not of the expected kind")
        return value


Handler = Callable[[Request], Awaitable[Any]]
#: op -> handler (see the module)
HANDLERS: dict[str, Handler] = {}


def handler(op: str) -> Callable[[Handler], Handler]:
    """Register the decorated coroutine function as the handler of ``op``."""

    def register(fn: Handler) -> Handler:
        if op in HANDLERS:
            raise ValueError(f"two handlers for {op!r}")
        HANDLERS[op] = fn
        return fn

    return register


def wire_event(event: Event) -> dict[str, Any]:
    if event.name == PROCESS_OUTPUT:
        return {
            "name": event.name,
            "host": event.host,
            "block": event.block,
            "instance": event.instance,
            "stream": event.data.get("stream"),
            "data": bytes_to_text(event.data.get("data") or b""),
        }
    return {**event.to_dict(), "line": event.describe()}


def run_summary(result: RunResult, missed: int = 0) -> dict[str, Any]:
    """What a run's end says, JSON-ready (the batch ``plush run`` and the streamed ``run`` print it alike)."""
    o = result.outcome
    failed = not o.ok and not o.stopped
    report = result.report
    return {
        "run": result.rundir.run_id,
        "results": str(result.rundir.root),
        "ok": o.ok,
        "stopped": o.stopped,
        "reason": o.reason,
        "took": o.timings.get("stopped", 0.0),
        "report": report.render_text() if failed and report is not None and report.entries else None,
        "error": str(result.error) if result.error is not None else None,
        "missed": missed,
    }


# --- the application and the hosts -------------------------------------------------------------------------


@handler("load")
async def load(req: Request) -> Any:
    project = req.controller.load(req.arg("path", str))
    return {"application": project.name, "spec": project.source}


@handler("connect")
async def connect(req: Request) -> Any:
    hosts = req.arg("hosts", (int, list))
    return {"connected": await req.controller.connect(hosts)}


@handler("create_resources")
async def create_resources(req: Request) -> Any:
    return (await req.controller.create_resources()).to_dict()


@handler("disconnect")
async def disconnect(req: Request) -> Any:
    hosts = req.arg("hosts", list, None)
    if hosts is not None:
        known = {node["name"] for node in req.controller.info("nodes") if node["state"] not in ("pooled", "gone")}
        unknown = [h for h in hosts if h not in known]
        if unknown:
            raise PlushError(f"not connected: {', '.join(map(str, unknown))}")
    await req.controller.disconnect(hosts)
    return {"disconnected": hosts}


@handler("info")
async def info(req: Request) -> Any:
    return req.controller.info(req.arg("what", str))


# --- the run ---------------------------------------------------------------------------------------------------


async def _forward(sub: Subscription, req: Request) -> None:
    async for event in sub:
        await req.send(wire_event(event))


@handler("run")
async def run(req: Request) -> Any:
    """Run the loaded application: with ``detach``, answer its id once started; else stream the events named in
    ``events`` (and its output unless ``output`` is false) until its end, then its :func:`run_summary`. A client
    that goes away leaves the run going."""
    controller = req.controller
    detach = req.arg("detach", bool, False)
    kinds = [*req.arg("events", list, [])] + ([PROCESS_OUTPUT] if req.arg("output", bool, True) else [])
    started: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
    notices: list[str] = []

    def on_start(rundir: RunDir) -> None:
        started.set_result({"run": rundir.run_id, "results": str(rundir.root)})

    sub = controller.subscribe(kinds=kinds) if not detach and kinds else None
    task = req.server.spawn(
        controller.run(
            hosts=req.arg("hosts", dict, None),
            seed=req.arg("seed", int, None),
            on_start=on_start,
            on_notice=notices.append,
        )
    )
    pump: asyncio.Task[None] | None = None
    try:
        await asyncio.wait({started, task}, return_when=asyncio.FIRST_COMPLETED)
        if not started.done():
            task.result()  # the refusal (SpecError, MatchError, another run in progress)
            raise PlushError("the run ended before it started")
        if detach:
            return {**started.result(), "notices": notices}
        await req.send({"name": "run.begin", **started.result(), "notices": notices})
        if sub is not None:
            pump = asyncio.get_running_loop().create_task(_forward(sub, req))
        await asyncio.wait({task} | ({pump} if pump else set()), return_when=asyncio.FIRST_COMPLETED)
        if not task.done():  # the client went away: the run goes on
            assert pump is not None
            pump.result()
            await task
        result = task.result()
    finally:
        if sub is not None:
            sub.close()  # what is queued is still forwarded
    if pump is not None:
        await pump
    return run_summary(result, sub.missed if sub is not None else 0)


@handler("stop")
async def stop(req: Request) -> Any:
    _running(req.controller)
    req.controller.stop(req.arg("reason", str, "stopped by request"))
    return {}


@handler("abort")
async def abort(req: Request) -> Any:
    _running(req.controller)
    req.controller.abort(req.arg("reason", str, "aborted by the user"))
    return {}


@handler("fail")
async def fail(req: Request) -> Any:
    req.controller.fail_host(req.arg("host", str))
    return {}


@handler("release")
async def release(req: Request) -> Any:
    _running(req.controller)
    req.controller.release_barrier(req.arg("barrier", str))
    return {}


def _running(controller: Controller) -> None:
    if not controller.info("control")["running"]:
        raise PlushError("no application is running")


# --- the controller ----------------------------------------------------------------------------------------------


@handler("quit")
async def quit_(req: Request) -> Any:
    """Ask the owner to quit (a service: stop the run, disconnect every host; a batch run: stop it), answer
    once the controller has quit."""
    req.server.quit(req.arg("reason", str, "quit requested"))
    await req.server.wait_ended()
    return {"quit": req.server.name}


@handler("subscribe")
async def subscribe(req: Request) -> Any:
    """Stream events (``kinds``, ``hosts``, ``blocks`` as :meth:`Controller.subscribe` takes them) until the
    controller quits; the final line counts those ``missed``."""
    sub = req.controller.subscribe(
        kinds=req.arg("kinds", list, None), hosts=req.arg("hosts", list, None), blocks=req.arg("blocks", list, None)
    )
    pump = asyncio.get_running_loop().create_task(_forward(sub, req))
    ended = asyncio.get_running_loop().create_task(req.server.wait_ended())
    try:
        await asyncio.wait({pump, ended}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        sub.close()
        ended.cancel()
    await pump
    return {"missed": sub.missed}
