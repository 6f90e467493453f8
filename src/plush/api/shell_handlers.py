"""The control socket's requests of the distributed shell: ``exec``, ``copy`` and ``gather`` (``plush exec``,
``plush copy``, ``plush gather`` on a running controller).

Role: thin handlers over :meth:`plush.Controller.exec` in :mod:`plush.api.handlers`' registry (imported at its
end). ``exec`` takes ``cmd`` (the argv, or with ``shell`` the words of a ``sh -c`` line), ``hosts``/``group``/
``exclude`` (host set texts, a group), ``timeout`` (seconds) and ``limit`` (bytes of each stream per host, default
the controller's). Each host's answer is streamed as it comes, one event line ``{"host": NAME, "output":
HostOutput.to_dict()}``; the final line is ``{"result": ExecResult.to_dict(), "addresses": {NAME: ADDRESS}}``
whose ``results`` are empty (the events carried them: a final line stays small however many hosts answer) and
whose addresses let the client fold host-varying output as the cold path does (``-b``).

``copy`` takes ``source`` (an absolute path on the controller's machine: its clients are on it) and ``dest``;
``gather`` takes ``path`` and ``outdir`` (absolute); both take ``hosts``/``group``/``exclude`` and ``timeout``,
and answer with one final line, :meth:`TransferResult.to_dict() <plush.controller.copyresult.TransferResult>`.

Invariants: every event is sent before the final line, in the order the answers came; a client that goes away
does not stop the command (it runs to its end on the hosts, its answers dropped).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any

from plush.api.handlers import Request, handler
from plush.controller.transfers import DEFAULT_TRANSFER_TIMEOUT

if TYPE_CHECKING:
    from plush.controller.gather import HostOutput

__all__ = ["copy", "exec_", "gather"]


@handler("exec")
async def exec_(req: Request) -> Any:
    from plush.controller.execs import EXEC_LIMIT

    answers: asyncio.Queue[HostOutput | None] = asyncio.Queue()

    async def pump() -> None:
        while (out := await answers.get()) is not None:
            with contextlib.suppress(ConnectionError):  # the client went away: the command runs on
                await req.send({"host": out.host, "output": out.to_dict()})

    sending = asyncio.get_running_loop().create_task(pump())
    try:
        result = await req.controller.exec(
            req.arg("cmd", list),
            req.arg("hosts", str, None),
            group=req.arg("group", str, None),
            exclude=req.arg("exclude", str, None),
            timeout=float(req.arg("timeout", (int, float), 60.0)),
            shell=req.arg("shell", bool, False),
            limit=req.arg("limit", int, EXEC_LIMIT),
            on_result=answers.put_nowait,
        )
    finally:
        answers.put_nowait(None)
        await sending
    data = result.to_dict()
    data["results"] = {}
    addresses = {n["name"]: n["address"] for n in req.controller.info("nodes")}
    return {"result": data, "addresses": {n: addresses.get(n) for n in result.hosts}}


def _selection(req: Request) -> dict[str, Any]:
    return {
        "hosts": req.arg("hosts", str, None),
        "group": req.arg("group", str, None),
        "exclude": req.arg("exclude", str, None),
        "timeout": float(req.arg("timeout", (int, float), DEFAULT_TRANSFER_TIMEOUT)),
    }


@handler("copy")
async def copy(req: Request) -> Any:
    result = await req.controller.copy(req.arg("source", str), req.arg("dest", str), **_selection(req))
    return result.to_dict()


@handler("gather")
async def gather(req: Request) -> Any:
    result = await req.controller.gather(req.arg("path", str), req.arg("outdir", str), **_selection(req))
    return result.to_dict()
