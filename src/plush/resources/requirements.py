"""Static host requirements (``<require attr min max equals>``) against host properties, and their words.

Role: the one place that decides whether a host's properties meet a component's
:class:`~plush.spec.model.AttrRequirement` and says so in words, shared by the matcher
(:mod:`plush.resources.matcher`) and the local sandbox check (:mod:`plush.resources.sandbox`).

Semantics: ``min``/``max`` bound a number (inclusive); a text value never meets them. ``equals`` compares as
numbers when the host's value is a number and the wanted text parses as one (``"2"`` equals ``2.0``), else as
text. A host without the property never meets the requirement. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping

from plush.spec.model import AttrRequirement

__all__ = ["Properties", "describe_requirement", "have", "meets", "short_requirement", "unmet"]

Properties = Mapping[str, "float | str"]


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() and abs(x) < 1e15 else f"{x:g}"


def describe_requirement(r: AttrRequirement) -> str:
    """``mem_mb >= 1000``, ``cores <= 8``, ``cpu_mhz 1000..2000``, ``arch == x86_64``."""
    parts = []
    if r.min is not None and r.max is not None:
        parts.append(f"{r.attr} {_num(r.min)}..{_num(r.max)}")
    elif r.min is not None:
        parts.append(f"{r.attr} >= {_num(r.min)}")
    elif r.max is not None:
        parts.append(f"{r.attr} <= {_num(r.max)}")
    if r.equals is not None:
        parts.append(f"{r.attr} == {r.equals}")
    return " and ".join(parts) or r.attr


def short_requirement(r: AttrRequirement) -> str:
    """The compact form of the matcher's messages: ``cpu_mhz>=1000``, ``1000<=cpu_mhz<=2000``, ``arch==x86_64``."""
    parts = []
    if r.min is not None and r.max is not None:
        parts.append(f"{_num(r.min)}<={r.attr}<={_num(r.max)}")
    elif r.min is not None:
        parts.append(f"{r.attr}>={_num(r.min)}")
    elif r.max is not None:
        parts.append(f"{r.attr}<={_num(r.max)}")
    if r.equals is not None:
        parts.append(f"{r.attr}=={r.equals}")
    return ",".join(parts) or r.attr


def have(attr: str, props: Properties) -> str:
    """What a host has of ``attr``: ``cpu_mhz=2400``, ``site=ucsd``, or ``no site``."""
    if attr not in props:
        return f"no {attr}"
    value = props[attr]
    return f"{attr}={_num(value) if isinstance(value, (int, float)) else value}"


def meets(r: AttrRequirement, props: Properties) -> bool:
    """Whether ``props`` meet ``r``."""
    return unmet(r, props) is None


def unmet(r: AttrRequirement, props: Properties) -> str | None:
    """None when ``props`` meet ``r``; otherwise why not, in words (the host's value, or its absence)."""
    if r.attr not in props:
        return f"no property {r.attr!r} (they have {', '.join(sorted(props))})"
    value = props[r.attr]
    shown = have(r.attr, props)
    if r.min is not None or r.max is not None:
        if not isinstance(value, (int, float)):
            return f"{shown}, not a number"
        if (r.min is not None and value < r.min) or (r.max is not None and value > r.max):
            return shown
    if r.equals is not None:
        if isinstance(value, (int, float)):
            try:
                same = float(r.equals) == value
            except ValueError:
                same = False
        else:
            same = r.equals == value
        if not same:
            return shown
    return None
