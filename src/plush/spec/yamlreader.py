"""The YAML reader: the modern face of the Plush spec, read into the same model as the XML.

The YAML form (documented in ``docs/spec.md``) is a compact spelling of :mod:`plush.spec.model`; for every
XML spec there is a YAML text that reads to an equal :class:`~plush.spec.model.Project`. PyYAML composes
the node tree (the safe loader, no object construction, so nothing in the file can run code), and this module
walks the nodes by the schema, so that:

- every model object gets a ``Where(file, line, column)`` (1-based) from its node;
- every problem is collected (unknown key with the closest valid one, wrong type, missing key, duplicate
  key, malformed YAML at the parser's position) and reported at once in one :class:`~plush.errors.SpecError`;
  the semantic checks of :func:`plush.spec.validate.validate` run once the structure is right;
- strings are taken exactly as written: ``[echo, yes, 010]`` is the argv ``echo yes 010`` (YAML 1.1 would
  have made them ``True`` and ``8``); numbers and booleans are read only where the model wants them.

Nothing but :class:`~plush.errors.SpecError` escapes :func:`parse_yaml` for any input text: YAML syntax
errors, unknown tags (``!!python/object``), merge keys, alias cycles and over-deep nesting all become
problems. The parse uses libyaml when PyYAML has it. One module for the whole schema (about 800 lines): the
schema functions and the node walker change together, and splitting them would only add an import seam.
Controller-only (PyYAML); never shipped to agents.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import shlex
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, TypeVar

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from plush.errors import SpecError, SpecProblem
from plush.spec.model import (
    MAX_INTEGER,
    Application,
    AttrRequirement,
    BarrierBlock,
    Block,
    Component,
    ComponentBlock,
    ExitPolicy,
    HostCount,
    LivenessMonitor,
    Package,
    Process,
    ProcessBlock,
    Project,
    ResourceRef,
    Software,
    Where,
    WorkflowBlock,
)

__all__ = ["STANDARD_TAGS", "compose_yaml", "parse_yaml", "read_yaml"]

T = TypeVar("T")

#: libyaml's parser when PyYAML has it (10x faster); it composes the same nodes with the same marks
_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_NULL = "tag:yaml.org,2002:null"
_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"
_BOOL = "tag:yaml.org,2002:bool"

#: process fields shared by the compact block form and the ``processes:`` list
_PROCESS_KEYS = ("run", "env", "cwd", "stdin", "stdout", "stderr")
_BLOCK_KINDS = ("process", "barrier", "semaphore", "workflow")
_KEYS: Dict[str, Tuple[str, ...]] = {
    "top": ("project", "software", "components", "application"),
    "software": ("type", "packages"),
    "package": ("name", "path", "type", "dest"),
    "component": ("hosts", "require", "max_load", "min_free_mem", "software", "resources"),
    "hosts": ("min", "max"),
    "require": ("attr", "min", "max", "equals"),
    "resource": ("type", "group"),
    "application": ("name", "service", "reconnect_interval", "on_failure", "execution"),
    "component block": ("component", "blocks"),
    "process": ("name", *_PROCESS_KEYS),
    "process block": ("process", "after", *_PROCESS_KEYS, "processes", "exit", "liveness", "outputs"),
    "barrier block": ("barrier", "after", "max", "threshold", "timeout", "adaptive", "capacity", "until"),
    "semaphore block": ("semaphore", "after", "max", "threshold", "timeout", "adaptive", "capacity", "until"),
    "workflow block": ("workflow", "after", "data", "task"),
    "exit policy": ("code", "action", "max_restarts"),
    "liveness": ("run", "interval"),
    "run": ("path", "args"),
}
#: names from the XML form (or other habits) and the YAML key that means the same
_ALIAS_PAIRS = (
    "predecessor=after predecessors=after num_hosts=hosts rspec=hosts cmdline=run command=run argv=run "
    "path=run exit_policy=exit exit_policies=exit liveness_monitor=liveness data_file=data "
    "data_files=data output=outputs component_blocks=execution blocks=execution experiment=application "
    "application_block=application resource=resources requirements=require "
)
_ALIASES = dict(pair.split("=") for pair in _ALIAS_PAIRS.split())


def _kind_of(node: Node) -> str:
    if isinstance(node, MappingNode):
        return "a mapping"
    if isinstance(node, SequenceNode):
        return "a list"
    if node.tag == _NULL:
        return "nothing"
    return "{!r}".format(node.value)


Fields = Dict[str, Tuple[ScalarNode, Node]]


class _Reader:
    """Walks a composed node tree, building model objects and collecting problems."""

    def __init__(self, file: Optional[str]) -> None:
        self.file = file
        self.problems: List[SpecProblem] = []
        self.constructor = yaml.SafeLoader("")

    # --- locations and problems ---------------------------------------------------------------------

    def where(self, node: Node) -> Where:
        mark = node.start_mark
        return Where(self.file, mark.line + 1, mark.column + 1)

    def problem(
        self,
        node: Node,
        message: str,
        *,
        block: Sequence[str] = (),
        hint: Optional[str] = None,
    ) -> None:
        mark = node.start_mark
        self.problems.append(
            SpecProblem(
                message,
                file=self.file,
                line=mark.line + 1,
                column=mark.column + 1,
                block="/" + "/".join(block) if block else None,
                hint=hint,
            )
        )

    # --- shapes ---------------------------------------------------------------------------------------

    def fields(
        self,
        node: Node,
        what: str,
        *,
        required: Sequence[str] = (),
        block: Sequence[str] = (),
        allow_null: bool = False,
    ) -> Optional[Fields]:
        """The keys of a mapping node, checked against the keys ``what`` allows (None: not a mapping)."""
        entries = self.entries(node, _title(what), block=block, allow_null=allow_null)
        if entries is None:
            return None
        out: Fields = {}
        allowed = _KEYS[what]
        for key, value in entries:
            if key.value not in allowed:
                self.unknown_key(key, key.value, allowed, what, block)
                continue
            out[key.value] = (key, value)
        for name in required:
            if name not in out:
                self.problem(node, "{} needs the key {!r}".format(_title(what), name), block=block)
        return out

    def entries(
        self, node: Node, what: str, *, block: Sequence[str] = (), allow_null: bool = False
    ) -> Optional[List[Tuple[ScalarNode, Node]]]:
        """The (key, value) pairs of a mapping node with scalar, unique keys, in file order."""
        if allow_null and isinstance(node, ScalarNode) and node.tag == _NULL:
            return []
        if not isinstance(node, MappingNode):
            self.problem(node, "{} must be a mapping, found {}".format(what, _kind_of(node)), block=block)
            return None
        seen = set()
        out = []
        for key, value in node.value:
            if not isinstance(key, ScalarNode):
                self.problem(key, "a key in {} must be a plain name, found {}".format(what, _kind_of(key)), block=block)
                continue
            if key.value in seen:
                self.problem(key, "duplicate key {!r} in {}".format(key.value, what), block=block)
                continue
            seen.add(key.value)
            out.append((key, value))
        return out

    def unknown_key(self, key: Node, name: str, allowed: Sequence[str], what: str, block: Sequence[str]) -> None:
        if name == "<<":
            self.problem(key, "merge keys (<<) are not supported in a spec", block=block)
            return
        guess = _ALIASES.get(name) if _ALIASES.get(name) in allowed else None
        if guess is None:
            close = difflib.get_close_matches(name, allowed, n=1, cutoff=0.6)
            guess = close[0] if close else None
        hint = "did you mean {!r}?".format(guess) if guess else "valid keys: " + ", ".join(allowed)
        self.problem(key, "unknown key {!r} in {}".format(name, _title(what)), block=block, hint=hint)

    def items(self, node: Node, what: str, *, block: Sequence[str] = ()) -> List[Node]:
        """A list node's items; a single scalar counts as a list of one; null is empty."""
        if isinstance(node, SequenceNode):
            return list(node.value)
        if isinstance(node, ScalarNode):
            return [] if node.tag == _NULL else [node]
        self.problem(node, "{} must be a list, found a mapping".format(what), block=block)
        return []

    # --- scalars --------------------------------------------------------------------------------------

    def text(self, node: Node, what: str, *, block: Sequence[str] = ()) -> Optional[str]:
        """A scalar exactly as written (quoted or not, whatever YAML would resolve it to)."""
        if isinstance(node, ScalarNode):
            return str(node.value)
        self.problem(node, "{} must be a single value, found {}".format(what, _kind_of(node)), block=block)
        return None

    def name(self, node: Node, what: str, *, block: Sequence[str] = ()) -> Optional[str]:
        """A required string (a name, a path): like :meth:`text`, but nothing/null is a problem."""
        if isinstance(node, ScalarNode) and node.tag == _NULL:
            self.problem(node, "{} is missing a value".format(what), block=block)
            return None
        return self.text(node, what, block=block)

    def optional(self, node: Node, what: str, *, block: Sequence[str] = ()) -> Optional[str]:
        """An optional string: null means not given."""
        if isinstance(node, ScalarNode) and node.tag == _NULL:
            return None
        return self.text(node, what, block=block)

    def strings(self, node: Node, what: str, *, block: Sequence[str] = ()) -> Tuple[str, ...]:
        out = []
        for item in self.items(node, what, block=block):
            value = self.name(item, "an item of " + what, block=block)
            if value is not None:
                out.append(value)
        return tuple(out)

    def integer(self, node: Node, what: str, *, block: Sequence[str] = ()) -> Optional[int]:
        if isinstance(node, ScalarNode) and node.tag == _NULL:
            return None
        if isinstance(node, ScalarNode) and node.tag == _INT:
            return self.int_value(node, what, block)
        self.problem(node, "{} must be a whole number, found {}".format(what, _kind_of(node)), block=block)
        return None

    def int_value(self, node: ScalarNode, what: str, block: Sequence[str] = ()) -> Optional[int]:
        """A YAML int; a problem (not a traceback) when it has more digits than Python converts."""
        try:
            value = int(self.constructor.construct_yaml_int(node))
        except ValueError:  # more digits than Python converts
            value = None
        if value is None or abs(value) > MAX_INTEGER:
            message = "{} {} is too large (at most {})".format(what, _cut(node.value), MAX_INTEGER)
            self.problem(node, message, block=block)
            return None
        return value

    def number(self, node: Node, what: str, *, block: Sequence[str] = ()) -> Optional[float]:
        if isinstance(node, ScalarNode) and node.tag == _NULL:
            return None
        if isinstance(node, ScalarNode) and node.tag == _INT:
            whole = self.int_value(node, what, block)
            if whole is None:
                return None
            return float(whole)
        if isinstance(node, ScalarNode) and node.tag == _FLOAT:
            number = float(self.constructor.construct_yaml_float(node))
            if not math.isfinite(number):
                self.problem(node, "{} must be a finite number, not {}".format(what, _cut(node.value)), block=block)
                return None
            return number
        self.problem(node, "{} must be a number, found {}".format(what, _kind_of(node)), block=block)
        return None

    def flag(self, node: Node, what: str, *, block: Sequence[str] = ()) -> bool:
        if isinstance(node, ScalarNode):
            if node.tag == _BOOL:
                return bool(self.constructor.construct_yaml_bool(node))
            if node.value in ("0", "1"):
                return bool(node.value == "1")
            if node.tag == _NULL:
                return False
        self.problem(node, "{} must be true or false, found {}".format(what, _kind_of(node)), block=block)
        return False

    def get(self, f: Fields, key: str, read: Callable[[Node, str], Optional[T]]) -> Optional[T]:
        """Read ``f[key]`` with ``read`` when the key is present."""
        if key not in f:
            return None
        return read(f[key][1], key)


def _cut(text: str, limit: int = 40) -> str:
    """A value as written, quoted and cut to ``limit`` characters, for a message."""
    return repr(text) if len(text) <= limit else repr(text[:limit]) + "…"


def _title(what: str) -> str:
    """How a schema name reads in a message: "the spec", "a component", "an exit policy"."""
    if what == "top":
        return "the spec"
    return ("an " if what[0] in "aeiou" else "a ") + what


# --- the schema ---------------------------------------------------------------------------------------

Path_ = Sequence[str]


def _project(r: _Reader, root: Node) -> Optional[Project]:
    f = r.fields(root, "top", required=("project", "application"))
    if f is None:
        return None
    name = r.get(f, "project", r.name)
    software = _software(r, f["software"][1]) if "software" in f else ()
    components: Tuple[Component, ...] = ()
    if "components" in f:
        entries = r.entries(f["components"][1], "components", allow_null=True) or []
        components = tuple(_component(r, key, value) for key, value in entries)
    app = _application(r, f["application"][1], name) if "application" in f else None
    if name is None or app is None:
        return None
    where = r.where(f["project"][0])
    return Project(name=name, application=app, software=software, components=components, source=r.file, where=where)


def _software(r: _Reader, node: Node) -> Tuple[Software, ...]:
    out = []
    for key, value in r.entries(node, "software", allow_null=True) or []:
        f = r.fields(value, "software", allow_null=True) or {}
        packages: List[Package] = []
        if "packages" in f:
            for item in r.items(f["packages"][1], "packages"):
                package = _package(r, item)
                if package is not None:
                    packages.append(package)
        kind = r.get(f, "type", r.name) or "none"
        out.append(Software(name=key.value, type=kind, packages=tuple(packages), where=r.where(key)))
    return tuple(out)


def _base(path: str) -> str:
    """The default package name and destination: the last segment of a path or URL."""
    return path.rstrip("/").rsplit("/", 1)[-1]


def _package(r: _Reader, node: Node) -> Optional[Package]:
    if isinstance(node, ScalarNode) and node.tag != _NULL:
        return Package(name=_base(node.value), path=node.value, where=r.where(node))
    f = r.fields(node, "package", required=("path",))
    path = r.get(f, "path", r.name) if f else None
    if f is None or path is None:
        return None
    return Package(
        name=r.get(f, "name", r.name) or _base(path),
        path=path,
        type=r.get(f, "type", r.name) or "local",
        dest=r.get(f, "dest", r.optional),
        where=r.where(node),
    )


def _component(r: _Reader, key: ScalarNode, node: Node) -> Component:
    f = r.fields(node, "component", allow_null=True) or {}
    resources: List[ResourceRef] = []
    if "resources" in f:
        for item in r.items(f["resources"][1], "resources"):
            if isinstance(item, ScalarNode):
                kind = r.name(item, "resource type")
                if kind is not None:
                    resources.append(ResourceRef(type=kind, where=r.where(item)))
                continue
            rf = r.fields(item, "resource", required=("type",))
            kind = r.get(rf, "type", r.name) if rf else None
            if rf is not None and kind is not None:
                resources.append(ResourceRef(type=kind, group=r.get(rf, "group", r.optional), where=r.where(item)))
    return Component(
        name=key.value,
        num_hosts=_hosts(r, f["hosts"][1]) if "hosts" in f else HostCount(min=1, max=1),
        requirements=_require(r, f["require"][1]) if "require" in f else (),
        max_load=r.get(f, "max_load", r.number),
        min_free_mem=r.get(f, "min_free_mem", r.integer),
        software=r.get(f, "software", r.strings) or (),
        resources=tuple(resources),
        where=r.where(key),
    )


def _hosts(r: _Reader, node: Node) -> HostCount:
    default = HostCount(min=1, max=1)
    if isinstance(node, ScalarNode) and node.tag == _INT:
        n = r.int_value(node, "hosts")
        return default if n is None else HostCount(min=n, max=n)
    if isinstance(node, ScalarNode) and node.tag != _NULL:
        low, sep, high = node.value.partition("..")
        try:
            if sep:
                return HostCount(min=int(low), max=int(high))
        except ValueError:
            pass
    elif isinstance(node, MappingNode):
        f = r.fields(node, "hosts") or {}
        low_n = r.get(f, "min", r.integer)
        high_n = r.get(f, "max", r.integer)
        low_n = 1 if low_n is None else low_n
        return HostCount(min=low_n, max=low_n if high_n is None else high_n)
    r.problem(node, 'hosts must be a number, "min..max" or {{min: .., max: ..}}, found {}'.format(_kind_of(node)))
    return default


def _require(r: _Reader, node: Node) -> Tuple[AttrRequirement, ...]:
    out: List[AttrRequirement] = []
    if isinstance(node, MappingNode):
        for key, value in r.entries(node, "require") or []:
            req = _constraint(r, key.value, value, r.where(key))
            if req is not None:
                out.append(req)
        return tuple(out)
    for item in r.items(node, "require"):
        f = r.fields(item, "require", required=("attr",))
        attr = r.get(f, "attr", r.name) if f else None
        if f is None or attr is None:
            continue
        out.append(
            AttrRequirement(
                attr=attr,
                min=r.get(f, "min", r.number),
                max=r.get(f, "max", r.number),
                equals=r.get(f, "equals", r.optional),
                where=r.where(item),
            )
        )
    return tuple(out)


def _constraint(r: _Reader, attr: str, node: Node, where: Where) -> Optional[AttrRequirement]:
    """``">=1000"``, ``"<=8"``, ``"==x86_64"``, ``"1000..2000"``, a plain value (equals) or a mapping."""
    if isinstance(node, MappingNode):
        f = r.fields(node, "require") or {}
        if "attr" in f:
            r.problem(f["attr"][0], "attr is the key of this requirement already")
        return AttrRequirement(
            attr=attr,
            min=r.get(f, "min", r.number),
            max=r.get(f, "max", r.number),
            equals=r.get(f, "equals", r.optional),
            where=where,
        )
    text = r.name(node, "requirement " + attr)
    if text is None:
        return None
    try:
        if text.startswith(">="):
            return AttrRequirement(attr=attr, min=float(text[2:]), where=where)
        if text.startswith("<="):
            return AttrRequirement(attr=attr, max=float(text[2:]), where=where)
        if text.startswith("=="):
            return AttrRequirement(attr=attr, equals=text[2:], where=where)
        if ".." in text:
            low, _, high = text.partition("..")
            return AttrRequirement(attr=attr, min=float(low), max=float(high), where=where)
    except ValueError:
        r.problem(
            node,
            "requirement {} has a bad number: {!r}".format(attr, text),
            hint='write ">=1000", "<=8", "1000..2000", "==value" or {min: .., max: ..}',
        )
        return None
    return AttrRequirement(attr=attr, equals=text, where=where)


def _application(r: _Reader, node: Node, project: Optional[str]) -> Optional[Application]:
    f = r.fields(node, "application")
    if f is None:
        return None
    name = r.get(f, "name", r.name) or project
    if name is None:
        return None
    cbs: List[ComponentBlock] = []
    if "execution" in f:
        for key, value in r.entries(f["execution"][1], "execution", allow_null=True) or []:
            cbs.append(_component_block(r, key, value, name))
    return Application(
        name=name,
        component_blocks=tuple(cbs),
        service=r.flag(f["service"][1], "service") if "service" in f else False,
        reconnect_interval=r.get(f, "reconnect_interval", r.number),
        on_failure=r.get(f, "on_failure", r.optional),
        where=r.where(node),
    )


def _component_block(r: _Reader, key: ScalarNode, node: Node, app: str) -> ComponentBlock:
    path = (app, key.value)
    f = r.fields(node, "component block", block=path, allow_null=True) or {}
    blocks: List[Block] = []
    if "blocks" in f:
        for item in r.items(f["blocks"][1], "blocks", block=path):
            b = _block(r, item, path)
            if b is not None:
                blocks.append(b)
    component = r.get(f, "component", lambda n, w: r.name(n, w, block=path)) or key.value
    return ComponentBlock(name=key.value, component=component, blocks=tuple(blocks), where=r.where(key))


def _peek(node: Node, key: str, default: Optional[str] = None) -> Tuple[str, ...]:
    """The block path segment that a block item names under ``key`` (for messages about its keys)."""
    if isinstance(node, MappingNode):
        for k, v in node.value:
            if isinstance(k, ScalarNode) and k.value == key:
                return (v.value,) if isinstance(v, ScalarNode) and v.tag != _NULL else ()
    return (default,) if default else ()


def _block(r: _Reader, node: Node, path: Path_) -> Optional[Block]:
    if not isinstance(node, MappingNode):
        r.problem(
            node,
            "a block must be a mapping such as {{process: name, run: [..]}}, found {}".format(_kind_of(node)),
            block=path,
        )
        return None
    keys = [k.value for k, _ in node.value if isinstance(k, ScalarNode)]
    kinds = [k for k in keys if k in _BLOCK_KINDS]
    if len(kinds) != 1:
        found = "found " + " and ".join(kinds) if kinds else "found none"
        close = difflib.get_close_matches(keys[0], _BLOCK_KINDS, n=1) if keys and not kinds else []
        hint = "did you mean {!r}?".format(close[0]) if close else None
        r.problem(
            node,
            "a block has exactly one of the keys process, barrier, semaphore, workflow; " + found,
            block=path,
            hint=hint,
        )
        return None
    kind = kinds[0]
    if kind == "process":
        return _process_block(r, node, path, default=None)
    if kind == "workflow":
        return _workflow(r, node, path)
    return _barrier(r, node, path, kind)


def _process_block(r: _Reader, node: Node, path: Path_, *, default: Optional[str]) -> Optional[ProcessBlock]:
    f = r.fields(node, "process block", block=(*path, *_peek(node, "process", default)))
    if f is None:
        return None
    name = r.get(f, "process", lambda n, w: r.name(n, w, block=path)) if "process" in f else default
    if name is None:
        return None
    here = (*path, name)
    processes: List[Process] = []
    singles = [k for k in _PROCESS_KEYS if k in f]
    if "processes" in f:
        if singles:
            r.problem(
                f[singles[0]][0],
                "a process block has either run: (one process) or processes: (several), not both",
                block=here,
            )
        for item in r.items(f["processes"][1], "processes", block=here):
            pf = r.fields(item, "process", required=("name", "run"), block=here)
            pname = r.get(pf, "name", lambda n, w: r.name(n, w, block=here)) if pf else None
            if pf is not None and pname is not None:
                proc = _process(r, pf, pname, item, here)
                if proc is not None:
                    processes.append(proc)
    elif "run" not in f:
        r.problem(node, "a process block needs the key 'run' (or 'processes')", block=here)
    else:
        proc = _process(r, f, name, node, here)
        if proc is not None:
            processes.append(proc)
    policies: List[ExitPolicy] = []
    if "exit" in f:
        for item in r.items(f["exit"][1], "exit", block=here):
            policy = _exit_policy(r, item, here)
            if policy is not None:
                policies.append(policy)
    return ProcessBlock(
        name=name,
        processes=tuple(processes),
        predecessors=r.get(f, "after", lambda n, w: r.strings(n, w, block=here)) or (),
        exit_policies=tuple(policies),
        liveness=_liveness(r, f["liveness"][1], here) if "liveness" in f else None,
        outputs=r.get(f, "outputs", lambda n, w: r.strings(n, w, block=here)) or (),
        where=r.where(node),
    )


def _run(r: _Reader, node: Node, here: Path_) -> Optional[Tuple[str, Tuple[str, ...]]]:
    """``[prog, arg, ..]``, ``{path: prog, args: [..]}`` or a lone program name."""
    if isinstance(node, SequenceNode):
        argv = [r.text(item, "an argument of run", block=here) for item in node.value]
        if not node.value:
            r.problem(node, "run needs at least the program to run", block=here)
        if not node.value or any(a is None for a in argv):
            return None
        return str(argv[0]), tuple(str(a) for a in argv[1:])
    if isinstance(node, MappingNode):
        f = r.fields(node, "run", required=("path",), block=here)
        path = r.get(f, "path", lambda n, w: r.name(n, w, block=here)) if f else None
        if f is None or path is None:
            return None
        args = []
        if "args" in f:
            args = [r.text(item, "an argument of run", block=here) for item in r.items(f["args"][1], "args")]
        return path, tuple(str(a) for a in args if a is not None)
    text = r.name(node, "run", block=here)
    if text is None:
        return None
    if text.split() != [text]:
        try:
            suggestion = "run: [" + ", ".join(shlex.split(text)) + "]"
        except ValueError:
            suggestion = "run: [program, arg, ..]"
        r.problem(
            node,
            "run is a list of arguments, not a command line",
            block=here,
            hint="write " + suggestion + " (for a shell, write [sh, -c, '..'])",
        )
        return None
    return text, ()


def _process(r: _Reader, f: Fields, name: str, node: Node, here: Path_) -> Optional[Process]:
    argv = _run(r, f["run"][1], here) if "run" in f else None
    env = _env(r, f["env"][1], here) if "env" in f else ()

    def opt(n: Node, w: str) -> Optional[str]:
        return r.optional(n, w, block=here)

    if argv is None:
        return None
    return Process(
        name=name,
        path=argv[0],
        args=argv[1],
        cwd=r.get(f, "cwd", opt),
        env=tuple(env),
        stdin=r.get(f, "stdin", opt),
        stdout=r.get(f, "stdout", opt),
        stderr=r.get(f, "stderr", opt),
        where=r.where(node),
    )


def _env(r: _Reader, node: Node, here: Path_) -> Tuple[Tuple[str, str], ...]:
    """``{NAME: value, ..}``, or a list of ``NAME=value`` strings (the form that allows a name twice)."""
    env: List[Tuple[str, str]] = []
    if isinstance(node, SequenceNode):
        for item in node.value:
            text = r.text(item, "an item of env", block=here)
            if text is None:
                continue
            name, sep, value = text.partition("=")
            if not sep:
                r.problem(item, "env item {!r} is not NAME=value".format(text), block=here)
                continue
            env.append((name, value))
        return tuple(env)
    for key, val in r.entries(node, "env", block=here, allow_null=True) or []:
        text = r.text(val, "env " + key.value, block=here)
        if text is not None:
            env.append((key.value, text))
    return tuple(env)


def _exit_policy(r: _Reader, node: Node, here: Path_) -> Optional[ExitPolicy]:
    f = r.fields(node, "exit policy", required=("code", "action"), block=here)
    if f is None or "code" not in f or "action" not in f:
        return None
    code = r.name(f["code"][1], "code", block=here)
    action = r.name(f["action"][1], "action", block=here)
    if code is None or action is None:
        return None
    return ExitPolicy(
        match="*" if code == "any" else code,
        action=action,
        max_restarts=r.get(f, "max_restarts", lambda n, w: r.integer(n, w, block=here)),
        where=r.where(node),
    )


def _liveness(r: _Reader, node: Node, here: Path_) -> Optional[LivenessMonitor]:
    f = r.fields(node, "liveness", required=("run",), block=here)
    argv = _run(r, f["run"][1], here) if f and "run" in f else None
    if f is None or argv is None:
        return None
    interval = r.get(f, "interval", lambda n, w: r.number(n, w, block=here))
    return LivenessMonitor(
        path=argv[0], args=argv[1], interval=1.0 if interval is None else interval, where=r.where(node)
    )


def _barrier(r: _Reader, node: Node, path: Path_, kind: str) -> Optional[BarrierBlock]:
    f = r.fields(node, kind + " block", block=(*path, *_peek(node, kind)))
    name = r.name(f[kind][1], kind, block=path) if f else None
    if f is None or name is None:
        return None
    here = (*path, name)

    def integer(n: Node, w: str) -> Optional[int]:
        return r.integer(n, w, block=here)

    def number(n: Node, w: str) -> Optional[float]:
        return r.number(n, w, block=here)

    threshold: Optional[float] = None
    if "threshold" in f:
        t = f["threshold"][1]
        if isinstance(t, ScalarNode) and t.tag not in (_INT, _FLOAT, _NULL) and t.value.endswith("%"):
            try:
                threshold = float(t.value[:-1]) / 100
            except ValueError:
                r.problem(t, "threshold must be a fraction (0.9) or a percentage (90%)", block=here)
        else:
            threshold = number(t, "threshold")
    return BarrierBlock(
        name=name,
        predecessors=r.get(f, "after", lambda n, w: r.strings(n, w, block=here)) or (),
        kind=kind,
        max=r.get(f, "max", integer),
        threshold=threshold,
        timeout=r.get(f, "timeout", number),
        adaptive=r.flag(f["adaptive"][1], "adaptive", block=here) if "adaptive" in f else False,
        capacity=r.get(f, "capacity", integer),
        until=r.get(f, "until", lambda n, w: r.optional(n, w, block=here)),
        where=r.where(node),
    )


def _workflow(r: _Reader, node: Node, path: Path_) -> Optional[WorkflowBlock]:
    f = r.fields(node, "workflow block", required=("task",), block=(*path, *_peek(node, "workflow")))
    name = r.name(f["workflow"][1], "workflow", block=path) if f else None
    if f is None or name is None:
        return None
    here = (*path, name)
    task = _process_block(r, f["task"][1], here, default="task") if "task" in f else None
    if task is None:
        return None
    return WorkflowBlock(
        name=name,
        task=task,
        data_files=r.get(f, "data", lambda n, w: r.strings(n, w, block=here)) or (),
        predecessors=r.get(f, "after", lambda n, w: r.strings(n, w, block=here)) or (),
        where=r.where(node),
    )


#: the tags of plain YAML data; any other (``!!python/object``, ``!custom``) is refused
STANDARD_TAGS = frozenset(
    "tag:yaml.org,2002:" + t
    for t in ("str", "int", "float", "bool", "null", "seq", "map", "timestamp", "binary", "set", "omap", "merge")
)


def _check_tags(r: _Reader, root: Node) -> None:
    """Report every node with a tag outside YAML's standard ones (``!!python/object``, ``!custom``)."""
    seen = set()
    todo = [root]
    while todo:
        node = todo.pop()
        if id(node) in seen:  # aliases share nodes, and may even form cycles
            continue
        seen.add(id(node))
        if node.tag not in STANDARD_TAGS:
            r.problem(node, "unsupported YAML tag {!r}".format(node.tag), hint="a spec uses plain YAML data only")
        if isinstance(node, SequenceNode):
            todo.extend(node.value)
        elif isinstance(node, MappingNode):
            for key, value in node.value:
                todo.extend((key, value))


def compose_yaml(text: str, *, file: Optional[str] = None) -> Optional[Node]:
    """The node tree of ``text`` (None for an empty document), composed by the safe loader: nothing is
    constructed. Malformed YAML raises one :class:`SpecError` at the parser's position. Shared with the pool
    file readers."""
    try:
        root: Optional[Node] = yaml.compose(text, Loader=_LOADER)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        message = "malformed YAML: " + " ".join(p for p in (exc.context, exc.problem) if p)
        line = mark.line + 1 if mark is not None else None
        column = mark.column + 1 if mark is not None else None
        raise SpecError([SpecProblem(message, file=file, line=line, column=column)]) from None
    except yaml.YAMLError as exc:
        position = getattr(exc, "position", None)
        line = text.count("\n", 0, position) + 1 if isinstance(position, int) else None
        reason = getattr(exc, "reason", None) or str(exc).splitlines()[0]
        raise SpecError([SpecProblem("malformed YAML: " + str(reason), file=file, line=line)]) from None
    except UnicodeError as exc:
        raise SpecError([SpecProblem("unreadable text: {}".format(exc), file=file)]) from None
    except RecursionError:
        raise SpecError([SpecProblem("malformed YAML: nested too deeply", file=file)]) from None
    return root


def parse_yaml(text: str, *, file: Optional[str] = None) -> Project:
    """Read a YAML spec into the model; raise one :class:`SpecError` listing every problem found."""
    from plush.spec.validate import validate

    reader = _Reader(file)
    root = compose_yaml(text, file=file)
    if root is None:
        raise SpecError([SpecProblem("the spec is empty: it needs at least project: and application:", file=file)])
    _check_tags(reader, root)
    project = _project(reader, root)
    if reader.problems or project is None:
        found = sorted(reader.problems, key=lambda p: (p.line or 0, p.column or 0))  # stable: file order
        raise SpecError(found or [SpecProblem("the spec could not be read", file=file)])
    problems = list(validate(project))
    if problems:
        raise SpecError(problems)
    return project


def read_yaml(path: str | Path) -> Project:
    """Read and validate the YAML spec at ``path``; the model's ``source`` is that path."""
    name = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise SpecError([SpecProblem("cannot read the spec: " + reason, file=name)]) from None
    return dataclasses.replace(parse_yaml(text, file=name), source=name)
