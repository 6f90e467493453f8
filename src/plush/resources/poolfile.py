"""Pool files: telling their kind from their content, and reading any of them into hosts.

Role: the one entry point for a pool file named by the user (``plush check POOLFILE``, the pool a run is
given): :func:`pool_kind` says what a text is, with no flag and whatever the file's name,
:func:`parse_pool` reads it with the right reader, :func:`read_pool` reads the file first. The kinds
(``docs/pools.md``):

- ``directory``: Plush XML whose elements include ``<resource_manager>`` and no ``<project>``
  (:mod:`~plush.resources.directory`);
- ``json``: JSON starting with ``[`` (a list of entries), or an object with a ``"hosts"`` or ``"defaults"``
  key and no ``"project"``/``"application"`` (:func:`~plush.resources.inventory.parse_host_json`);
- ``inventory``: YAML with a top-level ``hosts:`` or ``defaults:`` key and none of a spec's
  (``project:``, ``application:``, ``components:``, ``software:``) (:mod:`~plush.resources.inventory`).

Anything else is not a pool file (:func:`pool_kind` returns None): specs are never taken for pools, since a
spec always has a ``<project>`` or a ``project:``/``application:`` key. The sniff reads the text only
(comments skipped), so a malformed pool file is still told as one and its problems are the pool reader's.

Invariants: :func:`pool_kind` never raises, for any text; :func:`parse_pool` raises nothing but
:class:`~plush.resources.poolentry.PoolFileError`. Everything but :func:`read_pool` is pure.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from plush.errors import SpecProblem
from plush.resources.host import Host
from plush.resources.poolentry import PoolFileError

__all__ = ["KIND_NAMES", "MAX_POOL_FILE", "PoolKind", "parse_pool", "pool_kind", "read_pool", "sniff_file"]

PoolKind = Literal["directory", "inventory", "json"]
#: how each kind is named to users
KIND_NAMES: dict[str, str] = {
    "directory": "Plush resource directory (XML)",
    "inventory": "YAML inventory",
    "json": "JSON host list",
}
#: the largest pool file read (a guard, not a format limit)
MAX_POOL_FILE = 64 * 1024 * 1024

_XML_COMMENT = re.compile(r"<!--.*?(?:-->|\Z)", re.DOTALL)
_XML_TAG = re.compile(r"<([A-Za-z_][\w.:-]*)")
_JSON_POOL_KEY = re.compile(r'"(?:hosts|defaults)"\s*:')
_JSON_SPEC_KEY = re.compile(r'"(?:project|application)"\s*:')
_YAML_TOP_KEY = re.compile(r"""^(?:"([^"\n]*)"|'([^'\n]*)'|([A-Za-z_][\w-]*))[ \t]*:(?:[ \t]|$)""", re.MULTILINE)
_YAML_SPEC_KEYS = frozenset(("project", "application", "components", "software"))
_YAML_POOL_KEYS = frozenset(("hosts", "defaults"))


def pool_kind(text: str) -> PoolKind | None:
    """The kind of pool file ``text`` is, or None when it is not one (a spec, or anything else)."""
    body = text.lstrip("\ufeff \t\r\n")
    if body.startswith("<"):
        tags = set(_XML_TAG.findall(_XML_COMMENT.sub("", body)))
        return "directory" if "resource_manager" in tags and "project" not in tags else None
    if body.startswith("["):
        return "json"
    if body.startswith("{"):
        return "json" if _JSON_POOL_KEY.search(body) and not _JSON_SPEC_KEY.search(body) else None
    keys = {a or b or c for a, b, c in _YAML_TOP_KEY.findall(body)}
    return "inventory" if keys & _YAML_POOL_KEYS and not keys & _YAML_SPEC_KEYS else None


def _decode(data: bytes, file: str | None) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise PoolFileError([SpecProblem("the file is not UTF-8 text", file=file, line=line)]) from None


def parse_pool(data: str | bytes, *, file: str | None = None) -> tuple[PoolKind, list[Host]]:
    """The kind and the hosts of the pool file ``data``; :class:`PoolFileError` listing every problem."""
    text = data if isinstance(data, str) else data.decode("utf-8", errors="replace")
    kind = pool_kind(text)
    if kind is None:
        raise PoolFileError(
            [
                SpecProblem(
                    "not a pool file",
                    file=file,
                    line=1,
                    hint="a pool file is a Plush resource directory (XML with <resource_manager>), "
                    "a YAML inventory (hosts:) or a JSON host list; see docs/pools.md",
                )
            ]
        )
    if kind == "directory":
        from plush.resources.directory import parse_directory

        return kind, parse_directory(data, file=file)
    from plush.resources.inventory import parse_host_json, parse_inventory

    text = data if isinstance(data, str) else _decode(data, file)
    if kind == "json":
        return kind, parse_host_json(text, file=file)
    return kind, parse_inventory(text, file=file)


def _read(path: str | Path) -> bytes:
    name = str(path)
    try:
        with Path(path).open("rb") as fh:
            data = fh.read(MAX_POOL_FILE + 1)
    except OSError as exc:
        why = "is a directory" if isinstance(exc, IsADirectoryError) else (exc.strerror or str(exc))
        raise PoolFileError([SpecProblem(f"cannot read the pool file: {why}", file=name)]) from None
    if len(data) > MAX_POOL_FILE:
        raise PoolFileError([SpecProblem(f"the pool file is larger than {MAX_POOL_FILE} bytes", file=name)])
    return data


def read_pool(path: str | Path) -> tuple[PoolKind, list[Host]]:
    """The kind and the hosts of the pool file at ``path``; :class:`PoolFileError` for any problem."""
    return parse_pool(_read(path), file=str(path))


def sniff_file(path: str | Path) -> PoolKind | None:
    """The kind of the file at ``path`` when it is a readable pool file, else None (not one, or unreadable:
    the caller's own reader then says why)."""
    try:
        with Path(path).open("rb") as fh:
            data = fh.read(MAX_POOL_FILE)
    except OSError:
        return None
    return pool_kind(data.decode("utf-8", errors="replace"))
