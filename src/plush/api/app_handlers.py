"""The control socket's requests that change the application or steer its run beyond the basics: ``restart``
and ``save`` (``plush restart``, ``plush save`` on a running controller), and ``web`` (``plush web``).

Role: thin handlers over :meth:`plush.Controller.restart` and :meth:`plush.Controller.save` in
:mod:`plush.api.handlers`' registry (the server imports this module). ``restart`` takes ``target`` (none: the
application; a host name or host set; a block path) and ``hosts`` (with a block: where), and answers
:meth:`Restarted.to_dict() <plush.controller.restarts.Restarted>` (``what``, ``hosts``, ``block``,
``message``). ``save`` takes ``path`` (absolute: the clients are on the controller's machine) and
``overwrite``, and answers ``{"saved": PATH}``. ``web`` answers ``{"url", "sign_in"}``: the web UI's address
and the one that signs a browser in (with the HTTP API's token: the socket is the same user's only); a
controller without an HTTP listener refuses. A refusal is an error reply (exit status 1).
"""

from __future__ import annotations

from typing import Any

from plush.api.handlers import BadRequest, Request, handler
from plush.errors import PlushError

__all__: list[str] = []


@handler("restart")
async def restart(req: Request) -> Any:
    done = req.controller.restart(req.arg("target", str, None), req.arg("hosts", str, None))
    return done.to_dict()


@handler("save")
async def save(req: Request) -> Any:
    import os

    path = req.arg("path", str)
    if not os.path.isabs(path):
        raise BadRequest(f"save: {path!r} is not an absolute path")
    return {"saved": str(req.controller.save(path, overwrite=req.arg("overwrite", bool, False)))}


@handler("web")
async def web_ui(req: Request) -> Any:
    from urllib.parse import quote

    url, token = req.server.web_url, req.server.web_token
    if url is None or token is None:
        raise PlushError(f"{req.server.name} serves no web UI: start it with plush serve --http [ADDR:]PORT")
    return {"url": url, "sign_in": f"{url}?token={quote(token, safe='')}"}
