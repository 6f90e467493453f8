"""``plush.client``: the HTTP API of a ``plush serve --http`` from another process or machine, async and sync.

Role: what an experiment script uses where the in-process :class:`plush.Controller` is out of reach. One
method per operation of docs/api.md (:class:`AsyncClient`, over aiohttp) and the event stream as an async
iterator (:meth:`AsyncClient.events`, resumed with ``Last-Event-ID`` after a broken connection: no journaled
event missed); :class:`Client` is the same calls, blocking (its own event loop, for scripts and notebooks).
A refusal raises :class:`ApiError` with the server's ``code``, HTTP ``status`` and words.

The token: given, or read from ``$XDG_STATE_HOME/plush/api-token`` (the one ``plush serve --show-token``
prints, on the same machine and user); ``cafile``: the controller's CA certificate, for an ``https://`` API.
"""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import AsyncGenerator, AsyncIterator, Iterator
from pathlib import Path
from types import TracebackType
from typing import Any, NoReturn
from urllib.parse import quote

import aiohttp

from plush.config import state_dir
from plush.errors import PlushError

__all__ = ["ApiError", "AsyncClient", "Client"]

#: the event stream has no end but the controller's
_FOREVER = aiohttp.ClientTimeout()


class ApiError(PlushError):
    """The API refused a request: ``code`` (stable), ``status`` (HTTP) and the message the CLI would print."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


def _token(token: str | None) -> str:
    if token is not None:
        return token
    path = state_dir() / "api-token"
    try:
        return path.read_text().strip()
    except OSError as exc:
        raise PlushError(f"no API token given and none readable at {path}: {exc.strerror}") from None


class AsyncClient:
    """The HTTP API at ``url`` (``http://127.0.0.1:PORT``); use ``async with`` (or :meth:`close`)."""

    def __init__(self, url: str, token: str | None = None, *, cafile: str | Path | None = None) -> None:
        self.url = url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {_token(token)}"}
        self._ssl: ssl.SSLContext | bool = ssl.create_default_context(cafile=str(cafile)) if cafile else True
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _the_session(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(headers=self._headers)
        return self._session

    async def request(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        """One operation: its JSON answer, or :class:`ApiError`."""
        async with self._the_session().request(method, self.url + path, json=body, ssl=self._ssl) as reply:
            if reply.status >= 400:
                await _refusal(reply)
            return await reply.json(content_type=None)

    # --- hosts ----------------------------------------------------------------------------------------------------

    async def hosts(self) -> list[dict[str, Any]]:
        return await self.request("GET", "/v1/hosts")  # type: ignore[no-any-return]

    async def add_host(self, hostname: str, type: str = "local", *, connect: bool = False, **fields: Any) -> str:
        """Add a host (a directory entry: ``group``, ``user``, ``properties``); ``connect``: start its agent."""
        body = {"hostname": hostname, "type": type, "connect": connect, **fields}
        return str((await self.request("POST", "/v1/hosts", body))["added"])

    async def connect(self, hosts: int | list[str]) -> list[str]:
        return list((await self.request("POST", "/v1/hosts/connect", {"hosts": hosts}))["connected"])

    async def remove_host(self, name: str) -> None:
        await self.request("DELETE", f"/v1/hosts/{name}")

    async def fail_host(self, name: str) -> None:
        await self.request("POST", f"/v1/hosts/{name}/fail")

    # --- the application and its runs ------------------------------------------------------------------------------

    async def load(self, path: str | Path | None = None, *, text: str | None = None, format: str = "xml") -> str:
        """Load a spec: ``path`` on the controller's machine, or its ``text``; answers the application's name."""
        body: dict[str, Any] = {"path": str(path)} if path is not None else {"text": text, "format": format}
        return str((await self.request("PUT", "/v1/application", body))["application"])

    async def application(self) -> dict[str, Any]:
        return await self.request("GET", "/v1/application")  # type: ignore[no-any-return]

    async def tree(self) -> dict[str, Any]:
        """The loaded application's block tree and DAG: ``components``, ``blocks`` (each with its ``path``),
        ``barriers``, ``edges`` (``from`` -> ``to``) and ``order`` (each component block's levels)."""
        return await self.request("GET", "/v1/application/tree")  # type: ignore[no-any-return]

    async def run(self, hosts: dict[str, int] | None = None, seed: int | None = None) -> dict[str, Any]:
        """Start the loaded application: ``{"run", "results", "notices"}`` once it started."""
        return await self.request("POST", "/v1/runs", {"hosts": hosts, "seed": seed})  # type: ignore[no-any-return]

    async def status(self) -> dict[str, Any]:
        """``running``, ``run``, ``event`` (the latest event id) and ``last``: the last run's summary and report."""
        return await self.request("GET", "/v1/runs/current")  # type: ignore[no-any-return]

    async def run_to_end(self, hosts: dict[str, int] | None = None, seed: int | None = None) -> dict[str, Any]:
        """Start the loaded application, wait for its end (through the event stream), answer its summary."""
        cursor = (await self.status())["event"]
        started = await self.run(hosts, seed)
        async for event in self.events(kinds=["run.finished"], last_event_id=cursor):
            if event.get("data", {}).get("run", started["run"]) == started["run"]:
                break
        return (await self.status())["last"]  # type: ignore[no-any-return]

    # --- the runs' results ------------------------------------------------------------------------------------------

    async def runs(self) -> list[dict[str, Any]]:
        """Every run of the controller's runs directory, oldest first: ``run``, ``state``, ``reason``, ``results``."""
        return await self.request("GET", "/v1/runs")  # type: ignore[no-any-return]

    async def run_status(self, run: str) -> dict[str, Any]:
        """One run's status: ``outcome``, ``ok``, ``reason``, times, ``hosts``, ``failures``."""
        return await self.request("GET", f"/v1/runs/{quote(run, safe='')}")  # type: ignore[no-any-return]

    async def report(self, run: str) -> dict[str, Any]:
        """One run's failure report (``plush report --json``)."""
        return await self.request("GET", f"/v1/runs/{quote(run, safe='')}/report")  # type: ignore[no-any-return]

    async def timeline(self, run: str) -> dict[str, Any]:
        """One run's timeline: per host rows of spans and marks, as report.html draws it (docs/api.md)."""
        return await self.request("GET", f"/v1/runs/{quote(run, safe='')}/timeline")  # type: ignore[no-any-return]

    async def files(self, run: str) -> list[dict[str, Any]]:
        """One run's logs and collected outputs: ``path``, ``host``, ``kind`` (``log``/``output``), ``size``."""
        return await self.request("GET", f"/v1/runs/{quote(run, safe='')}/files")  # type: ignore[no-any-return]

    async def file(self, run: str, path: str) -> bytes:
        """One log or output of a run (``path`` as :meth:`files` gives it), whole."""
        return b"".join([chunk async for chunk in self.file_chunks(run, path)])

    async def save_file(self, run: str, path: str, dest: str | Path) -> Path:
        """One log or output of a run, streamed into the local file ``dest``; answers ``dest``."""
        dest = Path(dest)
        with dest.open("wb") as out:
            async for chunk in self.file_chunks(run, path):
                out.write(chunk)
        return dest

    async def file_chunks(self, run: str, path: str) -> AsyncIterator[bytes]:
        """One log or output of a run, as the chunks that come."""
        url = f"{self.url}/v1/runs/{quote(run, safe='')}/file"
        async with self._the_session().get(url, params={"path": path}, ssl=self._ssl) as reply:
            if reply.status >= 400:
                await _refusal(reply)
            async for chunk in reply.content.iter_any():
                yield chunk

    async def stop(self, reason: str | None = None) -> None:
        await self.request("POST", "/v1/runs/current/stop", {"reason": reason})

    async def abort(self, reason: str | None = None) -> None:
        await self.request("POST", "/v1/runs/current/abort", {"reason": reason})

    async def barriers(self) -> list[dict[str, Any]]:
        """The barriers of the run in progress (or the last): counts, released, reason."""
        return await self.request("GET", "/v1/barriers")  # type: ignore[no-any-return]

    async def release(self, barrier: str) -> None:
        await self.request("POST", f"/v1/barriers/{barrier}/release")

    async def exec(self, cmd: list[str] | str, hosts: str | None = None, **options: Any) -> dict[str, Any]:
        """The distributed shell: every host's result (``group``, ``exclude``, ``timeout``, ``shell``, ``limit``)."""
        return await self.request("POST", "/v1/exec", {"cmd": cmd, "hosts": hosts, **options})  # type: ignore[no-any-return]

    async def quit(self, reason: str | None = None) -> None:
        await self.request("POST", "/v1/quit", {"reason": reason})

    # --- the event stream -------------------------------------------------------------------------------------------

    async def events(
        self,
        kinds: list[str] | None = None,
        hosts: list[str] | None = None,
        blocks: list[str] | None = None,
        *,
        last_event_id: int | None = None,
        retries: int = 5,
    ) -> AsyncIterator[dict[str, Any]]:
        """Events as they come (each the wire form with ``id`` when journaled), after ``last_event_id``; a broken
        connection is resumed from the last id seen, up to ``retries`` times in a row."""
        query = [
            (name, ",".join(values)) for name, values in (("kind", kinds), ("host", hosts), ("block", blocks)) if values
        ]
        failures = 0
        while True:
            headers = {"Last-Event-ID": str(last_event_id)} if last_event_id is not None else {}
            try:
                async with self._the_session().get(
                    self.url + "/v1/events",
                    params=query,
                    headers=headers,
                    ssl=self._ssl,
                    timeout=aiohttp.ClientTimeout(),
                ) as reply:
                    if reply.status >= 400:
                        await _refusal(reply)
                    failures = 0
                    frame: dict[str, str] = {}
                    async for raw in reply.content:
                        line = raw.decode().rstrip("\n")
                        if line.startswith(":"):
                            continue
                        if line:
                            key, _, value = line.partition(": ")
                            frame[key] = value
                            continue
                        if "data" in frame:
                            event = json.loads(frame["data"])
                            if "id" in frame:
                                last_event_id = event["id"] = int(frame["id"])
                            yield event
                        frame = {}
                    return  # the server ended the stream (it quit)
            except (aiohttp.ClientPayloadError, aiohttp.ServerDisconnectedError, aiohttp.ClientConnectionError):
                failures += 1
                if failures > retries:
                    raise
                await asyncio.sleep(min(0.1 * 2**failures, 5.0))  # back-off before resuming


class Client:
    """:class:`AsyncClient`'s calls, blocking. Use ``with`` (or :meth:`close`)."""

    def __init__(self, url: str, token: str | None = None, *, cafile: str | Path | None = None) -> None:
        self._runner = asyncio.Runner()
        self._async = AsyncClient(url, token, cafile=cafile)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        self._runner.run(self._async.close())
        self._runner.close()

    def __getattr__(self, name: str) -> Any:
        call = getattr(self._async, name)
        if name in ("events", "file_chunks") or not callable(call):  # async iterators: use the AsyncClient
            return call

        def blocking(*args: Any, **kwargs: Any) -> Any:
            return self._runner.run(call(*args, **kwargs))

        return blocking

    def events(self, *args: Any, **kwargs: Any) -> Iterator[dict[str, Any]]:
        """The event stream, as a blocking iterator."""
        stream = self._async.events(*args, **kwargs)
        assert isinstance(stream, AsyncGenerator)
        try:
            while True:
                try:
                    yield self._runner.run(_next(stream))
                except StopAsyncIteration:
                    return
        finally:
            self._runner.run(stream.aclose())


async def _refusal(reply: aiohttp.ClientResponse) -> NoReturn:
    """Raise the :class:`ApiError` of an error answer."""
    try:
        answer = await reply.json(content_type=None)
    except ValueError:
        answer = None
    error = answer.get("error", {}) if isinstance(answer, dict) else {}
    raise ApiError(reply.status, error.get("code", "unknown"), error.get("message", str(answer)))


async def _next(stream: AsyncIterator[dict[str, Any]]) -> dict[str, Any]:
    return await stream.__anext__()
