"""Plush: an application controller for distributed systems.

Describe a distributed application once (hosts, software, processes, phases, failure policies); Plush finds
the hosts, starts its agent on them, installs the software, runs the processes, watches them and recovers
from failures. See README.md and docs/.
"""

from plush.errors import PlushError, SpecError
from plush.spec.paths import BlockPath

__version__ = "0.1.0"

__all__ = ["BlockPath", "PlushError", "SpecError", "__version__"]
