"""``plush serve --xmlrpc``: Plush's XML-RPC API, with its names, and its callbacks to registered clients.

Role: the paper's programmatic interface, unchanged (../shared/PLUSH-FORMAT.md, "XML-RPC API"), thin over
:class:`plush.Controller`: ``POST /`` or ``/RPC2``. Methods: ``plushTestConnection`` -> ``"Hello World"``,
``plushAddNode(struct)`` (a resource directory ``<node>``'s fields; ``type`` local or ssh) -> its name,
``plushRemoveNode(hostname)``, ``plushCreateResources()`` (the hosts the loaded application's ``netns``
resources ask for made, then every pool host not connected connected: :meth:`~plush.Controller.create_resources`)
-> how many are connected, ``plushLoadApp(filename)`` -> the application's name, ``plushRunApp()`` -> the run's id,
``plushDisconnectApp(hostname)``, ``plushFailHost(hostname)``, ``plushQuit()``, ``setXmlRpcClientUrl(url)``:
each returns a value, never None (``True`` when there is nothing to say). A refusal is a fault whose code is the
exit status the CLI gives and whose string is the CLI's words.

Callbacks (:class:`Callbacks`, a sink of the event bus: it never awaits): ``sendResourceMatching(struct)``
(component -> host names) when a run starts, ``sendHostStatus(host, state)`` when a host's lifecycle state
changes, ``sendBlockStatus(blockpath, host, state)`` (started, completed, failed, skipped),
``sendApplicationExit(status)`` (completed, failed, aborted, stopped), ``sendPlushError(message)`` (a host
failed, the run aborted). Each client (one per URL) has a bounded queue (:data:`QUEUE`; when full the oldest
call is dropped and counted in ``dropped``) and one task delivering in order, each call retried with back-off
(:data:`RETRIES` times, then dropped and counted): the controller never waits for a client.

Invariants: incoming XML is parsed with defusedxml's parser (no DTD entities, no external references); the
listener is loopback unless the user said otherwise (XML-RPC has no authentication: docs/api.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import xmlrpc.client
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from aiohttp import web
from defusedxml.xmlrpc import DefusedExpatParser

from plush.api.handlers import ServerSide
from plush.api.http import host_of
from plush.api.models import HostBody
from plush.controller.api import Controller
from plush.controller.catalogue import (
    APP_ABORTED,
    BLOCK_COMPLETED,
    BLOCK_FAILED,
    BLOCK_SKIPPED,
    BLOCK_STARTED,
    HOST_FAILED,
    RUN_FINISHED,
    RUN_STARTED,
)
from plush.controller.events import Event
from plush.errors import PlushError

__all__ = ["QUEUE", "RETRIES", "Callbacks", "ClientQueue", "XmlRpcApi", "parse_call"]

log = logging.getLogger(__name__)

#: calls queued per client at most
QUEUE = 1000
#: attempts of one call before it is dropped
RETRIES = 6
#: the first back-off (seconds), doubled up to :data:`BACKOFF_MAX`
BACKOFF = 0.1
BACKOFF_MAX = 5.0
#: the largest request accepted
MAX_BODY = 1024 * 1024

_BLOCK_STATES = {
    BLOCK_STARTED: "started",
    BLOCK_COMPLETED: "completed",
    BLOCK_FAILED: "failed",
    BLOCK_SKIPPED: "skipped",
}


def parse_call(body: bytes) -> tuple[str, tuple[Any, ...]]:
    """(method name, params) of an XML-RPC request, parsed by defusedxml's expat parser; ValueError else."""
    unmarshaller = xmlrpc.client.Unmarshaller()
    parser = DefusedExpatParser(unmarshaller)
    try:
        parser.feed(body)
        parser.close()
        params = unmarshaller.close()
    except Exception as exc:
        raise ValueError(f"not an XML-RPC call: {exc}") from None
    method = unmarshaller.getmethodname()
    if not method:
        raise ValueError("not an XML-RPC call: no method name")
    return method, params


class ClientQueue:
    """One client's callbacks: queued in order, delivered by one task, retried with back-off."""

    def __init__(self, url: str, session: aiohttp.ClientSession) -> None:
        self.url = url
        self._session = session
        self._queue: deque[tuple[str, tuple[Any, ...]]] = deque()
        self._ready = asyncio.Event()
        self.dropped = 0
        self.delivered = 0
        self._task = asyncio.get_running_loop().create_task(self._deliver())

    def put(self, method: str, params: tuple[Any, ...]) -> None:
        if len(self._queue) >= QUEUE:
            self._queue.popleft()
            self.dropped += 1
        self._queue.append((method, params))
        self._ready.set()

    async def _deliver(self) -> None:
        while True:
            while not self._queue:
                self._ready.clear()
                await self._ready.wait()
            item = self._queue[0]
            method, params = item
            body = xmlrpc.client.dumps(params, method, allow_none=False).encode()
            delay = BACKOFF
            for attempt in range(RETRIES):
                try:
                    async with self._session.post(
                        self.url, data=body, headers={"Content-Type": "text/xml"}, timeout=aiohttp.ClientTimeout(10)
                    ) as reply:
                        await reply.read()
                        if reply.status < 500:
                            self.delivered += 1
                            break
                except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                    log.debug("callback %s to %s failed (attempt %d): %s", method, self.url, attempt + 1, exc)
                if attempt + 1 < RETRIES:
                    await asyncio.sleep(delay)  # the back-off between attempts
                    delay = min(delay * 2, BACKOFF_MAX)
            else:
                self.dropped += 1
            if self._queue and self._queue[0] is item:  # (not dropped meanwhile by a full queue)
                self._queue.popleft()

    async def close(self) -> None:
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)


class Callbacks:
    """The bus sink that turns events into callbacks to every registered client."""

    def __init__(self, controller: Controller) -> None:
        self.controller = controller
        self.clients: dict[str, ClientQueue] = {}
        self._session: aiohttp.ClientSession | None = None
        self._states: dict[str, str] = {}
        self._aborted = False

    def register(self, url: str) -> None:
        if not url.startswith(("http://", "https://")):
            raise PlushError(f"{url!r} is not an http:// or https:// URL")
        if url not in self.clients:
            if self._session is None:
                self._session = aiohttp.ClientSession()
            self.clients[url] = ClientQueue(url, self._session)

    def send(self, method: str, *params: Any) -> None:
        for client in self.clients.values():
            client.put(method, params)

    def __call__(self, event: Event) -> None:
        if not self.clients:
            return
        try:
            self._translate(event)
        except Exception:  # a sink must never disturb the bus: the event goes on to the others
            log.exception("XML-RPC callbacks: event %s not translated", event.name)

    def _translate(self, event: Event) -> None:
        name = event.name
        if name == RUN_STARTED:
            self._aborted = False
            self.send("sendResourceMatching", self.matching())
        elif name in _BLOCK_STATES:
            self.send("sendBlockStatus", event.block or "", event.host or "", _BLOCK_STATES[name])
        elif name == APP_ABORTED:
            self._aborted = True
            self.send("sendPlushError", str(event.data.get("reason", "the application was aborted")))
        elif name == HOST_FAILED:
            self.send("sendPlushError", f"host {event.host} failed: {event.data.get('reason', '')}")
        elif name == RUN_FINISHED:
            data = event.data
            status = "completed" if data.get("ok") else "stopped" if data.get("stopped") else None
            self.send("sendApplicationExit", status or ("aborted" if self._aborted else "failed"))
        if event.host is not None and name.startswith("host."):
            self._host_state(event.host)

    def _host_state(self, host: str) -> None:
        mesh = self.controller.mesh
        engine = self.controller.engine
        member = mesh.members.get(host) if mesh is not None else None
        if member is None and engine is not None:
            member = engine.mesh.members.get(host)
        if member is None:
            return
        state = str(member.state)
        if self._states.get(host) != state:
            self._states[host] = state
            self.send("sendHostStatus", host, state)

    def matching(self) -> dict[str, list[str]]:
        engine = self.controller.engine
        out: dict[str, list[str]] = {}
        if engine is not None:
            for name in engine.hosts:
                out.setdefault(engine.hosts[name].component, []).append(name)
        return out

    async def close(self) -> None:
        for client in self.clients.values():
            await client.close()
        if self._session is not None:
            await self._session.close()


Method = Callable[..., Awaitable[Any]]


class XmlRpcApi:
    """The XML-RPC listener of one controller (see the module)."""

    def __init__(self, controller: Controller, owner: ServerSide, host: str, port: int) -> None:
        self.controller = controller
        self.owner = owner
        self.host = host
        self.port = port
        self.callbacks = Callbacks(controller)
        self._runner: web.AppRunner | None = None
        self.methods: dict[str, Method] = {
            "plushTestConnection": self.test_connection,
            "plushAddNode": self.add_node,
            "plushRemoveNode": self.remove_node,
            "plushCreateResources": self.create_resources,
            "plushLoadApp": self.load_app,
            "plushRunApp": self.run_app,
            "plushDisconnectApp": self.disconnect_app,
            "plushFailHost": self.fail_host,
            "plushQuit": self.quit,
            "setXmlRpcClientUrl": self.set_client_url,
        }

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/RPC2"

    async def start(self) -> None:
        app = web.Application(client_max_size=MAX_BODY)
        app.router.add_post("/", self._call)
        app.router.add_post("/RPC2", self._call)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, reuse_address=True)
        await site.start()
        server = site._server
        sockets = getattr(server, "sockets", None) or []
        if sockets and self.port == 0:
            self.port = sockets[0].getsockname()[1]
        self.controller.bus.add_sink(self.callbacks)

    async def close(self) -> None:
        with contextlib.suppress(ValueError):
            self.controller.bus.remove_sink(self.callbacks)
        await self.callbacks.close()
        if self._runner is not None:
            await self._runner.cleanup()

    async def _call(self, request: web.Request) -> web.StreamResponse:
        try:
            method, params = parse_call(await request.read())
        except ValueError as exc:
            return _xml(xmlrpc.client.dumps(xmlrpc.client.Fault(2, str(exc))))
        fn = self.methods.get(method)
        try:
            if fn is None:
                raise PlushError(f"no method {method!r} (this server has: {', '.join(sorted(self.methods))})")
            result = await fn(*params)
        except TypeError as exc:
            fault = xmlrpc.client.Fault(2, f"{method}: {exc}")
        except PlushError as exc:
            fault = xmlrpc.client.Fault(exc.exit_code, str(exc))
        except Exception as exc:
            log.exception("XML-RPC %s failed", method)
            fault = xmlrpc.client.Fault(1, f"internal error: {exc!r}")
        else:
            return _xml(xmlrpc.client.dumps((result,), methodresponse=True, allow_none=False))
        self.callbacks.send("sendPlushError", fault.faultString)
        return _xml(xmlrpc.client.dumps(fault, methodresponse=True))

    # --- the methods ----------------------------------------------------------------------------------------------

    async def test_connection(self) -> str:
        return "Hello World"

    async def add_node(self, entry: dict[str, Any]) -> str:
        if not isinstance(entry, dict) or "hostname" not in entry:
            raise PlushError("plushAddNode takes a struct with a hostname")
        known = {"hostname", "type", "group", "user"}
        body = HostBody(
            hostname=str(entry["hostname"]),
            type=str(entry.get("type", "local")),  # type: ignore[arg-type]
            group=str(entry["group"]) if "group" in entry else None,
            user=str(entry["user"]) if "user" in entry else None,
            properties={str(k): str(v) for k, v in entry.items() if k not in known},
            connect=False,
        )
        host = host_of(body)
        self.controller.add_node(host)
        return str(host.name)

    async def remove_node(self, hostname: str) -> bool:
        await self.controller.remove_node(str(hostname))
        return True

    async def create_resources(self) -> int:
        await self.controller.create_resources()
        return sum(1 for n in self.controller.info("nodes") if n["state"] not in ("pooled", "gone", "failed"))

    async def load_app(self, filename: str) -> str:
        return self.controller.load(str(filename)).name

    async def run_app(self) -> str:
        started: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        task = self.owner.spawn(self.controller.run(on_start=lambda rundir: started.set_result(rundir.run_id)))
        await asyncio.wait({started, task}, return_when=asyncio.FIRST_COMPLETED)
        if not started.done():
            task.result()
            raise PlushError("the run ended before it started")
        return started.result()

    async def disconnect_app(self, hostname: str) -> bool:
        await self.controller.disconnect([str(hostname)])
        return True

    async def fail_host(self, hostname: str) -> bool:
        self.controller.fail_host(str(hostname))
        return True

    async def quit(self) -> bool:
        self.owner.quit("plushQuit")
        return True

    async def set_client_url(self, url: str) -> bool:
        self.callbacks.register(str(url))
        return True


def _xml(text: str) -> web.Response:
    return web.Response(text=text, content_type="text/xml")
