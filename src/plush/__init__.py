"""Plush: an application controller for distributed systems.

Describe a distributed application once (hosts, software, processes, phases, failure policies); Plush finds
the hosts, starts its agent on them, installs the software, runs the processes, watches them and recovers
from failures. See README.md and docs/ (the Python API: docs/python-api.md).

``plush.Controller`` and the other names are loaded on first use (PEP 562): this package is also what every
agent, relay and sweep on a host imports first, and they never load the controller, nor the spec model unless
they use it (standard library only, Python 3.8 syntax).
"""

import importlib as _importlib
from typing import TYPE_CHECKING as _TYPE_CHECKING
from typing import Any as _Any

if _TYPE_CHECKING:  # (not the Controller: the layering test and the agent's zipapp follow these imports)
    from plush.errors import PlushError, SpecError
    from plush.spec.paths import BlockPath

__version__ = "0.1.0"

__all__ = ["BlockPath", "Controller", "PlushError", "SpecError", "__version__"]

#: names loaded on first use -> the module that defines them
_LAZY = {
    "Controller": "plush.controller.api",
    "PlushError": "plush.errors",
    "SpecError": "plush.errors",
    "BlockPath": "plush.spec.paths",
}


def __getattr__(name: str) -> _Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'plush' has no attribute {name!r}")
    value = getattr(_importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list:  # type: ignore[type-arg]
    return sorted(set(globals()) | set(_LAZY))
