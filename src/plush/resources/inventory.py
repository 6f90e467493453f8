"""The YAML inventory and the JSON host list: the modern forms of the resource directory (``docs/pools.md``).

Role: two of the pool file readers (the third, the XML directory, is :mod:`~plush.resources.directory`).
Both find the entries and where they are; :mod:`~plush.resources.poolentry` says what they mean. The shape::

    defaults:                 # optional: fields every entry has unless it says otherwise
      type: local
      site: ucsd
    hosts:
      - node[01-04]           # a bare hostname (a ClusterShell host set, optionally :PORT)
      - hostname: big[1-2]:15001
        group: big
        mem_mb: 65536         # every field but hostname, type, user, group is a property

The JSON host list (what a discovery command prints) is the same object in JSON, or just the list of
entries: ``[{"hostname": "n1", "type": "local", "site": "ucsd"}]``. Values are scalars: strings, numbers,
booleans, taken as their text (YAML: as written, so ``010`` stays ``010``).

Both readers build one small located tree (kind, line, column, text) and one walker reads it: the YAML tree
from PyYAML's composed nodes (:func:`plush.spec.yamlreader.compose_yaml`: the safe loader, nothing
constructed; shared nodes converted once, so aliases cost nothing), the JSON tree by a small scanner over
:class:`json.JSONDecoder` that keeps the position of every value (the standard parser keeps none).

Invariants: nothing but :class:`~plush.resources.poolentry.PoolFileError` escapes :func:`parse_inventory` or
:func:`parse_host_json` for any text; every problem names its line; all are reported at once. Pure.
"""

from __future__ import annotations

import bisect
import difflib
import json
import re
from dataclasses import dataclass, field
from typing import Any

from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from plush.errors import SpecError, SpecProblem
from plush.resources.host import Host
from plush.resources.poolentry import Entry, PoolFileError, Spot, hosts_from_entries, pool_error, problems_or_hosts
from plush.spec.yamlreader import STANDARD_TAGS, compose_yaml

__all__ = ["parse_host_json", "parse_inventory"]

_TOP = ("defaults", "hosts")
_NULL_TAG = "tag:yaml.org,2002:null"
#: the deepest level the shape uses (root, hosts, entry, value); deeper YAML is not converted
_USED_DEPTH = 3
#: the deepest JSON nesting read at all
_MAX_JSON_DEPTH = 64


@dataclass(slots=True)
class _Node:
    """A located value: ``map`` (pairs), ``list`` (items), ``scalar`` (text) or ``null``."""

    kind: str
    line: int
    column: int
    text: str = ""
    items: list[_Node] = field(default_factory=list)
    pairs: list[tuple[_Node, _Node]] = field(default_factory=list)
    tag: str | None = None  # a YAML tag outside plain data

    def describe(self) -> str:
        return {"map": "a mapping", "list": "a list", "null": "nothing"}.get(self.kind, repr(self.text[:40]))


# --- YAML -----------------------------------------------------------------------------------------------


def _from_yaml(node: Node, depth: int, memo: dict[int, _Node]) -> _Node:
    mark = node.start_mark
    tag = None if node.tag in STANDARD_TAGS else str(node.tag)
    if isinstance(node, ScalarNode):
        kind = "null" if node.tag == _NULL_TAG else "scalar"
        return _Node(kind, mark.line + 1, mark.column + 1, str(node.value), tag=tag)
    if id(node) in memo:  # (an alias: the same collection again, maybe inside itself)
        return memo[id(node)]
    out = _Node("scalar", mark.line + 1, mark.column + 1, tag=tag)
    memo[id(node)] = out
    if isinstance(node, SequenceNode):
        out.kind = "list"
        if depth < _USED_DEPTH:
            out.items = [_from_yaml(item, depth + 1, memo) for item in node.value]
    elif isinstance(node, MappingNode):
        out.kind = "map"
        if depth < _USED_DEPTH:
            out.pairs = [(_from_yaml(k, depth + 1, memo), _from_yaml(v, depth + 1, memo)) for k, v in node.value]
    return out


# --- JSON -----------------------------------------------------------------------------------------------


class _JsonBad(Exception):
    def __init__(self, message: str, pos: int) -> None:
        super().__init__(message)
        self.message = message
        self.pos = pos


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


class _Pairs(list[tuple[str, Any]]):
    """A JSON object as the standard parser gives it to ``object_pairs_hook``: its pairs, duplicates kept."""


def _from_python(value: Any, depth: int = 0) -> _Node:
    """A value of the standard parser as a tree without positions (line 0: never shown, see parse_host_json);
    deeper than the shape uses, containers are left empty (they are a problem anyway)."""
    if isinstance(value, _Pairs):
        pairs = [(_Node("scalar", 0, 0, k), _from_python(v, depth + 1)) for k, v in value]
        return _Node("map", 0, 0, pairs=pairs if depth < _USED_DEPTH else [])
    if isinstance(value, list):
        return _Node("list", 0, 0, items=[_from_python(v, depth + 1) for v in value] if depth < _USED_DEPTH else [])
    if value is None:
        return _Node("null", 0, 0, "null")
    if isinstance(value, bool):
        return _Node("scalar", 0, 0, "true" if value else "false")
    return _Node("scalar", 0, 0, str(value))


class _Json:
    """A JSON scanner that keeps the line and column of every value."""

    _WS = re.compile(r"[ \t\n\r]*")

    def __init__(self, text: str) -> None:
        self.text = text
        self.starts = [0, *(m.end() for m in re.finditer("\n", text))]
        self.decoder = json.JSONDecoder(parse_int=str, parse_float=str, parse_constant=_no_constant)

    def where(self, pos: int) -> tuple[int, int]:
        i = bisect.bisect_right(self.starts, pos) - 1
        return i + 1, pos - self.starts[i] + 1

    def ws(self, pos: int) -> int:
        match = self._WS.match(self.text, pos)
        return match.end() if match else pos

    def expect(self, pos: int, chars: str, what: str) -> int:
        pos = self.ws(pos)
        if self.text[pos : pos + 1] not in tuple(chars):
            raise _JsonBad(f"expected {what}", pos)
        return pos

    def document(self) -> _Node:
        node, end = self.value(self.ws(0), 0)
        end = self.ws(end)
        if end != len(self.text):
            raise _JsonBad("extra data after the JSON value", end)
        return node

    def value(self, pos: int, depth: int) -> tuple[_Node, int]:
        if depth > _MAX_JSON_DEPTH:
            raise _JsonBad("nested too deeply", pos)
        line, column = self.where(pos)
        c = self.text[pos : pos + 1]
        if c == "{":
            node = _Node("map", line, column)
            pos = self.ws(pos + 1)
            if self.text[pos : pos + 1] == "}":
                return node, pos + 1
            while True:
                pos = self.expect(pos, '"', "a key in double quotes")
                key, pos = self.value(pos, depth + 1)
                pos = self.expect(pos, ":", "':'")
                item, pos = self.value(self.ws(pos + 1), depth + 1)
                node.pairs.append((key, item))
                pos = self.expect(pos, ",}", "',' or '}'")
                if self.text[pos] == "}":
                    return node, pos + 1
                pos = self.ws(pos + 1)
        if c == "[":
            node = _Node("list", line, column)
            pos = self.ws(pos + 1)
            if self.text[pos : pos + 1] == "]":
                return node, pos + 1
            while True:
                item, pos = self.value(self.ws(pos), depth + 1)
                node.items.append(item)
                pos = self.expect(pos, ",]", "',' or ']'")
                if self.text[pos] == "]":
                    return node, pos + 1
                pos += 1
        if not c:
            raise _JsonBad("unexpected end of the JSON text", pos)
        try:
            value, end = self.decoder.raw_decode(self.text, pos)
        except json.JSONDecodeError as exc:
            raise _JsonBad(exc.msg, exc.pos) from None
        except (ValueError, RecursionError) as exc:
            raise _JsonBad(str(exc), pos) from None
        if value is None:
            return _Node("null", line, column, "null"), end
        if isinstance(value, bool):
            return _Node("scalar", line, column, "true" if value else "false"), end
        return _Node("scalar", line, column, str(value)), end


# --- the walk -------------------------------------------------------------------------------------------


class _Walk:
    def __init__(self, file: str | None) -> None:
        self.file = file
        self.problems: list[SpecProblem] = []
        self.entries: list[Entry] = []

    def problem(self, node: _Node, message: str, hint: str | None = None) -> None:
        self.problems.append(SpecProblem(message, file=self.file, line=node.line, column=node.column, hint=hint))

    def pairs(self, node: _Node, what: str) -> list[tuple[_Node, _Node]]:
        """The (key, value) pairs of a mapping with plain, unique keys."""
        seen: set[str] = set()
        out = []
        for key, value in node.pairs:
            if key.kind != "scalar" or key.tag:
                self.problem(key, f"a key in {what} must be a plain name, found {key.describe()}")
            elif key.text == "<<":
                self.problem(key, "merge keys (<<) are not supported in a pool file")
            elif key.text in seen:
                self.problem(key, f"duplicate key {key.text!r} in {what}")
            else:
                seen.add(key.text)
                out.append((key, value))
        return out

    def scalar(self, node: _Node, what: str) -> str | None:
        """The text of a single value (None for a null; a problem for anything else)."""
        if node.tag:
            self.problem(node, f"unsupported YAML tag {node.tag!r}", "a pool file uses plain YAML data only")
        elif node.kind == "scalar":
            return node.text
        elif node.kind != "null":
            self.problem(node, f"{what} must be a single value, found {node.describe()}")
        return None

    def fields(self, node: _Node, what: str) -> dict[str, tuple[str | None, Spot]]:
        out: dict[str, tuple[str | None, Spot]] = {}
        for key, value in self.pairs(node, what):
            if value.kind in ("map", "list") or value.tag:
                self.scalar(value, key.text)
                continue
            out[key.text] = (self.scalar(value, key.text), Spot(key.line, key.column))
        return out

    def document(self, root: _Node, *, allow_list: bool, allow_empty: bool) -> None:
        defaults: dict[str, tuple[str | None, Spot]] = {}
        hosts_at = root
        if root.kind == "list" and allow_list:
            hosts = root
        elif root.kind != "map" or root.tag:
            self.problem(root, f"a pool file is a mapping with hosts:, found {root.describe()}")
            return
        else:
            top = {k.text: (k, v) for k, v in self.pairs(root, "the pool file")}
            for name, (key, _) in top.items():
                if name not in _TOP:
                    close = difflib.get_close_matches(name, _TOP, n=1, cutoff=0.6)
                    hint = f"did you mean {close[0]!r}?" if close else "the keys are defaults and hosts"
                    self.problem(key, f"unknown key {name!r}", hint)
            if "defaults" in top:
                key, value = top["defaults"]
                if value.kind == "map" and not value.tag:
                    defaults = self.fields(value, "defaults")
                elif value.kind != "null":
                    self.problem(value, f"defaults must be a mapping, found {value.describe()}")
            if "hosts" not in top:
                self.problem(root, "the pool file has no hosts:", "list the hosts under hosts:")
                return
            hosts_at, hosts = top["hosts"]
            if hosts.kind != "list" or hosts.tag:
                self.problem(hosts, f"hosts must be a list, found {hosts.describe()}")
                return
        if not hosts.items and not allow_empty:
            self.problem(hosts_at, "the pool file names no hosts")
        # a type missing under hosts: (where defaults: could give it) is one problem there; in a bare list, one
        # per entry
        type_at = None if hosts_at is hosts else Spot(hosts_at.line, hosts_at.column)
        for item in hosts.items:
            self.entry(item, defaults, type_at)

    def entry(self, node: _Node, defaults: dict[str, tuple[str | None, Spot]], type_at: Spot | None) -> None:
        at = Spot(node.line, node.column)
        if node.kind == "map" and not node.tag:
            own = self.fields(node, "a host entry")
        else:
            text = self.scalar(node, "a host entry")
            if text is None:
                if node.kind == "null":
                    self.problem(node, "empty host entry", "an entry is a hostname or a mapping with hostname:")
                return
            own = {"hostname": (text, at)}
        merged = {**defaults, **own}
        kind, where = merged.pop("type", (None, type_at or at))
        fields = {key: value for key, (value, _) in merged.items()}
        spots = {key: spot for key, (_, spot) in merged.items()}
        self.entries.append(Entry(fields, kind, at, where, spots))


def _finish(walk: _Walk, file: str | None) -> list[Host]:
    hosts, problems = hosts_from_entries(walk.entries, file=file)
    return problems_or_hosts(hosts, walk.problems + problems)


def parse_inventory(text: str, *, file: str | None = None) -> list[Host]:
    """The hosts of a YAML inventory; :class:`PoolFileError` listing every problem."""
    try:
        root = compose_yaml(text, file=file)
    except SpecError as exc:
        raise pool_error(exc, text) from None
    if root is None:
        raise PoolFileError([SpecProblem("the inventory is empty: it needs hosts:", file=file, line=1)])
    walk = _Walk(file)
    walk.document(_from_yaml(root, 0, {}), allow_list=False, allow_empty=False)
    return _finish(walk, file)


def parse_host_json(text: str, *, file: str | None = None, allow_empty: bool = False) -> list[Host]:
    """The hosts of a JSON host list (a list of entries, or ``{"defaults": …, "hosts": […]}``);
    :class:`PoolFileError` listing every problem. ``allow_empty``: an empty list is no problem (a discovery
    command that finds no host now).

    A valid list is read by the standard (C) parser; only a list with problems is scanned again, slowly,
    for the line of each."""
    try:
        fast = json.loads(text, object_pairs_hook=_Pairs, parse_int=str, parse_float=str, parse_constant=_no_constant)
    except (ValueError, RecursionError):
        pass
    else:
        walk = _Walk(file)
        walk.document(_from_python(fast), allow_list=True, allow_empty=allow_empty)
        hosts, problems = hosts_from_entries(walk.entries, file=file)
        if not walk.problems and not problems:
            return hosts
    scanner = _Json(text)
    try:
        root = scanner.document()
    except _JsonBad as exc:
        line, column = scanner.where(min(exc.pos, len(text)))
        problem = SpecProblem("malformed JSON: " + exc.message, file=file, line=line, column=column)
        raise PoolFileError([problem]) from None
    walk = _Walk(file)
    walk.document(root, allow_list=True, allow_empty=allow_empty)
    return _finish(walk, file)
