"""The HTTP API's resources on the runs of the runs directory: list, one run's status, failure report and
timeline, its report.html, its logs and outputs (list, and one file streamed). Thin over ``Controller.results``
(:class:`plush.controller.results.RunResults`), registered in :data:`plush.api.routes.OPERATIONS` when
:mod:`plush.api.http` is imported.

Invariants: a run id in a path matches the run id pattern (else the route does not match: 404); a file is
named by the ``path`` query parameter, checked and opened by :meth:`RunResults.open` (no ``..``, no absolute
path, no link followed, a regular file under a host's ``logs/`` or ``outputs/``): a refused path is 400, a
missing run or file 404; a file is streamed in chunks read off the event loop, never held whole in memory.
A run's report.html (:meth:`RunResults.page`, opened the same way) is served as ``text/html`` with the
Content-Security-Policy of :func:`plush.controller.reportpage.served_policy` (its own inline scripts and style
only, in a sandbox: an opaque origin, so the page can do nothing on the API's origin), ``nosniff`` and no
referrer.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from plush.api import answers as A
from plush.api.routes import Served, operation
from plush.controller.reportpage import served_policy
from plush.controller.results import RUN_ID

__all__ = ["CHUNK"]

#: bytes read and sent at a time when a file is streamed
CHUNK = 256 * 1024
_RUN = (("run", RUN_ID),)
_LOOKUP = (400, 404)


@operation("GET", "/v1/runs", "The runs of the runs directory, oldest first, with their state", answer=A.Runs)
async def list_runs(api: Served, request: web.Request, body: None) -> Any:
    return await asyncio.to_thread(api.controller.results.runs)


@operation(
    "GET",
    "/v1/runs/{run}",
    "One run's status (from its journal and status file)",
    answer=A.RunStatus,
    errors=_LOOKUP,
    patterns=_RUN,
)
async def run_status(api: Served, request: web.Request, body: None) -> Any:
    return await asyncio.to_thread(api.controller.results.status, request.match_info["run"])


@operation(
    "GET",
    "/v1/runs/{run}/report",
    "One run's failure report as JSON (plush report --json)",
    answer=A.RunReport,
    errors=_LOOKUP,
    patterns=_RUN,
)
async def run_report(api: Served, request: web.Request, body: None) -> Any:
    report = await asyncio.to_thread(api.controller.results.report, request.match_info["run"])
    return report.to_dict()


@operation(
    "GET",
    "/v1/runs/{run}/timeline",
    "One run's timeline: per host rows (grouped by component, folded) of spans and marks (report.html's)",
    answer=A.RunTimeline,
    errors=_LOOKUP,
    patterns=_RUN,
)
async def run_timeline(api: Served, request: web.Request, body: None) -> Any:
    return await asyncio.to_thread(api.controller.results.timeline, request.match_info["run"])


@operation(
    "GET",
    "/v1/runs/{run}/report.html",
    "One run's report.html (failure report and timeline in one page), sandboxed by its Content-Security-Policy",
    errors=_LOOKUP,
    patterns=_RUN,
    media="text/html",
)
async def run_page(api: Served, request: web.Request, body: None) -> Any:
    page = await asyncio.to_thread(api.controller.results.page, request.match_info["run"])
    policy = served_policy(page.decode("utf-8", errors="replace"))
    headers = {
        "Content-Security-Policy": policy,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-cache",
    }
    return web.Response(body=page, content_type="text/html", charset="utf-8", headers=headers)


@operation(
    "GET",
    "/v1/runs/{run}/files",
    "One run's logs and collected outputs, per host",
    answer=A.ResultFiles,
    errors=_LOOKUP,
    patterns=_RUN,
)
async def run_files(api: Served, request: web.Request, body: None) -> Any:
    return await asyncio.to_thread(api.controller.results.files, request.match_info["run"])


@operation(
    "GET",
    "/v1/runs/{run}/file",
    "One log or output of a run (its path as the file list gives it), streamed",
    errors=_LOOKUP,
    patterns=_RUN,
    query=("path",),
    required=("path",),
    media="application/octet-stream",
)
async def run_file(api: Served, request: web.Request, body: None) -> Any:
    run = request.match_info["run"]
    handle = await asyncio.to_thread(api.controller.results.open, run, request.query.get("path", ""))
    try:
        response = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
        await response.prepare(request)
        while chunk := await asyncio.to_thread(handle.read, CHUNK):
            await response.write(chunk)
        await response.write_eof()
        return response
    finally:
        handle.close()
