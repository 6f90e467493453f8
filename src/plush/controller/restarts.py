"""The operator's restarts during a run (``restart [HOST|BLOCK]``): a facet of :class:`plush.Controller`.

Role: what :meth:`Controller.restart <plush.controller.api.Controller.restart>` does, kept out of the
controller's module. It names what to restart, checks that it can be restarted now, and hands it to the
machinery the run already has:

- ``restart`` alone: the application, every host's execution from the top, as the ``restart_application``
  exit policy does (:meth:`~plush.controller.healing.Healer.restart_application`, ``forced``: also when
  ``max_application_restarts`` is spent);
- ``restart HOST`` (a host set too): each host's agent, in place, as the failure ladder's first step does
  (:meth:`~plush.controller.healing.Healer.restart_host`: also when the ladder's ``host_restarts`` are
  spent, and for a host the ladder dropped);
- ``restart BLOCK`` (a block path: a component block, a block, a workflow's task, a process), optionally on
  some hosts only: the processes running under it on each host where its block runs now are stopped and
  started again as their next instance (the agent's ``restart_process``, protocol message ``restart``),
  whatever their exit policies say; ``block.restarted`` is emitted per host.

Invariants: nothing is restarted when any check fails (no run, an unknown host or block, a block that runs
nowhere, a host that cannot be restarted now): the error says which and why in one line; every restart is
an event on the bus (``app.restarted``, ``host.restarted``, ``block.restarted``). :func:`block_targets` is
pure (the spec model only).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from plush.controller.catalogue import BLOCK_RESTARTED
from plush.errors import PlushError
from plush.protocol.messages import Message
from plush.resources.hostset import HostSetError, expand, fold
from plush.spec.model import BarrierBlock, ComponentBlock, Project
from plush.spec.paths import BlockPath, BlockPathError

if TYPE_CHECKING:
    from plush.controller.engine import RunEngine

__all__ = ["OPERATOR", "Restarted", "block_targets", "restart"]

#: the reason every operator restart carries (the journal, the agent's log)
OPERATOR = "restarted by the operator"


@dataclass(frozen=True)
class Restarted:
    """What a restart did: ``what`` (``application``, ``host`` or ``block``), the ``hosts`` concerned, the
    ``block`` path (a block restart) and one sentence for people (``message``)."""

    what: str
    hosts: tuple[str, ...]
    block: str | None
    message: str

    def to_dict(self) -> dict[str, object]:
        return {"what": self.what, "hosts": list(self.hosts), "block": self.block, "message": self.message}


def block_targets(project: Project, path: str) -> tuple[str, list[str]]:
    """The component and the top-level block paths (those with processes) that ``path`` restarts: a component
    block (its process and workflow blocks), a block, a workflow's task, or one process. Raises PlushError
    for a path of no block of ``project``, or of a barrier."""
    try:
        wanted = BlockPath.parse(path)
    except BlockPathError as exc:
        raise PlushError(f"restart {path}: not a block path ({exc})") from None
    for cb_path, cb in project.walk():
        if not isinstance(cb, ComponentBlock) or not wanted.is_under(cb_path):
            continue
        tops = [(cb_path / b.name, b) for b in cb.blocks if not isinstance(b, BarrierBlock)]
        if wanted == cb_path:
            return cb.component, [str(p) for p, _ in tops]
        block = next((b for b in cb.blocks if b.name == wanted.parts[len(cb_path.parts)]), None)
        if block is None:
            break
        if isinstance(block, BarrierBlock):
            raise PlushError(f"restart {path}: {block.name} is a barrier: it has no process to restart")
        if str(wanted) in _paths_under(project, cb_path / block.name):
            return cb.component, [str(cb_path / block.name)]
        break
    known = [str(p) for p, b in project.walk() if not isinstance(b, BarrierBlock)]
    shown = ", ".join(known[:8]) + (", ..." if len(known) > 8 else "")
    raise PlushError(f"restart {path}: no such block in application {project.name} (blocks: {shown})")


def _paths_under(project: Project, top: BlockPath) -> set[str]:
    """Every path a restart may name under the top-level block ``top``: itself, a workflow's task, processes."""
    out = {str(top)}
    for p, b in project.walk():
        if p.is_under(top):
            out.add(str(p))
            for proc in getattr(b, "processes", ()):
                out.add(str(p / proc.name))
    return out


def restart(engine: RunEngine | None, target: str | None = None, hosts: str | Iterable[str] | None = None) -> Restarted:
    """Restart the application (``target`` None), hosts (``target`` a host name or host set) or a block
    (``target`` a block path; ``hosts``: only there) of the run in progress. See the module."""
    if engine is None or engine.finished:
        raise PlushError("no application is running: restart acts on the run in progress")
    if target is None or target == "":
        if hosts is not None:
            raise PlushError("restart: hosts go with a block (restart BLOCK HOSTS) or alone (restart HOSTS)")
        engine.healer.restart_application(None, None, OPERATOR, forced=True)
        live = sorted(s.name for s in engine.hosts.live())
        return Restarted("application", tuple(live), None, f"restarting the application on {fold(live)}")
    if target.startswith("/"):
        return _restart_block(engine, target, hosts)
    if hosts is not None:
        raise PlushError("restart HOST takes no more hosts (a host set names several: node[1-3])")
    names = _run_hosts(engine, target)
    healer = engine.healer
    for name in names:  # all checked first: nothing restarts when one cannot
        healer.check_restart(name)
    for name in names:
        healer.restart_host(name, OPERATOR)
    return Restarted("host", tuple(names), None, f"restarting the agent of {fold(names)}")


def _run_hosts(engine: RunEngine, hostset: str | Iterable[str]) -> list[str]:
    try:
        names = expand(hostset) if isinstance(hostset, str) else [n for h in hostset for n in expand(h)]
    except HostSetError as exc:
        raise PlushError(f"restart: {exc}") from None
    unknown = [n for n in names if n not in engine.hosts]
    if unknown:
        raise PlushError(f"no host named {fold(unknown)} in this run (hosts: {fold(engine.hosts.names())})")
    return names


def _restart_block(engine: RunEngine, path: str, hosts: str | Iterable[str] | None) -> Restarted:
    component, tops = block_targets(engine.project, path)
    chosen = _run_hosts(engine, hosts) if hosts is not None else None
    slots = [s for s in engine.hosts.in_component(component) if engine.hosts.is_live(s)]
    if chosen is not None:
        wrong = [n for n in chosen if engine.hosts[n].component != component]
        if wrong:
            raise PlushError(f"restart {path}: {fold(wrong)} not of component {component}, which runs this block")
        slots = [s for s in slots if s.name in chosen]
    running = [s for s in slots if any(s.blocks.get(top) == "started" for top in tops)]
    if not running:
        where = fold(chosen) if chosen is not None else f"any host of {component}"
        states = sorted({s.blocks.get(top, "waiting") for s in slots for top in tops})
        now = f" (it is {', '.join(states)})" if states else ""
        raise PlushError(f"restart {path}: it runs on no host now{now}: nothing to restart on {where}")
    names = [s.name for s in running]
    path = path.rstrip("/")
    for name in names:
        engine.send(name, Message.of("restart", path=path, reason=OPERATOR))
        engine.bus.emit(BLOCK_RESTARTED, host=name, block=path, data={"reason": OPERATOR, "action": "restart_process"})
    return Restarted("block", tuple(names), path, f"restarting {path} on {fold(names)}")
