"""The HTTP API's request bodies and answers: pydantic models at the edge, and the OpenAPI document written
from them.

Role: what :mod:`plush.api.http` validates each body with, and the schemas of ``/openapi.json``
(:func:`openapi`): one source, so the document cannot drift from what the handlers accept. Models forbid
unknown fields (a typo is a 400, not a silent default). Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints
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


#: one line of printable text (a pool file's field values: plush.resources.poolentry)
_TEXT = r"^[^\x00-\x1f\x7f]{0,4096}$"
_PROPERTY = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_.-]{0,63}$")]


class HostBody(_Body):
    """A host for the pool: the fields of a resource directory's ``<node>`` (``type``: its resource manager),
    as a pool file checks them (the patterns here; a property may not be named ``port`` or ``name``)."""

    hostname: str = Field(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,252}(:[0-9]{1,5})?$")
    type: Literal["local", "ssh"] = "local"
    group: str | None = Field(None, pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.:@+-]{0,127}$")
    user: str | None = Field(None, pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}\$?$")
    properties: dict[_PROPERTY, Annotated[str, StringConstraints(pattern=_TEXT)]] = Field(default_factory=dict)
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
    """One operation of the API, as the OpenAPI document shows it.

    ``answer``: the model of its 200 answer (JSON), unless ``media`` names another type (a stream, a file);
    ``errors``: the error statuses it may answer besides 401 (each ``ErrorBody``); ``patterns``: (path
    parameter, regular expression) pairs; ``required``: the query parameters it needs."""

    method: str
    path: str
    summary: str
    body: type[BaseModel] | None = None
    query: tuple[str, ...] = ()
    answer: type[BaseModel] | None = None
    errors: tuple[int, ...] = (400, 409)
    media: str | None = None
    patterns: tuple[tuple[str, str], ...] = ()
    required: tuple[str, ...] = ()

    @property
    def route(self) -> str:
        """The path as aiohttp routes it (each patterned parameter as ``{name:regex}``)."""
        path = self.path
        for name, pattern in self.patterns:
            path = path.replace("{" + name + "}", "{" + name + ":" + pattern + "}")
        return path


def openapi(operations: Sequence[Operation]) -> dict[str, Any]:
    """The OpenAPI 3.1 document of ``operations``."""
    bodies: list[type[BaseModel]] = [ErrorBody, *{op.body for op in operations if op.body is not None}]
    answers = list(dict.fromkeys(op.answer for op in operations if op.answer is not None))
    _, top = models_json_schema(
        [(m, "validation") for m in bodies] + [(m, "serialization") for m in answers],
        ref_template="#/components/schemas/{model}",
    )
    error = {"description": "error", "content": {"application/json": {"schema": _ref(ErrorBody)}}}
    paths: dict[str, dict[str, Any]] = {}
    for op in operations:
        if op.media is not None:
            done: dict[str, Any] = {"description": op.media, "content": {op.media: {"schema": {"type": "string"}}}}
        else:
            schema = _ref(op.answer) if op.answer is not None else {}
            done = {"description": "done", "content": {"application/json": {"schema": schema}}}
        responses: dict[str, Any] = {"200": done, "401": error}
        responses.update({str(status): error for status in sorted(op.errors)})
        entry: dict[str, Any] = {
            "summary": op.summary,
            "operationId": f"{op.method.lower()}{op.path.replace('/', '_').replace('{', '').replace('}', '')}",
            "security": [{"bearer": []}],
            "responses": responses,
        }
        patterns = dict(op.patterns)
        params = [
            {"name": p, "in": "path", "required": True, "schema": _string(patterns.get(p))}
            for p in _path_params(op.path)
        ]
        params += [
            {"name": q, "in": "query", "required": q in op.required, "schema": {"type": "string"}} for q in op.query
        ]
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


def _string(pattern: str | None) -> dict[str, Any]:
    return {"type": "string"} if pattern is None else {"type": "string", "pattern": f"^{pattern}$"}


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def _path_params(path: str) -> list[str]:
    return [part[1:-1] for part in path.split("/") if part.startswith("{") and part.endswith("}")]
