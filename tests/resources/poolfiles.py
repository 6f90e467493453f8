"""Pool files for tests: writers of each format (from hosts) and Hypothesis strategies of hosts and texts."""

from __future__ import annotations

import json
from xml.sax.saxutils import quoteattr

from hypothesis import strategies as st

from plush.resources.host import Host, property_value
from plush.resources.poolentry import FIELDS, LOCAL_ADDRESS, RESERVED, host_entry


def _text(value: object) -> str:
    return repr(value) if isinstance(value, float) else str(value)


def _fields(h: Host) -> dict[str, str]:
    out = {"hostname": h.name + (f":{h.port}" if h.port else "")}
    if h.user is not None:
        out["user"] = h.user
    if h.group is not None:
        out["group"] = h.group
    out.update((k, _text(v)) for k, v in h.properties.items())
    return out


def to_xml(hosts: list[Host]) -> str:
    lines = ["<plush>", '  <resource_manager type="local">']
    for h in hosts:
        attrs = " ".join(f"{k}={quoteattr(v)}" for k, v in _fields(h).items())
        lines.append(f"    <node {attrs}/>")
    return "\n".join([*lines, "  </resource_manager>", "</plush>", ""])


def to_yaml(hosts: list[Host]) -> str:
    lines = ["defaults:", "  type: local", "hosts:"]
    for h in hosts:
        fields = list(_fields(h).items())
        for i, (k, v) in enumerate(fields):
            lines.append(("  - " if i == 0 else "    ") + f"{k}: {json.dumps(v, ensure_ascii=False)}")
    return "\n".join(lines) + "\n"


def to_json(hosts: list[Host]) -> str:
    return json.dumps([host_entry(h) for h in hosts], indent=1, ensure_ascii=False)


WRITERS = {"directory": to_xml, "inventory": to_yaml, "json": to_json}

names = st.from_regex(r"\A[a-z_][a-z0-9_.-]{0,12}\Z")
property_names = st.from_regex(r"\A[A-Za-z_][A-Za-z0-9_.-]{0,10}\Z").filter(
    lambda n: n not in FIELDS and n not in RESERVED
)
printable = st.text(st.characters(codec="utf-8", categories=("L", "N", "P", "S", "Zs")), max_size=16)
values = printable.map(property_value) | st.floats(allow_nan=False, allow_infinity=False).map(float)


@st.composite
def hosts(draw: st.DrawFn, max_size: int = 6) -> list[Host]:
    chosen = draw(st.lists(names, min_size=1, max_size=max_size, unique=True))
    out = []
    for name in chosen:
        props = draw(st.dictionaries(property_names, values, max_size=4))
        out.append(
            Host(
                name,
                LOCAL_ADDRESS,
                "local",
                draw(st.none() | st.integers(1, 65535)),
                draw(st.none() | st.from_regex(r"\A[a-z_][a-z0-9_-]{0,8}\Z")),
                draw(st.none() | st.from_regex(r"\A[a-z0-9_][a-z0-9_.:-]{0,8}\Z")),
                props,
            )
        )
    return out


@st.composite
def mutated(draw: st.DrawFn, kind: str) -> str:
    """A valid pool file of ``kind``, then damaged: characters cut, inserted or replaced."""
    text = WRITERS[kind](draw(hosts(max_size=3)))
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(text)))
        what = draw(st.sampled_from(["cut", "insert", "replace"]))
        piece = draw(st.text(st.sampled_from('<>/"=:[]{},-\n #&!*\t\\x0aé') | st.characters(), max_size=3))
        if what == "cut":
            text = text[:at] + text[at + len(piece) + 1 :]
        elif what == "insert":
            text = text[:at] + piece + text[at:]
        else:
            text = text[:at] + piece + text[at + len(piece) :]
    return text
