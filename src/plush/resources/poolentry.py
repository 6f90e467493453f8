"""Pool file entries: the fields every pool file format shares, checked once and turned into :class:`Host`\\ s.

Role: the three pool file readers (the Plush directory in :mod:`~plush.resources.directory`, the YAML
inventory and the JSON host list in :mod:`~plush.resources.inventory`) only find the entries and where they
are; this module owns what an entry means (``docs/pools.md``):

- ``hostname`` (required): one name or a ClusterShell host set (``node[01-64]``, ``a,b``), optionally
  ``:PORT``, the agent port on those hosts (1..65535). Every name expanded is one host.
- ``type``: ``local`` (sandbox hosts on this machine: reached on loopback whatever their name) or ``ssh``
  (hosts reached by SSH at their hostname: :mod:`plush.launch.ssh`; ``ssh_port`` and ``python`` are
  properties the SSH launcher reads).
- ``user``, ``group``: optional; every other field is a property (:func:`~plush.resources.host.property_value`:
  a number where the text is a finite number, else the text).

Invariants (the boundary: pool files and discovery output are user input):

- a host name is a safe single path component and never an option: ``[A-Za-z0-9_][A-Za-z0-9_.-]*``, at
  most 253 characters; a user name never starts with ``-``; property names are identifiers (dots and dashes
  allowed); values are one line of printable text (no control characters, valid UTF-8);
- names are unique within a file (the second entry is a problem naming the first's line); a file holds at
  most :data:`MAX_POOL_HOSTS` hosts;
- every problem carries the file and the line of its entry (or field), so a rejected file lists them all
  at once (:class:`PoolFileError`, a :class:`~plush.errors.SpecError`: the CLI prints both alike).

Validation is hand-written, not pydantic: every problem must name the line (and column) of its entry or
field in three formats, which pydantic's location paths do not give; the rules are a dozen checks on text
fields; and the readers collect all problems of a file at once. Pure: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from plush.errors import SpecError, SpecProblem
from plush.resources.host import Host, PropertyValue, property_value
from plush.resources.hostset import HostSetError, expand

__all__ = [
    "FIELDS",
    "LOCAL_ADDRESS",
    "MAX_POOL_HOSTS",
    "RESERVED",
    "TYPES",
    "Entry",
    "PoolFileError",
    "Spot",
    "host_entry",
    "hosts_from_entries",
    "pool_error",
    "problems_or_hosts",
]

#: the entry fields that are not properties (in directory files ``type`` is on ``<resource_manager>``)
FIELDS = ("hostname", "type", "user", "group")
#: the values of ``type``
TYPES = ("local", "ssh")
#: where an agent of a ``type="local"`` host is reached: this machine
LOCAL_ADDRESS = "127.0.0.1"
#: the most hosts one pool file may name
MAX_POOL_HOSTS = 100_000
#: names that would read as host fields but are not properties: what to write instead
RESERVED = {
    "port": "give the agent port in the hostname, as HOST:PORT",
    "name": "the host's name is its hostname",
    "address": "the host's address is its hostname (type local: this machine)",
    "provider": "the provider is the entry's type",
}

_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,252}\Z")
_USER = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}\$?\Z")
_GROUP = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.:@+-]{0,127}\Z")
_PROPERTY = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,63}\Z")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_MAX_VALUE = 4096
#: what YAML (and, but for the last three, expat) counts as the end of a line
_LINE_BREAK = re.compile("\r\n|[\r\n\x85\u2028\u2029]")


class PoolFileError(SpecError):
    """A pool file (directory, inventory, discovery output) was rejected: ``problems`` lists every problem
    found, each with its file and line, like a spec's."""


class Spot(NamedTuple):
    """Where something is in a pool file: 1-based line and column, and the XML element or YAML key."""

    line: int | None
    column: int | None = None
    element: str | None = None


@dataclass(frozen=True)
class Entry:
    """One host entry as a reader found it: its fields as text (None: given without a value), its type, and
    where the entry, each field and the type were written."""

    fields: Mapping[str, str | None]
    type: str | None
    at: Spot
    type_at: Spot
    spots: Mapping[str, Spot] = field(default_factory=dict)


def _cut(text: str, limit: int = 40) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "…")


def _bad_text(text: str) -> str | None:
    """Why ``text`` cannot be a field value, or None."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "is not valid UTF-8 text"
    if _CONTROL.search(text):
        return "holds a control character (one line of printable text only)"
    if len(text) > _MAX_VALUE:
        return f"is longer than {_MAX_VALUE} characters"
    return None


def _port(text: str) -> int | None:
    if not text.isascii() or not text.isdigit() or len(text) > 5 or not 1 <= int(text) <= 65535:
        return None
    return int(text)


class _Collector:
    """Problems of one file, in the order found."""

    def __init__(self, file: str | None) -> None:
        self.file = file
        self.problems: list[SpecProblem] = []

    def add(self, spot: Spot, message: str, hint: str | None = None) -> None:
        self.problems.append(
            SpecProblem(message, file=self.file, line=spot.line, column=spot.column, element=spot.element, hint=hint)
        )


def _names(c: _Collector, hostname: str, spot: Spot) -> tuple[list[str], int | None] | None:
    """The host names and agent port of a ``hostname`` field, or None after reporting why not."""
    text = hostname.strip()
    port = None
    if text.count(":") > 1:
        c.add(spot, f"hostname {_cut(text)} looks like an IPv6 address", "name the host by a host name")
        return None
    if ":" in text:
        text, _, port_text = text.rpartition(":")
        port = _port(port_text)
        if port is None:
            c.add(spot, f"bad agent port {_cut(port_text)} in hostname", "a port is a number in 1..65535")
            return None
    if not text:
        c.add(spot, "hostname is empty")
        return None
    try:
        names = expand(text) if "[" in text or "," in text or "]" in text else [text]
    except HostSetError as exc:
        c.add(spot, f"bad hostname: {exc}")
        return None
    for name in names:
        if not _NAME.match(name):
            c.add(
                spot,
                f"bad host name {_cut(name)}",
                "a host name is letters, digits, '_', '.' and '-', starting with a letter, digit or '_'",
            )
            return None
    return names, port


def _fields(c: _Collector, e: Entry) -> tuple[dict[str, str], dict[str, PropertyValue], bool]:
    """The entry's good host fields and properties, and whether all were good (problems reported)."""
    ok = True
    plain: dict[str, str] = {}
    props: dict[str, PropertyValue] = {}
    for key, value in e.fields.items():
        spot = e.spots.get(key, e.at)
        if key in RESERVED:
            c.add(spot, f"{key} is not a property", RESERVED[key])
            ok = False
            continue
        if key not in FIELDS and not _PROPERTY.match(key):
            why = "letters, digits, '_', '.' and '-', starting with a letter or '_', at most 64 characters"
            c.add(spot, f"bad property name {_cut(key)}", why)
            ok = False
            continue
        if value is None:
            c.add(spot, f"{key} has no value")
            ok = False
            continue
        bad = _bad_text(value)
        if bad is not None:
            c.add(spot, f"the value of {key} {bad}")
            ok = False
            continue
        if key in FIELDS:
            plain[key] = value
        else:
            props[key] = property_value(value)
    for key, pattern in (("user", _USER), ("group", _GROUP)):
        if key in plain and not pattern.match(plain[key]):
            why = f"a {key} name is letters, digits, '_', '.', '-', starting with a letter, digit or '_'"
            c.add(e.spots.get(key, e.at), f"bad {key} {_cut(plain.pop(key))}", why)
            ok = False
    return plain, props, ok


def _type(c: _Collector, e: Entry, reported: set[Spot]) -> str | None:
    """The entry's type, or None (a problem reported once per place the type was written)."""
    if e.type in TYPES:
        return e.type
    if e.type_at not in reported:
        reported.add(e.type_at)
        if e.type is None:
            c.add(e.type_at, "no type (local or ssh)", "type local: sandbox hosts on this machine")
        else:
            c.add(e.type_at, f"unknown type {_cut(e.type)}", "the types are " + ", ".join(TYPES))
    return None


def hosts_from_entries(entries: Iterable[Entry], *, file: str | None) -> tuple[list[Host], list[SpecProblem]]:
    """The hosts the entries name, in file order, and every problem found (hosts are only meaningful when
    there is none)."""
    c = _Collector(file)
    hosts: list[Host] = []
    first: dict[str, Spot] = {}
    reported: set[Spot] = set()
    for e in entries:
        kind = _type(c, e, reported)
        plain, props, ok = _fields(c, e)
        if "hostname" not in e.fields:
            c.add(e.at, "the entry has no hostname", "every entry names its host(s): hostname")
            continue
        if "hostname" not in plain:  # (its value was refused)
            continue
        spot = e.spots.get("hostname", e.at)
        named = _names(c, plain["hostname"], spot)
        if named is None:
            continue
        names, port = named
        if len(first) + len(names) > MAX_POOL_HOSTS:
            c.add(spot, f"the pool holds more than {MAX_POOL_HOSTS} hosts")
            break
        for name in names:
            if name in first:
                c.add(spot, f"host {name!r} is named twice", f"first at line {first[name].line}")
                continue
            first[name] = spot
            if not ok or kind is None:
                continue
            address = LOCAL_ADDRESS if kind == "local" else name
            hosts.append(Host(name, address, kind, port, plain.get("user"), plain.get("group"), props))
    return hosts, c.problems


def _number(value: PropertyValue) -> Any:
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    return value


def host_entry(host: Host) -> dict[str, Any]:
    """``host`` as an entry of the JSON host list (``docs/pools.md``): reading it back gives ``host``."""
    entry: dict[str, Any] = {"hostname": host.name + (f":{host.port}" if host.port else ""), "type": host.provider}
    if host.user is not None:
        entry["user"] = host.user
    if host.group is not None:
        entry["group"] = host.group
    for key, value in sorted(host.properties.items()):
        entry[key] = _number(value)
    return entry


def problems_or_hosts(hosts: Sequence[Host], problems: Sequence[SpecProblem]) -> list[Host]:
    """``hosts``, or :class:`PoolFileError` for ``problems`` (sorted in file order)."""
    if problems:
        raise PoolFileError(sorted(problems, key=lambda p: (p.line is None, p.line or 0, p.column or 0)))
    return list(hosts)


def pool_error(exc: SpecError, text: str | bytes) -> PoolFileError:
    """A reader's parse error in ``text`` as a pool file's: a document that cannot be read at all (an unknown
    encoding) is wrong from line 1, and the end of the text is on its last line (not the one after)."""
    raw = text if isinstance(text, str) else text.decode("latin-1")
    last = len(_LINE_BREAK.findall(raw)) + 1
    out = []
    for p in exc.problems:
        line = min(p.line, last) if p.line is not None else 1
        column = p.column if line == p.line else None
        out.append(SpecProblem(p.message, file=p.file, line=line, column=column, hint=p.hint))
    return PoolFileError(out)
