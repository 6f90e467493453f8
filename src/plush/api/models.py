"""The HTTP API's request bodies and answers: pydantic models at the edge, and the OpenAPI document written
from them.

Role: what :mod:`plush.api.http` validates each body with, and the schemas of ``/openapi.json``
(:func:`openapi`): one source, so the document cannot drift from what the handlers accept. Models forbid
unknown fields (a typo is a 400, not a silent default). Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import models_json_schema

__all__ = [
    "ConnectBody",
    "ErrorBody",
    "ExecBody",
    "HostBody",
    "LoadBody",
    "Operation",
    "ReasonBody",
    "ResourcesBody",
    "RunBody",
    "openapi",
]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class HostBody(_Body):
    """A host for the pool: the fields of a resource directory's ``<node>`` (``type``: its resource manager)."""

    hostname: str = Field(min_length=1, max_length=255)
    type: Literal["local", "ssh"] = "local"
    group: str | None = None
    user: str | None = None
    properties: dict[str, str] = Field(default_factory=dict)
    connect: bool = Field(False, description="connect the host at once (start its agent)")


class ConnectBody(_Body):
    """Hosts to connect: a number of local sandbox hosts, or names of the pool."""

    hosts: int | list[str]


class ResourcesBody(_Body):
    """``create resources``: hosts per component for the ``netns`` resources (default: each one's min)."""

    hosts: dict[str, int] | None = None


class LoadBody(_Body):
    """An application: a spec file's ``path`` on the controller's machine, or its ``text`` (``format``)."""

    path: str | None = None
    text: str | None = Field(None, max_length=4 * 1024 * 1024)
    format: Literal["xml", "yaml"] = "xml"


class RunBody(_Body):
    """Start the loaded application (``hosts``: component -> count, as ``plush run`` takes them)."""

    hosts: dict[str, int] | None = None
    seed: int | None = None


class ReasonBody(_Body):
    reason: str | None = None


class ExecBody(_Body):
    """The distributed shell: ``cmd`` (argv, or with ``shell`` one ``sh -c`` line) on the selected hosts."""

    cmd: list[str] | str
    hosts: str | None = None
    group: str | None = None
    exclude: str | None = None
    timeout: float = Field(60.0, gt=0, le=86400)
    shell: bool = False
    limit: int | None = Field(None, ge=0)


class ErrorDetail(BaseModel):
    code: str
    message: str


class ErrorBody(BaseModel):
    """Every error: a stable ``code`` and the words the CLI prints."""

    error: ErrorDetail


@dataclass(frozen=True)
class Operation:
    """One operation of the API, as the OpenAPI document shows it."""

    method: str
    path: str
    summary: str
    body: type[BaseModel] | None = None
    query: tuple[str, ...] = ()
    stream: bool = False


def openapi(operations: Sequence[Operation]) -> dict[str, Any]:
    """The OpenAPI 3.1 document of ``operations``."""
    models: list[type[BaseModel]] = [ErrorBody, *{op.body for op in operations if op.body is not None}]
    _, top = models_json_schema([(m, "validation") for m in models], ref_template="#/components/schemas/{model}")
    error = {"description": "error", "content": {"application/json": {"schema": _ref(ErrorBody)}}}
    paths: dict[str, dict[str, Any]] = {}
    for op in operations:
        entry: dict[str, Any] = {
            "summary": op.summary,
            "operationId": f"{op.method.lower()}{op.path.replace('/', '_').replace('{', '').replace('}', '')}",
            "security": [{"bearer": []}],
            "responses": {
                "200": _stream() if op.stream else {"description": "done", "content": {"application/json": {}}},
                "401": error,
                "default": error,
            },
        }
        params = [
            {"name": p, "in": "path", "required": True, "schema": {"type": "string"}} for p in _path_params(op.path)
        ]
        params += [{"name": q, "in": "query", "required": False, "schema": {"type": "string"}} for q in op.query]
        if params:
            entry["parameters"] = params
        if op.body is not None:
            entry["requestBody"] = {"required": True, "content": {"application/json": {"schema": _ref(op.body)}}}
        paths.setdefault(op.path, {})[op.method.lower()] = entry
    return {
        "openapi": "3.1.0",
        "info": {"title": "Plush controller API", "version": "1"},
        "paths": paths,
        "components": {
            "schemas": top.get("$defs", {}),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def _stream() -> dict[str, Any]:
    return {"description": "Server-Sent Events", "content": {"text/event-stream": {"schema": {"type": "string"}}}}


def _path_params(path: str) -> list[str]:
    return [part[1:-1] for part in path.split("/") if part.startswith("{") and part.endswith("}")]
