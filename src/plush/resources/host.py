"""The host model and the pool: what the controller knows of the machines it may use.

Role: the shared vocabulary of ``resources`` (providers fill a :class:`Pool` with :class:`Host` entries; the
matcher reads them and assigns them to components) and of the controller (the mesh connects them). A host is
described by where it is (``address``, the agent's ``port``, the remote ``user``), how it is reached
(``provider``: ``local``, ``ssh``, ``netns``, ``command``, ``api``), the ``group`` a spec's
``<resource group>`` selects, and its ``properties``: every other attribute of its directory entry
(``cpu_mhz``, ``mem_mb``, ``site``, ``lat``/``lon``, ``vip``/``vn``, ...), numbers as floats where they
parse, text otherwise.

Invariants: a :class:`Host` is immutable and hashable by value except ``properties`` (a read-only mapping);
names are unique within a pool (a second :meth:`Pool.add` of a name replaces the entry: the provider's
newer word wins); pool order is insertion order, so a pool listed twice lists the same. Pure: no I/O.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

__all__ = ["Host", "Pool", "PropertyValue", "property_env", "property_text", "property_value"]

#: a host property: a number when its text parses as a finite one, else the text
PropertyValue = float | str


def property_value(text: str) -> PropertyValue:
    """``"2400"`` -> ``2400.0``, ``"ucsd"`` -> ``"ucsd"``; ``"nan"``/``"inf"`` stay text (never compared)."""
    try:
        number = float(text)
    except ValueError:
        return text
    return number if math.isfinite(number) else text


def property_text(value: PropertyValue) -> str:
    """A property as text: ``2400.0`` -> ``"2400"``, ``32.88`` -> ``"32.88"``, text as it is."""
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)
    return value


#: host properties that processes also get under their ModelNet names (PLUSH-FORMAT.md): ``vip`` -> ``PLUSH_VIP``
MODELNET_VARIABLES = {"vip": "PLUSH_VIP", "vn": "PLUSH_VN"}


def property_env(properties: Mapping[str, PropertyValue]) -> dict[str, str]:
    """The environment variables of a host's properties, for every process on it: ``PLUSH_PROP_<NAME>`` (NAME
    upper-cased, every character but ``A-Z0-9_`` made ``_``), and ``PLUSH_VIP`` / ``PLUSH_VN`` for ``vip`` /
    ``vn``. Two names that fold to one variable: the first in the host's order wins."""
    env: dict[str, str] = {}
    for name, value in properties.items():
        text = property_text(value)
        env.setdefault("PLUSH_PROP_" + re.sub(r"[^A-Z0-9_]", "_", name.upper()), text)
        if name in MODELNET_VARIABLES:
            env[MODELNET_VARIABLES[name]] = text
    return env


def _frozen(props: Mapping[str, PropertyValue]) -> Mapping[str, PropertyValue]:
    return MappingProxyType(dict(props))


@dataclass(frozen=True, slots=True)
class Host:
    """One machine the controller may use."""

    name: str
    address: str
    provider: str = "local"
    port: int | None = None  # the agent's port on that host (a directory file's ``hostname:port``)
    user: str | None = None  # the remote user (None: the invoking user)
    group: str | None = None
    properties: Mapping[str, PropertyValue] = field(default_factory=dict, hash=False, compare=True)

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("a host needs a name")
        object.__setattr__(self, "properties", _frozen(self.properties))

    def get(self, name: str) -> PropertyValue | None:
        """The property ``name``, or None when the host does not have it."""
        return self.properties.get(name)


class Pool:
    """The hosts known to a controller, by name, in the order they were added."""

    def __init__(self, hosts: Iterable[Host] = ()) -> None:
        self._hosts: dict[str, Host] = {}
        for host in hosts:
            self.add(host)

    def add(self, host: Host) -> None:
        """Add ``host`` (replacing an entry of the same name)."""
        self._hosts[host.name] = host

    def remove(self, name: str) -> Host | None:
        """Remove the host ``name``; the entry removed, or None when there was none."""
        return self._hosts.pop(name, None)

    def get(self, name: str) -> Host | None:
        return self._hosts.get(name)

    def in_group(self, group: str | None) -> list[Host]:
        """The hosts of ``group`` (every host when ``group`` is None)."""
        return [h for h in self._hosts.values() if group is None or h.group == group]

    def names(self) -> list[str]:
        return list(self._hosts)

    def __contains__(self, name: object) -> bool:
        return name in self._hosts

    def __iter__(self) -> Iterator[Host]:
        return iter(list(self._hosts.values()))

    def __len__(self) -> int:
        return len(self._hosts)

    def __repr__(self) -> str:
        return f"Pool({len(self)} hosts)"
