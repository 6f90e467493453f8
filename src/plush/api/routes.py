"""The table of the HTTP API's operations: each :class:`~plush.api.models.Operation` with its handler.

Role: the modules that serve resources (:mod:`plush.api.http`, :mod:`plush.api.http_runs`) register their
handlers here with :func:`operation` when imported; :class:`plush.api.http.HttpApi` builds its routes and
``/openapi.json`` from :data:`OPERATIONS`. A handler is called as ``handler(api, request, body)``: ``api`` is
the serving :class:`~plush.api.http.HttpApi` (a handler module needs of it only what :class:`Served` says),
``body`` the validated request model or None.

Invariants: registration order is the order of the routes and of the OpenAPI document; nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import BaseModel

from plush.api.models import Operation

if TYPE_CHECKING:
    from plush.controller.api import Controller

__all__ = ["OPERATIONS", "Handler", "Served", "operation"]

Handler = Callable[..., Awaitable[Any]]
#: every operation and its handler, in the order registered
OPERATIONS: list[tuple[Operation, Handler]] = []


class Served(Protocol):
    """What a handler module needs of the HTTP API serving it: the controller."""

    @property
    def controller(self) -> Controller: ...


def operation(
    method: str, path: str, summary: str, body: type[BaseModel] | None = None, **more: Any
) -> Callable[[Handler], Handler]:
    """Register the decorated handler as an operation (``more``: the other fields of :class:`Operation`)."""

    def register(fn: Handler) -> Handler:
        OPERATIONS.append((Operation(method, path, summary, body, **more), fn))
        return fn

    return register
