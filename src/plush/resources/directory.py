"""The Plush resource directory (XML): ``PLUSH-FORMAT.md``'s ``<plush><resource_manager type=…><node …/>``.

Role: one of the pool file readers; it finds the entries and where they are, and
:mod:`~plush.resources.poolentry` says what they mean::

    <plush>
      <resource_manager type="local">
        <node hostname="node1[:port]" user="alice" group="lab" site="ucsd" vip="10.0.0.1" vn="1"/>
      </resource_manager>
    </plush>

Every ``<node>`` attribute but ``hostname``, ``user`` and ``group`` is a property. The document is parsed as
the spec reader parses one (:func:`plush.spec.xmlreader.parse_tree`: defusedxml, no DTD, no entities, the
line of every element), so every problem names ``file:line:column`` and the element.

Invariants: nothing but :class:`~plush.resources.poolentry.PoolFileError` escapes :func:`parse_directory`
for any input; all problems of a file are reported at once. ``<gush>`` is accepted for ``<plush>``. Pure.
"""

from __future__ import annotations

import difflib
import xml.etree.ElementTree as ET

from plush.errors import SpecError, SpecProblem
from plush.resources.host import Host
from plush.resources.poolentry import Entry, Spot, hosts_from_entries, pool_error, problems_or_hosts
from plush.spec.xmlreader import parse_tree

__all__ = ["parse_directory"]

_CHILDREN = {"plush": "resource_manager", "gush": "resource_manager", "resource_manager": "node"}


class _Walk:
    def __init__(self, file: str | None, positions: dict[int, tuple[int, int]]) -> None:
        self.file = file
        self.positions = positions
        self.problems: list[SpecProblem] = []
        self.entries: list[Entry] = []

    def spot(self, el: ET.Element) -> Spot:
        line, column = self.positions.get(id(el), (None, None))
        return Spot(line, column, el.tag)

    def problem(self, el: ET.Element, message: str, hint: str | None = None) -> None:
        s = self.spot(el)
        self.problems.append(SpecProblem(message, file=self.file, line=s.line, column=s.column, hint=hint))

    def text(self, el: ET.Element, text: str | None) -> None:
        if text and text.strip():
            self.problem(el, f"unexpected text {text.strip()[:30]!r} in <{el.tag}>")

    def children(self, el: ET.Element) -> list[ET.Element]:
        """The children of ``el`` that belong there; the others and stray text are problems."""
        wanted = _CHILDREN.get(el.tag)
        self.text(el, el.text)
        out = []
        for child in el:
            self.text(el, child.tail)
            if child.tag == wanted:
                out.append(child)
                continue
            if child.tag == "project":
                hint = "this is a spec, not a pool file: a <project> and its <application_block> go in a spec"
            elif wanted is None:
                hint = f"<{el.tag}> has no elements inside"
            else:
                close = difflib.get_close_matches(str(child.tag), [wanted], n=1, cutoff=0.6)
                hint = f"did you mean <{close[0]}>?" if close else f"expected <{wanted}>"
            self.problem(child, f"unknown element <{child.tag}> in <{el.tag}>", hint)
        return out

    def document(self, root: ET.Element) -> None:
        if root.tag not in ("plush", "gush"):
            self.problem(root, f"the root element is <{root.tag}>, not <plush>", "wrap the directory in <plush>")
            return
        for key in root.attrib:
            self.problem(root, f"unknown attribute {key}= on <{root.tag}>", f"<{root.tag}> takes no attributes")
        managers = self.children(root)
        if not managers and not self.problems:
            self.problem(root, "the directory names no hosts", 'add <resource_manager type="local"><node …/>')
        for manager in managers:
            self.manager(manager)

    def manager(self, el: ET.Element) -> None:
        for key in el.attrib:
            if key != "type":
                self.problem(el, f"unknown attribute {key}= on <resource_manager>", "it takes only type=")
        nodes = self.children(el)
        if not nodes:
            self.problem(el, "<resource_manager> holds no <node>")
        for node in nodes:
            self.children(node)
            fields: dict[str, str | None] = {}
            for key, value in node.attrib.items():
                if key == "type":
                    self.problem(node, "type= belongs on <resource_manager>, not on <node>")
                    continue
                fields[key] = value
            self.entries.append(Entry(fields, el.attrib.get("type"), self.spot(node), self.spot(el)))


def parse_directory(text: str | bytes, *, file: str | None = None) -> list[Host]:
    """The hosts of a Plush resource directory; :class:`PoolFileError` listing every problem."""
    try:
        root, positions = parse_tree(text, file=file, what="pool file")
    except SpecError as exc:
        raise pool_error(exc, text) from None
    walk = _Walk(file, positions)
    walk.document(root)
    hosts, problems = hosts_from_entries(walk.entries, file=file)
    return problems_or_hosts(hosts, walk.problems + problems)
