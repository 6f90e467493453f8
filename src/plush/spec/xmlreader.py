"""The Plush XML reader: PLUSH-FORMAT.md's ``<plush>``/``<gush>`` documents into one :class:`Project`.

Parsing goes through defusedxml (DTDs, entity declarations and external references are refused, so
billion-laughs and XXE documents fail before anything expands; nothing touches the network). A subclass
of its parser records the line and column of every start tag, so each model object gets a
:class:`~plush.spec.model.Where` and every problem names ``file:line:column``.

Invariants:

- the reader never raises anything but :class:`~plush.errors.SpecError` for a bad document (malformed
  XML, unknown element or attribute, missing required field, bad number), and it collects ALL problems of
  the file, then runs :func:`plush.spec.validate.validate` on what it could build, and raises once;
- unknown names get the closest valid one as a hint (``did you mean <predecessor>?``);
- ``<num_hosts min="3"/>`` means 3..3, ``<num_hosts max="5"/>`` means 1..5; a component without
  ``<rspec>`` wants one host; a ``<process>`` without a name takes its block's name;
- text of single-value elements (``<path>``, ``<cwd>``, ``<data_file>``, ...) is stripped; ``<arg>`` and
  ``<env>`` values are kept exactly as written, so :mod:`plush.spec.xmlwriter` round-trips them.

Controller-side (uses defusedxml). Longer than most modules because it is one table-driven walk over
every element of the format; splitting it would scatter that one table.
"""

from __future__ import annotations

import difflib
import math
import os
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Set, Tuple, Union

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import DefusedXMLParser

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
from plush.spec.validate import validate

__all__ = ["ELEMENTS", "parse_tree", "parse_xml", "read_xml"]

#: element -> (attributes, child elements) that PLUSH-FORMAT.md allows in it
ELEMENTS: Dict[str, Tuple[Tuple[str, ...], Tuple[str, ...]]] = {
    "plush": ((), ("project",)),
    "project": (("name",), ("software", "component", "application_block", "experiment")),
    "software": (("name", "type"), ("package",)),
    "package": (("name", "type"), ("path", "dest")),
    "component": (("name",), ("rspec", "software", "resources")),
    "rspec": ((), ("num_hosts", "require", "max_load", "min_free_mem")),
    "require": (("attr", "min", "max", "equals"), ()),
    "resources": ((), ("resource",)),
    "resource": (("type", "group"), ()),
    "application_block": (("name", "service", "reconnect_interval", "on_failure"), ("execution",)),
    "execution": ((), ("component_block",)),
    "component_block": (("name",), ("component", "process_block", "barrier_block", "workflow_block")),
    "process_block": (("name",), ("predecessor", "process", "exit_policy", "liveness_monitor", "output")),
    "process": (("name",), ("path", "cmdline", "cwd", "env", "stdin", "stdout", "stderr")),
    "cmdline": ((), ("arg",)),
    "exit_policy": (("code", "action", "max_restarts"), ()),
    "liveness_monitor": (("interval",), ("path", "cmdline")),
    "barrier_block": (
        ("name", "max", "threshold", "timeout", "adaptive", "type", "capacity", "until"),
        ("predecessor",),
    ),
    "workflow_block": (("name",), ("predecessor", "data_file", "process_block")),
    "predecessor": (("name",), ()),
    "env": (("name",), ()),
}
ELEMENTS["gush"] = ELEMENTS["plush"]
ELEMENTS["experiment"] = ELEMENTS["application_block"]
_ALL_NAMES = sorted(set(ELEMENTS) | {"path", "dest", "cwd", "stdin", "stdout", "stderr", "arg", "output"})
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}

Number = Union[int, float]


class _LineParser(DefusedXMLParser):
    """defusedxml's parser, refusing DTDs too, recording where each element starts."""

    def __init__(self) -> None:
        super().__init__(forbid_dtd=True, forbid_entities=True, forbid_external=True)
        self.positions: Dict[int, Tuple[int, int]] = {}

    def _start(self, tag: str, attr_list: List[str]) -> ET.Element:
        elem: ET.Element = super()._start(tag, attr_list)  # type: ignore[misc]
        self.positions[id(elem)] = (self.parser.CurrentLineNumber, self.parser.CurrentColumnNumber + 1)
        return elem

    def here(self) -> Tuple[int, int]:
        return (self.parser.CurrentLineNumber, self.parser.CurrentColumnNumber + 1)


def _closest(name: str, options: Sequence[str], fmt: str) -> Optional[str]:
    close = difflib.get_close_matches(name, list(options), n=1, cutoff=0.6)
    if close:
        return "did you mean " + fmt.format(close[0]) + "?"
    if options:
        return "expected " + ", ".join(fmt.format(o) for o in options)
    return None


class _Reader:
    """Walks the element tree into model objects, collecting problems instead of raising."""

    def __init__(self, file: Optional[str], positions: Dict[int, Tuple[int, int]]) -> None:
        self.file = file
        self.positions = positions
        self.problems: List[SpecProblem] = []
        self.poisoned: Set[Tuple[Optional[int], Optional[int]]] = set()

    # --- plumbing ------------------------------------------------------------------------------

    def where(self, el: ET.Element) -> Where:
        line, col = self.positions.get(id(el), (None, None))
        return Where(file=self.file, line=line, column=col)

    def problem(
        self,
        el: ET.Element,
        message: str,
        *,
        hint: Optional[str] = None,
        block: Optional[str] = None,
        poison: bool = False,
    ) -> None:
        """Record a problem at ``el``. ``poison``: the model object built from ``el`` holds a placeholder
        (a missing name, path or number), so validation problems at the same place are consequences."""
        w = self.where(el)
        if poison:
            self.poisoned.add((w.line, w.column))
        self.problems.append(SpecProblem(message, file=self.file, line=w.line, column=w.column, block=block, hint=hint))

    def attrs(self, el: ET.Element, required: Sequence[str] = (), block: Optional[str] = None) -> Dict[str, str]:
        allowed = ELEMENTS.get(el.tag, ((), ()))[0]
        for key in el.attrib:
            if key not in allowed:
                self.problem(
                    el,
                    "unknown attribute {}= on <{}>".format(key, el.tag),
                    hint=_closest(key, allowed, "{}=") if allowed else "<{}> takes no attributes".format(el.tag),
                    block=block,
                )
        for key in required:
            if key not in el.attrib:
                self.problem(el, "<{}> needs a {}= attribute".format(el.tag, key), block=block, poison=True)
        return dict(el.attrib)

    def kids(self, el: ET.Element, block: Optional[str] = None) -> Dict[str, List[ET.Element]]:
        """Known children grouped by tag (in order); unknown children and stray text are problems."""
        allowed = ELEMENTS.get(el.tag, ((), ()))[1]
        out: Dict[str, List[ET.Element]] = {t: [] for t in allowed}
        self.stray_text(el, el.text, block)
        for child in el:
            self.stray_text(el, child.tail, block)
            if child.tag in out:
                out[child.tag].append(child)
            elif child.tag in _ALL_NAMES:
                self.problem(
                    child,
                    "<{}> does not belong in <{}>".format(child.tag, el.tag),
                    hint="expected " + ", ".join("<{}>".format(t) for t in allowed),
                    block=block,
                )
            else:
                self.problem(
                    child,
                    "unknown element <{}> in <{}>".format(child.tag, el.tag),
                    hint=_closest(child.tag, allowed, "<{}>"),
                    block=block,
                )
        return out

    def stray_text(self, el: ET.Element, text: Optional[str], block: Optional[str]) -> None:
        if text and text.strip():
            hint = "put each argument in <arg>…</arg>" if el.tag == "cmdline" else None
            self.problem(el, "unexpected text {!r} in <{}>".format(text.strip()[:30], el.tag), hint=hint, block=block)

    def one(
        self, parent: ET.Element, kids: Dict[str, List[ET.Element]], tag: str, block: Optional[str] = None
    ) -> Optional[ET.Element]:
        found = kids.get(tag, [])
        if len(found) > 1:
            self.problem(found[1], "more than one <{}> in <{}>".format(tag, parent.tag), block=block)
        return found[0] if found else None

    def text(self, el: ET.Element, *, strip: bool = True, block: Optional[str] = None) -> str:
        """The text of a single-value element (no children, no attributes unless ELEMENTS says so)."""
        if el.tag not in ELEMENTS:
            self.attrs(el, block=block)
        for child in el:
            self.problem(child, "<{}> holds text only, not <{}>".format(el.tag, child.tag), block=block)
        value = el.text or ""
        return value.strip() if strip else value

    def text_of(
        self, parent: ET.Element, kids: Dict[str, List[ET.Element]], tag: str, block: Optional[str] = None
    ) -> Optional[str]:
        el = self.one(parent, kids, tag, block)
        return None if el is None else self.text(el, block=block)

    def number(self, el: ET.Element, what: str, raw: Optional[str], kind: type, block: Optional[str] = None) -> Any:
        if raw is None:
            return None
        text = raw.strip()
        try:
            value: Number = int(text) if kind is int else float(text)
        except ValueError:  # (also: more digits than Python converts)
            value = math.inf if text.lstrip("+-").isdigit() else math.nan
        shown = repr(raw) if len(raw) <= 40 else repr(raw[:40]) + "…"
        if abs(value) > MAX_INTEGER if isinstance(value, int) else math.isinf(value):
            self.problem(
                el,
                "number {}={} is too large{}".format(what, shown, " (at most {})".format(MAX_INTEGER) * (kind is int)),
                block=block,
                poison=True,
            )
            return None
        if isinstance(value, float) and math.isnan(value):
            wanted = "a whole number" if kind is int else "a number"
            self.problem(el, "bad number {}={}: expected {}".format(what, shown, wanted), block=block, poison=True)
            return None
        return value

    def flag(self, el: ET.Element, what: str, raw: Optional[str]) -> bool:
        if raw is None or raw.strip().lower() in _FALSE:
            return False
        if raw.strip().lower() in _TRUE:
            return True
        self.problem(el, "bad value {}={!r}: expected 1 or 0".format(what, raw), poison=True)
        return False

    def name(self, el: ET.Element, block: Optional[str] = None) -> str:
        return self.attrs(el, ("name",), block).get("name", "")

    # --- document ------------------------------------------------------------------------------

    def document(self, root: ET.Element) -> Optional[Project]:
        if root.tag not in ("plush", "gush"):
            self.problem(
                root, "the root element is <{}>, not <plush>".format(root.tag), hint="wrap the spec in <plush>"
            )
            return None
        self.attrs(root)
        projects = self.kids(root)["project"]
        if not projects:
            self.problem(root, "<{}> has no <project>".format(root.tag))
            return None
        if len(projects) > 1:
            self.problem(projects[1], "only one <project> per file")
        return self.project(projects[0])

    def project(self, el: ET.Element) -> Project:
        name = self.name(el)
        kids = self.kids(el)
        apps = kids["application_block"] + kids["experiment"]
        apps.sort(key=lambda a: self.positions.get(id(a), (0, 0)))
        if not apps:
            self.problem(el, "<project> has no <application_block> (or <experiment>)")
            app = Application(name="app", where=self.where(el))
        else:
            if len(apps) > 1:
                self.problem(apps[1], "only one <application_block> per project")
            app = self.application(apps[0])
        return Project(
            name=name,
            application=app,
            software=tuple(self.software(s) for s in kids["software"]),
            components=tuple(self.component(c) for c in kids["component"]),
            source=self.file,
            where=self.where(el),
        )

    def software(self, el: ET.Element) -> Software:
        a = self.attrs(el, ("name",))
        return Software(
            name=a.get("name", ""),
            type=a.get("type", "none"),
            packages=tuple(self.package(p) for p in self.kids(el)["package"]),
            where=self.where(el),
        )

    def package(self, el: ET.Element) -> Package:
        a = self.attrs(el, ("name",))
        kids = self.kids(el)
        path = self.text_of(el, kids, "path")
        if path is None:
            self.problem(el, "<package> needs a <path>", poison=True)
        return Package(
            name=a.get("name", ""),
            path=path or "",
            type=a.get("type", "local"),
            dest=self.text_of(el, kids, "dest"),
            where=self.where(el),
        )

    def component(self, el: ET.Element) -> Component:
        name = self.name(el)
        kids = self.kids(el)
        software = []
        for s in kids["software"]:
            if len(s) or set(s.attrib) - {"name"}:
                self.problem(s, "a <software> reference in a <component> takes only name=")
            software.append(s.attrib.get("name", ""))
            if "name" not in s.attrib:
                self.problem(s, "<software> needs a name= attribute", poison=True)
        resources = []
        for res in kids["resources"]:
            for r in self.kids(res)["resource"]:
                self.kids(r)
                a = self.attrs(r, ("type",))
                resources.append(ResourceRef(type=a.get("type", "local"), group=a.get("group"), where=self.where(r)))
        count, reqs, load, mem = HostCount(1, 1), [], None, None
        rspec = self.one(el, kids, "rspec")
        if rspec is not None:
            self.attrs(rspec)
            rk = self.kids(rspec)
            nh = self.one(rspec, rk, "num_hosts")
            if nh is not None:
                count = self.num_hosts(nh)
            for r in rk["require"]:
                self.kids(r)
                a = self.attrs(r, ("attr",))
                reqs.append(
                    AttrRequirement(
                        attr=a.get("attr", ""),
                        min=self.number(r, "min", a.get("min"), float),
                        max=self.number(r, "max", a.get("max"), float),
                        equals=a.get("equals"),
                        where=self.where(r),
                    )
                )
            ml = self.one(rspec, rk, "max_load")
            if ml is not None:
                load = self.number(ml, "max_load", self.text(ml), float)
            mf = self.one(rspec, rk, "min_free_mem")
            if mf is not None:
                mem = self.number(mf, "min_free_mem", self.text(mf), int)
        return Component(
            name=name,
            num_hosts=count,
            requirements=tuple(reqs),
            max_load=load,
            min_free_mem=mem,
            software=tuple(software),
            resources=tuple(resources),
            where=self.where(el),
        )

    def num_hosts(self, el: ET.Element) -> HostCount:
        for child in el:
            self.problem(child, "<num_hosts> holds a number, not <{}>".format(child.tag))
        unknown = set(el.attrib) - {"min", "max"}
        for key in sorted(unknown):
            self.problem(
                el, "unknown attribute {}= on <num_hosts>".format(key), hint=_closest(key, ["min", "max"], "{}=")
            )
        text = (el.text or "").strip()
        if text:
            if "min" in el.attrib or "max" in el.attrib:
                self.problem(el, "<num_hosts> has both a number and min=/max=", hint="use one form")
            n = self.number(el, "num_hosts", text, int)
            return HostCount(n, n) if n is not None else HostCount(1, 1)
        if "min" not in el.attrib and "max" not in el.attrib:
            self.problem(
                el, "<num_hosts> is empty", hint='write <num_hosts>N</num_hosts> or <num_hosts min="1" max="N"/>'
            )
            return HostCount(1, 1)
        low = self.number(el, "min", el.attrib.get("min"), int)
        high = self.number(el, "max", el.attrib.get("max"), int)
        low = 1 if low is None else low
        return HostCount(low, low if high is None else high)

    # --- execution -----------------------------------------------------------------------------

    def application(self, el: ET.Element) -> Application:
        a = self.attrs(el, ("name",))
        name = a.get("name", "")
        kids = self.kids(el)
        executions = kids["execution"]
        if not executions:
            self.problem(el, "<{}> has no <execution>".format(el.tag))
        elif len(executions) > 1:
            self.problem(executions[1], "only one <execution> per application")
        cbs: List[ComponentBlock] = []
        for ex in executions[:1]:
            self.attrs(ex)
            cbs.extend(self.component_block(cb, "/" + name) for cb in self.kids(ex)["component_block"])
        return Application(
            name=name,
            component_blocks=tuple(cbs),
            service=self.flag(el, "service", a.get("service")),
            reconnect_interval=self.number(el, "reconnect_interval", a.get("reconnect_interval"), float),
            on_failure=a.get("on_failure"),
            where=self.where(el),
        )

    def component_block(self, el: ET.Element, parent: str) -> ComponentBlock:
        name = self.name(el, parent)
        path = parent + "/" + name
        blocks: List[Block] = []
        comps: List[str] = []
        for c in self.kids(el, path)["component"]:
            self.kids(c, path)
            comps.append(self.name(c, path))
        for child in el:  # blocks in file order, whatever their kind
            if child.tag == "process_block":
                blocks.append(self.process_block(child, path))
            elif child.tag == "barrier_block":
                blocks.append(self.barrier_block(child, path))
            elif child.tag == "workflow_block":
                blocks.append(self.workflow_block(child, path))
        if not comps:
            self.problem(
                el, "<component_block> names no <component>", hint='add <component name="…"/>', block=path, poison=True
            )
        elif len(comps) > 1:
            self.problem(el, "<component_block> names more than one <component>", block=path)
        return ComponentBlock(
            name=name, component=comps[0] if comps else "", blocks=tuple(blocks), where=self.where(el)
        )

    def predecessors(self, kids: Dict[str, List[ET.Element]], path: str) -> Tuple[str, ...]:
        out = []
        for p in kids["predecessor"]:
            self.kids(p, path)
            if "name" in p.attrib:
                out.append(self.name(p, path))
            else:
                self.name(p, path)
        return tuple(out)

    def process_block(self, el: ET.Element, parent: str) -> ProcessBlock:
        name = self.name(el, parent)
        path = parent + "/" + name
        kids = self.kids(el, path)
        lm = self.one(el, kids, "liveness_monitor", path)
        return ProcessBlock(
            name=name,
            processes=tuple(self.process(p, name, path) for p in kids["process"]),
            predecessors=self.predecessors(kids, path),
            exit_policies=tuple(self.exit_policy(e, path) for e in kids["exit_policy"]),
            liveness=None if lm is None else self.liveness(lm, path),
            outputs=tuple(self.text(o, block=path) for o in kids["output"]),
            where=self.where(el),
        )

    def command(self, el: ET.Element, kids: Dict[str, List[ET.Element]], path: str) -> Tuple[str, Tuple[str, ...]]:
        prog = self.text_of(el, kids, "path", path)
        if prog is None:
            self.problem(el, "<{}> needs a <path> (the program to run)".format(el.tag), block=path, poison=True)
        args: List[str] = []
        cmd = self.one(el, kids, "cmdline", path)
        if cmd is not None:
            self.attrs(cmd, block=path)
            args.extend(self.text(a, strip=False, block=path) for a in self.kids(cmd, path)["arg"])
        return prog or "", tuple(args)

    def process(self, el: ET.Element, block_name: str, path: str) -> Process:
        a = self.attrs(el, (), path)
        kids = self.kids(el, path)
        prog, args = self.command(el, kids, path)
        env = []
        for e in kids["env"]:
            key = self.name(e, path)
            env.append((key, self.text(e, strip=False, block=path)))
        return Process(
            name=a.get("name", block_name),
            path=prog,
            args=args,
            cwd=self.text_of(el, kids, "cwd", path),
            env=tuple(env),
            stdin=self.text_of(el, kids, "stdin", path),
            stdout=self.text_of(el, kids, "stdout", path),
            stderr=self.text_of(el, kids, "stderr", path),
            where=self.where(el),
        )

    def exit_policy(self, el: ET.Element, path: str) -> ExitPolicy:
        self.kids(el, path)
        a = self.attrs(el, ("code", "action"), path)
        return ExitPolicy(
            match=a.get("code", "*").strip(),
            action=a.get("action", "abort").strip(),
            max_restarts=self.number(el, "max_restarts", a.get("max_restarts"), int, path),
            where=self.where(el),
        )

    def liveness(self, el: ET.Element, path: str) -> LivenessMonitor:
        a = self.attrs(el, (), path)
        prog, args = self.command(el, self.kids(el, path), path)
        interval = self.number(el, "interval", a.get("interval"), float, path)
        return LivenessMonitor(
            path=prog, args=args, interval=1.0 if interval is None else interval, where=self.where(el)
        )

    def barrier_block(self, el: ET.Element, parent: str) -> BarrierBlock:
        a = self.attrs(el, ("name",), parent)
        name = a.get("name", "")
        path = parent + "/" + name
        kids = self.kids(el, path)
        return BarrierBlock(
            name=name,
            predecessors=self.predecessors(kids, path),
            kind=a.get("type", "barrier"),
            max=self.number(el, "max", a.get("max"), int, path),
            threshold=self.number(el, "threshold", a.get("threshold"), float, path),
            timeout=self.number(el, "timeout", a.get("timeout"), float, path),
            adaptive=self.flag(el, "adaptive", a.get("adaptive")),
            capacity=self.number(el, "capacity", a.get("capacity"), int, path),
            until=a.get("until"),
            where=self.where(el),
        )

    def workflow_block(self, el: ET.Element, parent: str) -> WorkflowBlock:
        name = self.name(el, parent)
        path = parent + "/" + name
        kids = self.kids(el, path)
        tasks = kids["process_block"]
        if not tasks:
            self.problem(el, "<workflow_block> needs one <process_block> (its task)", block=path, poison=True)
            task = ProcessBlock(name="task", where=self.where(el))
        else:
            if len(tasks) > 1:
                self.problem(tasks[1], "a <workflow_block> has exactly one <process_block>", block=path)
            task = self.process_block(tasks[0], path)
        return WorkflowBlock(
            name=name,
            task=task,
            data_files=tuple(self.text(d, block=path) for d in kids["data_file"]),
            predecessors=self.predecessors(kids, path),
            where=self.where(el),
        )


def parse_tree(
    text: Union[str, bytes], *, file: Optional[str] = None, what: str = "spec"
) -> Tuple[ET.Element, Dict[int, Tuple[int, int]]]:
    """The element tree of ``text`` and the (line, column) of each element's start tag, by ``id()``.

    Malformed XML, DTDs, entity declarations and external references raise one :class:`SpecError` at the
    parser's position (``what`` names the kind of file in the hint). Shared with the pool file readers.
    """
    parser = _LineParser()
    try:
        parser.feed(text)
        root = parser.close()
    except ET.ParseError as exc:
        line, col = getattr(exc, "position", (None, None))
        message = str(exc).split(": line", 1)[0]
        raise SpecError(
            [SpecProblem("malformed XML: " + message, file=file, line=line, column=None if col is None else col + 1)]
        ) from None
    except DefusedXmlException as exc:
        line, col = parser.here()
        raise SpecError(
            [
                SpecProblem(
                    "refused XML: " + type(exc).__name__,
                    file=file,
                    line=line,
                    column=col,
                    hint="DTDs, entity declarations and external references are not allowed in a " + what,
                )
            ]
        ) from None
    except (ValueError, LookupError, UnicodeError, RecursionError) as exc:
        raise SpecError([SpecProblem("unreadable XML: {}".format(exc), file=file)]) from None
    return root, parser.positions


def parse_xml(text: Union[str, bytes], *, file: Optional[str] = None) -> Project:
    """Parse a Plush XML spec; raise one :class:`SpecError` listing every problem (parse + validation)."""
    root, positions = parse_tree(text, file=file)
    reader = _Reader(file, positions)
    project = reader.document(root)
    problems = list(reader.problems)
    if project is not None:
        problems.extend(p for p in validate(project) if (p.line, p.column) not in reader.poisoned)
    if problems:
        problems.sort(key=lambda p: (p.line is None, p.line or 0, p.column or 0))
        raise SpecError(problems)
    assert project is not None
    return project


def read_xml(path: Union[str, "os.PathLike[str]"]) -> Project:
    """Read and parse the Plush XML spec at ``path`` (see :func:`parse_xml`)."""
    name = str(path)
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise SpecError([SpecProblem("cannot read the spec: {}".format(exc.strerror or exc), file=name)]) from None
    return parse_xml(data, file=name)
