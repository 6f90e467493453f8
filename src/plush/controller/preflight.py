"""Preflight: everything a run refuses before it contacts any host, in one function that ``plush check`` shares.

:func:`preflight` is called by :meth:`~plush.controller.api.Controller.run` before the run directory exists
and by ``plush check`` (with the same ``--hosts``), so what ``check`` accepts, ``run`` starts; the two
cannot drift. It raises one :class:`~plush.errors.SpecError` listing every problem, each at the
``file:line`` of the object at fault (exit status 2):

- the model is valid (:func:`~plush.spec.validate.validate`: a model built in code gets the same checks as a
  spec file, which the readers validated already);
- host counts (:func:`host_counts`, pure): each component runs on its ``--hosts`` count or else its
  ``num_hosts`` min, at least 1 and within ``min..max``; ``--hosts`` names only components of the spec; the
  run's total is within the ``max_local_hosts`` setting;
- the model fits in one ``prepare`` message (:func:`message_problems`, pure): the protocol's frame limit
  less :data:`HOST_RECORD_ROOM` for the host record and settings that travel with it;
- every local package file and workflow data file exists
  (:meth:`~plush.files.catalog.FileCatalog.for_project`, the catalog the run serves files from);
- then, once all of that holds, the local sandbox hosts meet every component's ``require``
  (:func:`~plush.resources.sandbox.check_requirements`, which raises :class:`~plush.errors.MatchError`),
  unless the caller leaves that to the matcher (``requirements=False``: ``plush plan``).
"""

from __future__ import annotations

from collections.abc import Mapping

from plush.config import Settings
from plush.errors import ProtocolError, SpecError, SpecProblem
from plush.files.catalog import FileCatalog
from plush.protocol.framing import MAX_FRAME, encode
from plush.protocol.messages import Message
from plush.resources.sandbox import check_requirements, local_properties
from plush.spec.model import Component, Project, to_dict
from plush.spec.validate import validate

__all__ = ["HOST_RECORD_ROOM", "host_counts", "message_problems", "preflight"]

#: bytes of a ``prepare`` frame kept for the host record (environment, package hashes) and the settings
HOST_RECORD_ROOM = 1 << 20
#: the ``--hosts`` key that applies to every component (bare ``--hosts N``)
EVERY = "*"


def preflight(
    project: Project, settings: Settings, hosts: Mapping[str, int] | None = None, *, requirements: bool = True
) -> dict[str, int]:
    """The host count of every component; :class:`SpecError` listing every reason the run cannot start
    (:class:`~plush.errors.MatchError` when only the sandbox does not meet a requirement; ``requirements``
    False skips that check, for a caller that matches hosts itself)."""
    problems = list(validate(project))
    if problems:
        raise SpecError(problems)
    counts, problems = host_counts(project, hosts or {}, max_local_hosts=settings.max_local_hosts)
    problems.extend(message_problems(project))
    try:
        FileCatalog.for_project(project)
    except SpecError as exc:
        problems.extend(exc.problems)
    if problems:
        raise SpecError(problems)
    if requirements:
        check_requirements(project, counts, local_properties())
    return counts


def _at(
    project: Project, comp: Component | None, message: str, hint: str | None = None, *, located: bool = True
) -> SpecProblem:
    where = comp.where if comp is not None and comp.where is not None else project.where
    if not located:  # a problem of the command line, not of a place in the file
        return SpecProblem(message, file=where.file if where is not None else project.source, hint=hint)
    return SpecProblem(
        message,
        file=where.file if where is not None and where.file else project.source,
        line=where.line if where is not None else None,
        column=where.column if where is not None else None,
        hint=hint,
    )


def host_counts(
    project: Project, wanted: Mapping[str, int], *, max_local_hosts: int
) -> tuple[dict[str, int], list[SpecProblem]]:
    """Each component's host count (``wanted[name]``, else ``wanted["*"]``, else its min) and the problems."""
    counts: dict[str, int] = {}
    problems: list[SpecProblem] = []
    for comp in project.components:
        low, high = comp.num_hosts.min, comp.num_hosts.max
        given = comp.name in wanted or EVERY in wanted
        n = wanted.get(comp.name, wanted.get(EVERY, low))
        counts[comp.name] = n
        if given and not (max(low, 1) <= n <= high):
            span = f"{low} hosts" if low == high else f"{low}..{high} hosts"
            problems.append(
                _at(
                    project,
                    comp,
                    f"component {comp.name!r} runs on {span} (num_hosts); --hosts asks for {n}",
                    hint=_choose(comp.name, max(low, 1), high),
                )
            )
        elif n < 1:
            problems.append(
                _at(
                    project,
                    comp,
                    f"component {comp.name!r} would run on {n} hosts (its num_hosts min); a run needs at least 1",
                    hint=_choose(comp.name, 1, high),
                )
            )
    names = [c.name for c in project.components]
    for name in wanted:
        if name != EVERY and name not in names:
            problems.append(
                _at(
                    project,
                    None,
                    f"--hosts names unknown component {name!r}",
                    hint="components: " + ", ".join(names),
                    located=False,
                )
            )
    total = sum(counts.values())
    if total > max_local_hosts and project.components:
        biggest = max(project.components, key=lambda c: counts[c.name])
        problems.append(
            _at(
                project,
                biggest,
                f"the run needs {total} local sandbox hosts, more than max_local_hosts={max_local_hosts}",
                hint="ask for fewer hosts (--hosts) or raise the max_local_hosts setting",
            )
        )
    return counts, problems


def _choose(name: str, low: int, high: int) -> str | None:
    if low > high:
        return None
    return f"use --hosts {name}={low}" if low == high else f"use --hosts {name}=N with N from {low} to {high}"


def message_problems(project: Project, max_frame: int = MAX_FRAME) -> list[SpecProblem]:
    """Why the model cannot travel to agents in one ``prepare`` message (empty when it can)."""
    limit = max_frame - HOST_RECORD_ROOM
    try:
        size = len(encode(Message.of("prepare", spec=to_dict(project), host={}, settings={}), _UNLIMITED))
    except ProtocolError as exc:  # not JSON (a model built in code, or text no UTF-8 can hold)
        return [_at(project, None, f"the spec cannot be sent to agents: {exc}")]
    if size > limit:
        return [_at(project, None, f"the spec is too large: {size} bytes as a message, over {limit}", hint=_BIG_HINT)]
    return []


_UNLIMITED = 1 << 62
_BIG_HINT = "ship large data as package or workflow files, not inside the spec"
