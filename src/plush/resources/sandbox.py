"""The local sandbox as a pool: its hosts' properties, the check of components' requirements against them, and
the notice that a spec's named resources are not the ones used.

Until providers and the matcher exist, every run uses local sandbox hosts (agents on this machine). That is
the embedded default and a spec written for other hosts can be tried here, but never silently and never
against its requirements:

- sandbox hosts carry this machine's real properties (:func:`local_properties`, read cheaply from ``os``,
  ``platform`` and ``/proc``): ``cpus`` (= ``cores``), ``mem_mb``, ``cpu_mhz`` (where the kernel says),
  ``arch``, ``os``;
- :func:`check_requirements` refuses a run whose component has a ``require`` those properties do not meet
  (:class:`~plush.errors.MatchError`, exit 2, naming component, requirement and the sandbox's value);
- :func:`sandbox_notice` says which components run on how many sandbox hosts instead of the resources their
  spec names (``ssh``, ``netns``, ...).

Everything but :func:`local_properties` is pure. :func:`unmet` and :func:`describe_requirement` live in
:mod:`plush.resources.requirements` (shared with the matcher) and are re-exported here.
"""

from __future__ import annotations

import contextlib
import os
import platform
from collections.abc import Mapping
from pathlib import Path

from plush.errors import MatchError
from plush.resources.requirements import Properties, describe_requirement, unmet
from plush.spec.model import Project

__all__ = ["check_requirements", "describe_requirement", "local_properties", "sandbox_notice", "unmet"]


def _cpu_mhz(cpuinfo: Path = Path("/proc/cpuinfo")) -> float | None:
    try:
        with cpuinfo.open(encoding="ascii", errors="replace") as fh:
            for line in fh:
                key, _, value = line.partition(":")
                if key.strip() == "cpu MHz":
                    return round(float(value.strip()))
    except (OSError, ValueError):
        return None
    return None


def local_properties() -> dict[str, float | str]:
    """This machine's properties, as every local sandbox host has them."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    props: dict[str, float | str] = {
        "cpus": cpus,
        "cores": cpus,
        "arch": platform.machine(),
        "os": platform.system().lower(),
    }
    with contextlib.suppress(ValueError, OSError, AttributeError):
        props["mem_mb"] = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // (1024 * 1024)
    mhz = _cpu_mhz()
    if mhz is not None:
        props["cpu_mhz"] = mhz
    return props


def check_requirements(project: Project, counts: Mapping[str, int], props: Properties) -> None:
    """Raise MatchError for the first component (of those in ``counts``) whose requirements the sandbox hosts
    (all with ``props``) do not meet."""
    for comp in project.components:
        if comp.name not in counts:
            continue
        for r in comp.requirements:
            why = unmet(r, props)
            if why is None:
                continue
            where = r.where or comp.where
            at = ""
            if where is not None and where.file:
                at = where.file + (f":{where.line}" if where.line else "") + ": "
            raise MatchError(
                f"{at}component {comp.name!r} requires {describe_requirement(r)}, but the local sandbox hosts "
                f"(this machine) have {why}; no other hosts can be used yet",
                component=comp.name,
                wanted=counts[comp.name],
                available=0,
            )


def sandbox_notice(project: Project, counts: Mapping[str, int]) -> str | None:
    """The one-line notice for components whose spec names resources other than the local sandbox, or None."""
    named = []
    for comp in project.components:
        foreign = [r for r in comp.resources if r.type != "local"]
        if comp.name in counts and foreign:
            refs = ", ".join(r.type + (":" + r.group if r.group else "") for r in comp.resources)
            n = counts[comp.name]
            named.append(f"{comp.name} on {n} host{'' if n == 1 else 's'} (spec: {refs})")
    if not named:
        return None
    return "running on local sandbox hosts instead of the resources the spec names: " + "; ".join(named)
