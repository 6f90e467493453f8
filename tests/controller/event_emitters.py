"""What the controller emits, read from its source: every ``bus.emit(NAME, ..., data=...)`` call.

An event name is a string literal, a constant of :mod:`plush.controller.catalogue` (or of
:mod:`plush.controller.events`, which re-exports some), a conditional of those, a call of
``catalogue.block_event`` (every ``block.*`` event), or an f-string (``f"block.{state}"`` becomes the pattern
``block.*``). Its data fields are the keys of a dict
literal, or of the dict a local variable was built as in the same function (a literal, a comprehension over
a tuple of keys, plus ``data["key"] = ...``); anything else is ``*`` (fields unknown).
"""

from __future__ import annotations

import ast
import fnmatch
from pathlib import Path

import plush.controller
from plush.controller import catalogue
from plush.controller import events as events_module

CONTROLLER = Path(plush.controller.__file__).parent


def _names(node: ast.expr) -> list[str]:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.Name) and isinstance(getattr(catalogue, node.id, None), str):
        return [getattr(catalogue, node.id)]
    if isinstance(node, ast.Name) and isinstance(getattr(events_module, node.id, None), str):
        return [getattr(events_module, node.id)]
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "block_event":
        return [n for n in catalogue.CATALOGUE if n.startswith("block.")]
    if isinstance(node, ast.IfExp):
        return _names(node.body) + _names(node.orelse)
    if isinstance(node, ast.JoinedStr):
        return ["".join(v.value if isinstance(v, ast.Constant) else "*" for v in node.values)]  # type: ignore[misc]
    raise AssertionError(f"cannot read the event name at line {node.lineno}: {ast.unparse(node)}")


def _keys(node: ast.expr) -> set[str] | None:
    if isinstance(node, ast.Dict):
        return {k.value for k in node.keys if isinstance(k, ast.Constant) and isinstance(k.value, str)}
    if isinstance(node, ast.DictComp) and len(node.generators) == 1:
        source = node.generators[0].iter
        if isinstance(source, ast.Tuple):
            return {e.value for e in source.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)}
    return None


def _data_fields(data: ast.expr, function: ast.AST) -> set[str] | None:
    fields = _keys(data)
    if fields is not None or not isinstance(data, ast.Name):
        return fields
    found: set[str] | None = None
    for node in ast.walk(function):
        if isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name) and target.id == data.id:
                    keys = _keys(node.value)
                    if keys is None:
                        return None
                    found = (found or set()) | keys
                elif (
                    isinstance(target, ast.Subscript)
                    and isinstance(target.value, ast.Name)
                    and target.value.id == data.id
                    and isinstance(target.slice, ast.Constant)
                ):
                    found = (found or set()) | {str(target.slice.value)}
    return found


def emitted() -> dict[str, set[str] | None]:
    """Event name (or pattern) -> the data fields its emitters give it (None: unknown)."""
    out: dict[str, set[str] | None] = {}
    for path in sorted(CONTROLLER.glob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        for function in ast.walk(tree):
            if not isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            for call in ast.walk(function):
                if not (
                    isinstance(call, ast.Call)
                    and isinstance(call.func, ast.Attribute)
                    and call.func.attr == "emit"
                    and call.args
                ):
                    continue
                if path.name == "events.py":
                    continue  # the bus itself
                data = next((k.value for k in call.keywords if k.arg == "data"), None)
                fields = set() if data is None else _data_fields(data, function)
                for name in _names(call.args[0]):
                    if name in out and (out[name] is None or fields is None):
                        out[name] = None
                    elif name in out:
                        out[name] = out[name] | fields  # type: ignore[operator]
                    else:
                        out[name] = fields
    return out


def fields_of(name: str, table: dict[str, set[str] | None]) -> set[str] | None:
    """The fields of event ``name`` (matching patterns too); KeyError when nothing emits it."""
    matches = [pattern for pattern in table if fnmatch.fnmatchcase(name, pattern)]
    if not matches:
        raise KeyError(name)
    fields: set[str] = set()
    for pattern in matches:
        got = table[pattern]
        if got is None:
            return None
        fields |= got
    return fields
