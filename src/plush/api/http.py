"""``plush serve --http``: the HTTP JSON API and its event stream, thin over :class:`plush.Controller`.

Role: one aiohttp application whose resources mirror the controller's calls (the table
:data:`plush.api.routes.OPERATIONS`, which ``/openapi.json`` is written from, :mod:`plush.api.models`, its
answers :mod:`plush.api.answers`): the pool and its hosts (list, add, connect, remove, fail), the application
(load by path or by body, its description, its block tree and DAG), runs (start, status with the last run's
report as JSON, stop, abort; the runs' results in :mod:`plush.api.http_runs`), barriers (state, release),
``exec``, ``quit``, and ``GET /v1/events``: Server-Sent Events of the catalogue, filtered by ``kind``,
``host`` and ``block`` (comma-separated or repeated), each journaled event with ``id: SEQ`` (unique across
every run of one serve), resumed after ``Last-Event-ID`` from the bus's history; process output is live only
(no id).

A *front* (:class:`Front`: the web UI, :class:`plush.web.pages.WebUI`, given by ``plush serve``) may add its
pages to the listener and decide on the requests that do not carry the token (a signed-in browser's cookie).

Invariants:
- every request carries ``Authorization: Bearer TOKEN`` (:mod:`plush.api.token`) or is admitted by the front,
  else 401 before anything else is looked at (an unknown path too); the token is never logged; no CORS
  header is ever sent;
- every error is ``{"error": {"code", "message"}}`` with the words the CLI prints (:func:`error_of`), its
  status one the document lists for the operation (a 405 keeps its ``Allow`` header);
- a listener beyond loopback serves TLS with the controller's CA (:mod:`plush.fabric.tls`), never plain HTTP.

Size: about 560 lines: the listener (with its hook for the web UI, :class:`Front`) and the table of its
operations, each a few lines over the controller; they read as one (the bodies are :mod:`plush.api.models`,
the token :mod:`plush.api.token`).
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import re
import shutil
import ssl
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Protocol

from aiohttp import web
from pydantic import ValidationError

from plush.api import answers as A
from plush.api.handlers import ServerSide, run_summary, wire_event
from plush.api.models import (
    ConnectBody,
    ExecBody,
    HostBody,
    LoadBody,
    Operation,
    ReasonBody,
    ResourcesBody,
    RunBody,
    openapi,
)
from plush.api.routes import OPERATIONS, Handler, operation
from plush.api.token import token_matches
from plush.controller.api import Controller, RunResult
from plush.controller.catalogue import journaled
from plush.controller.events import Event, Subscription
from plush.controller.results import NoSuchResult
from plush.controller.rundir import RunDir
from plush.errors import PlushError, SpecError
from plush.resources.host import Host
from plush.resources.poolentry import Entry, Spot, hosts_from_entries

__all__ = ["OPERATIONS", "Front", "HttpApi", "error_of", "is_loopback", "listener_tls", "parse_listen"]

log = logging.getLogger(__name__)

#: SSE frames kept encoded for the next subscriber that sends the same event
FRAMES = 4096


def parse_listen(text: str) -> tuple[str, int]:
    """``[ADDR:]PORT`` -> (address, port); the address defaults to 127.0.0.1. ValueError when it is not one."""
    host, _, port = text.rpartition(":")
    host = host.strip("[]") or "127.0.0.1"
    if not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"{text!r} is not [ADDR:]PORT")
    return host, int(port)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def listener_tls(host: str, state_dir: Path) -> ssl.SSLContext | None:
    """None on loopback; beyond it, a server context with a certificate from the controller's CA (clients
    verify it with ``<state_dir>/ca/ca.pem``)."""
    if is_loopback(host):
        return None
    from plush.fabric.tls import ensure_ca, server_context

    return server_context(ensure_ca(state_dir), [host])


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def error_of(exc: BaseException) -> tuple[int, str, str]:
    """(HTTP status, code, message) of an exception a handler raised."""
    if isinstance(exc, ValidationError):
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        return 400, "bad_request", f"{where}: {first['msg']}"
    if isinstance(exc, NoSuchResult):
        return 404, "not_found", str(exc)
    if isinstance(exc, SpecError):
        return 422, "spec_error", "\n".join(str(p) for p in exc.problems)
    if isinstance(exc, PlushError):
        status = 400 if exc.exit_code == 2 else 409
        return status, _snake(type(exc).__name__), str(exc)
    return 500, "internal", f"internal error: {exc!r}"


class Front(Protocol):
    """Pages served beside the API on its listener (the web UI), and who may use them without the token."""

    def add_routes(self, app: web.Application) -> None: ...

    def admit(self, request: web.Request) -> bool | web.StreamResponse:
        """A request without the bearer token: True to serve it, False for the 401, or the answer to give."""
        ...


def _error(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message}}, status=status)


class HttpApi:
    """The HTTP listener of one controller (see the module)."""

    def __init__(
        self,
        controller: Controller,
        owner: ServerSide,
        token: str,
        host: str,
        port: int,
        tls: ssl.SSLContext | None,
        front: Front | None = None,
    ) -> None:
        self.controller = controller
        self.front = front
        self.owner = owner
        self._token = token
        self.host = host
        self.port = port
        self.tls = tls
        self._runner: web.AppRunner | None = None
        self._streams: set[Subscription] = set()
        self._last: RunResult | None = None
        self._run_task: asyncio.Task[RunResult] | None = None
        self._spec_dir: str | None = None
        self._document = openapi([op for op, _ in OPERATIONS])
        #: event seq -> its SSE frame, oldest first (:meth:`_frame`)
        self._frames: dict[int, bytes] = {}

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'https' if self.tls else 'http'}://{host}:{self.port}"

    async def start(self) -> None:
        app = web.Application(middlewares=[self._guard], client_max_size=8 * 1024 * 1024)
        for op, fn in OPERATIONS:
            app.router.add_route(op.method, op.route, self._route(op, fn))
        app.router.add_get("/openapi.json", self._openapi)
        if self.front is not None:
            self.front.add_routes(app)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, ssl_context=self.tls, reuse_address=True)
        await site.start()
        server = site._server
        if server is not None and self.port == 0:
            sockets = getattr(server, "sockets", None) or []
            if sockets:
                self.port = sockets[0].getsockname()[1]

    async def close(self) -> None:
        for sub in list(self._streams):
            sub.close()
        if self._runner is not None:
            await self._runner.cleanup()
        if self._spec_dir is not None:
            shutil.rmtree(self._spec_dir, ignore_errors=True)

    @web.middleware
    async def _guard(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        admitted: bool | web.StreamResponse = token_matches(request.headers.get("Authorization"), self._token)
        if not admitted and self.front is not None:
            admitted = self.front.admit(request)
        if isinstance(admitted, web.StreamResponse):
            return admitted
        if not admitted:
            response = _error(401, "unauthorized", "a valid 'Authorization: Bearer TOKEN' header is required")
            response.headers["WWW-Authenticate"] = "Bearer"
            return response
        try:
            return await handler(request)
        except web.HTTPException as exc:
            response = _error(exc.status, _snake(exc.__class__.__name__.removeprefix("HTTP")), exc.reason)
            if "Allow" in exc.headers:  # a 405 says which methods the resource has
                response.headers["Allow"] = exc.headers["Allow"]
            return response

    async def _openapi(self, request: web.Request) -> web.StreamResponse:
        return web.json_response(self._document)

    def _route(self, op: Operation, fn: Handler) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def serve(request: web.Request) -> web.StreamResponse:
            try:
                body: Any = None
                if op.body is not None:
                    raw = await request.read()
                    body = op.body.model_validate_json(raw or b"{}")
                result = await fn(self, request, body)
            except (ConnectionError, asyncio.CancelledError):
                raise
            except Exception as exc:
                status, code, message = error_of(exc)
                if status == 500:
                    log.exception("HTTP %s %s failed", op.method, op.path)
                return _error(status, code, message)
            if isinstance(result, web.StreamResponse):
                return result
            return web.json_response(result)

        return serve

    # --- runs -------------------------------------------------------------------------------------------------

    async def start_run(self, body: RunBody) -> dict[str, Any]:
        started: asyncio.Future[RunDir] = asyncio.get_running_loop().create_future()
        notices: list[str] = []
        task = self.owner.spawn(
            self.controller.run(hosts=body.hosts, seed=body.seed, on_start=started.set_result, on_notice=notices.append)
        )
        await asyncio.wait({started, task}, return_when=asyncio.FIRST_COMPLETED)
        if not started.done():
            task.result()  # the refusal
            raise PlushError("the run ended before it started")
        self._run_task = task
        task.add_done_callback(self._ended)
        rundir = started.result()
        return {"run": rundir.run_id, "results": str(rundir.root), "notices": notices}

    def _ended(self, task: asyncio.Task[RunResult]) -> None:
        if not task.cancelled() and task.exception() is None:
            self._last = task.result()

    async def run_status(self) -> dict[str, Any]:
        control = self.controller.info("control")
        task = self._run_task
        if task is not None and not task.done() and not control["running"]:
            # the run has ended (run.finished was sent) and is writing its report: answer once it is written
            await asyncio.wait({task})
        last = self._last
        latest = max((e.seq for e in self.controller.bus.history()), default=0)
        out: dict[str, Any] = {
            "running": control["running"],
            "run": control["run"],
            "runs": control["runs"],
            "event": latest,
            "last": None,
        }
        if last is not None:
            out["last"] = {
                **run_summary(last),
                "failures": last.report.to_dict() if last.report is not None else None,
            }
        return out

    def load_text(self, text: str, form: str) -> Any:
        if self._spec_dir is None:
            self._spec_dir = tempfile.mkdtemp(prefix="plush-spec-")
        path = Path(self._spec_dir) / f"application.{form}"
        path.write_text(text)
        return self.controller.load(path)

    # --- the event stream ---------------------------------------------------------------------------------------

    def _frame(self, event: Event) -> bytes:
        """The SSE frame of ``event``, encoded once for all subscribers (the latest :data:`FRAMES` kept)."""
        frame = self._frames.get(event.seq)
        if frame is None:
            data = json.dumps(wire_event(event), separators=(",", ":"))
            ident = f"id: {event.seq}\n" if journaled(event.name) else ""
            frame = self._frames[event.seq] = f"{ident}event: {event.name}\ndata: {data}\n\n".encode()
            if len(self._frames) > FRAMES:
                del self._frames[next(iter(self._frames))]
        return frame

    async def stream(self, request: web.Request) -> web.StreamResponse:
        def listed(name: str) -> list[str] | None:
            values = [v for each in request.query.getall(name, []) for v in each.split(",") if v]
            return values or None

        last = request.headers.get("Last-Event-ID") or request.query.get("last_event_id")
        since: int | None = None
        if last:
            if not last.isdigit():
                raise PlushError(f"Last-Event-ID {last!r} is not an event id")
            since = int(last)
        sub = self.controller.subscribe(listed("kind"), listed("host"), listed("block"), since=since)
        self._streams.add(sub)
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        try:
            await response.prepare(request)
            await response.write(b": plush events\n\n")
            while (event := await sub.get()) is not None:
                # what came meanwhile goes in the same write; each frame is encoded once for every subscriber
                await response.write(b"".join(self._frame(e) for e in (event, *sub.drain_nowait())))
        except (ConnectionError, asyncio.CancelledError):
            pass  # the client went away, or the server closes
        finally:
            sub.close()
            self._streams.discard(sub)
        return response


# --- the operations ---------------------------------------------------------------------------------------------


@operation("GET", "/v1/hosts", "Every host of the pool and of the mesh, with its state", answer=A.Hosts)
async def list_hosts(api: HttpApi, request: web.Request, body: None) -> Any:
    return api.controller.info("nodes")


@operation(
    "POST",
    "/v1/hosts",
    "Add a host to the pool (a resource directory's fields); connect it if asked",
    HostBody,
    answer=A.Added,
)
async def add_host(api: HttpApi, request: web.Request, body: HostBody) -> Any:
    host = host_of(body)
    api.controller.add_node(host)
    if body.connect:
        await api.controller.connect([host])
    return {"added": host.name}


def host_of(body: HostBody) -> Host:
    """The Host a directory entry with these fields is (a pool file's rules: names, ports, properties)."""
    fields: dict[str, str | None] = {"hostname": body.hostname, **body.properties}
    if body.group is not None:
        fields["group"] = body.group
    if body.user is not None:
        fields["user"] = body.user
    spot = Spot(None, None, "node")
    hosts, problems = hosts_from_entries([Entry(fields, body.type, spot, spot)], file=None)
    if problems:
        raise BadHost("; ".join(p.message + (f" ({p.hint})" if p.hint else "") for p in problems))
    found = list(hosts)
    if len(found) != 1:
        raise PlushError(f"{body.hostname!r} names {len(found)} hosts: add them one by one")
    return found[0]


@operation(
    "POST",
    "/v1/hosts/connect",
    "Connect hosts: a number of local sandbox hosts or pool names",
    ConnectBody,
    answer=A.Connected,
)
async def connect_hosts(api: HttpApi, request: web.Request, body: ConnectBody) -> Any:
    return {"connected": await api.controller.connect(body.hosts)}


@operation(
    "POST",
    "/v1/resources",
    "Create the hosts the application's netns resources ask for; connect the pool",
    ResourcesBody,
    answer=A.Created,
)
async def create_resources(api: HttpApi, request: web.Request, body: ResourcesBody) -> Any:
    return (await api.controller.create_resources(hosts=body.hosts)).to_dict()


class BadHost(PlushError):
    """A host's fields that a pool file would refuse (the problems, without a file's location)."""

    exit_code = 2


def _known(api: HttpApi, name: str) -> None:
    if name not in {node["name"] for node in api.controller.info("nodes")}:
        raise PlushError(f"no host named {name!r}")


@operation("DELETE", "/v1/hosts/{name}", "Disconnect a host and remove it from the pool", answer=A.Removed)
async def remove_host(api: HttpApi, request: web.Request, body: None) -> Any:
    name = request.match_info["name"]
    _known(api, name)
    await api.controller.remove_node(name)
    return {"removed": name}


@operation("POST", "/v1/hosts/{name}/fail", "Mark a host of the run in progress failed", answer=A.Failed)
async def fail_host(api: HttpApi, request: web.Request, body: None) -> Any:
    api.controller.fail_host(request.match_info["name"])
    return {"failed": request.match_info["name"]}


@operation("GET", "/v1/application", "The loaded application: components, blocks, its run", answer=A.AppAnswer)
async def get_app(api: HttpApi, request: web.Request, body: None) -> Any:
    return api.controller.info("app")


@operation("GET", "/v1/application/tree", "The loaded application's block tree and DAG", answer=A.TreeAnswer)
async def get_tree(api: HttpApi, request: web.Request, body: None) -> Any:
    return api.controller.tree()


@operation(
    "GET",
    "/v1/application/states",
    "Each host of the run in progress (or the last): its phase and its blocks' states, as of event 'event'",
    answer=A.States,
)
async def get_states(api: HttpApi, request: web.Request, body: None) -> Any:
    return api.controller.states()


@operation(
    "PUT",
    "/v1/application",
    "Load an application: a spec file's path, or its text (XML or YAML)",
    LoadBody,
    answer=A.Loaded,
    errors=(400, 409, 422),
)
async def load_app(api: HttpApi, request: web.Request, body: LoadBody) -> Any:
    if (body.path is None) == (body.text is None):
        raise PlushError("give the spec's 'path' or its 'text', not both")
    project = api.controller.load(body.path) if body.path is not None else api.load_text(body.text or "", body.format)
    return {"application": project.name, "spec": project.source}


@operation(
    "POST",
    "/v1/runs",
    "Start the loaded application; answers once it started",
    RunBody,
    answer=A.RunStarted,
    errors=(400, 409, 422),
)
async def start_run(api: HttpApi, request: web.Request, body: RunBody) -> Any:
    return await api.start_run(body)


@operation(
    "GET",
    "/v1/runs/current",
    "Whether a run is in progress, and the last run's summary and report",
    answer=A.RunStatusAnswer,
)
async def run_status(api: HttpApi, request: web.Request, body: None) -> Any:
    return await api.run_status()


def _running(api: HttpApi) -> None:
    if not api.controller.info("control")["running"]:
        raise PlushError("no application is running")


@operation(
    "POST",
    "/v1/runs/current/stop",
    "Stop the run in progress (a requested, clean end)",
    ReasonBody,
    answer=A.Nothing,
)
async def stop_run(api: HttpApi, request: web.Request, body: ReasonBody) -> Any:
    _running(api)
    api.controller.stop(body.reason or "stopped by request")
    return {}


@operation("POST", "/v1/runs/current/abort", "Abort the run in progress (a failure)", ReasonBody, answer=A.Nothing)
async def abort_run(api: HttpApi, request: web.Request, body: ReasonBody) -> Any:
    _running(api)
    api.controller.abort(body.reason or "aborted by the user")
    return {}


@operation(
    "GET",
    "/v1/barriers",
    "The barriers of the run in progress (or the last): counts and state",
    answer=A.Barriers,
)
async def barriers(api: HttpApi, request: web.Request, body: None) -> Any:
    return api.controller.info("control")["barriers"]


@operation("POST", "/v1/barriers/{name}/release", "Release a barrier of the run in progress", answer=A.Released)
async def release(api: HttpApi, request: web.Request, body: None) -> Any:
    _running(api)
    api.controller.release_barrier(request.match_info["name"])
    return {"released": request.match_info["name"]}


@operation(
    "POST",
    "/v1/exec",
    "Run one command on the selected connected hosts (the distributed shell)",
    ExecBody,
    answer=A.ExecAnswer,
)
async def exec_(api: HttpApi, request: web.Request, body: ExecBody) -> Any:
    from plush.controller.execs import EXEC_LIMIT

    result = await api.controller.exec(
        body.cmd,
        body.hosts,
        group=body.group,
        exclude=body.exclude,
        timeout=body.timeout,
        shell=body.shell,
        limit=body.limit if body.limit is not None else EXEC_LIMIT,
    )
    return {**result.to_dict(), "status": result.status}


@operation(
    "GET",
    "/v1/events",
    "Server-Sent Events (resumable with Last-Event-ID)",
    query=("kind", "host", "block"),
    media="text/event-stream",
)
async def events(api: HttpApi, request: web.Request, body: None) -> Any:
    return await api.stream(request)


@operation("POST", "/v1/quit", "Quit the controller: stop the run, disconnect every host", ReasonBody, answer=A.Quit)
async def quit_(api: HttpApi, request: web.Request, body: ReasonBody) -> Any:
    api.owner.quit(body.reason or "quit requested over HTTP")
    return {"quit": api.owner.name}


from plush.api import http_runs  # noqa: E402, F401  (registers the operations on the runs' results)
