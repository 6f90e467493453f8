"""What ``Controller.info`` answers: plain, JSON-ready data about the nodes, the mesh, the controller, the app.

Role: pure readers of the controller's parts (the pool, the :class:`~plush.controller.mesh.Mesh`, the
:class:`~plush.controller.engine.RunEngine`); every face (terminal ``info nodes``, the HTTP API, the web UI)
shows these dicts and lists as they are. Nothing here changes anything.

A node's ``state`` is its host lifecycle state (docs/howitworks.md, "Host lifecycle"): ``pooled`` (in the
pool, no agent), ``connecting``, ``joined`` (connected, idle), the run's ``matched``, ``preparing``,
``installing``, ``ready``, ``running``, ``resetting``, ``done``, ``stopping``, ``lost``, ``recovering``,
``failed``, ``replaced``, and ``gone`` (disconnected): the mesh's lifecycle of the host, read as it is.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from plush.config import Settings
    from plush.controller.engine import RunEngine
    from plush.controller.mesh import Mesh
    from plush.resources.host import Host, Pool
    from plush.spec.model import Project

__all__ = ["app_info", "barriers_info", "control_info", "mesh_info", "nodes_info"]


def _node(host: Host, state: str, agent_pid: int | None, component: str | None) -> dict[str, Any]:
    return {
        "name": host.name,
        "address": host.address,
        "provider": host.provider,
        "group": host.group,
        "properties": dict(host.properties),
        "state": state,
        "agent_pid": agent_pid,
        "component": component,
    }


def nodes_info(pool: Pool, mesh: Mesh | None, engine: RunEngine | None) -> list[dict[str, Any]]:
    """Every host of the pool and of the mesh, in the order they were added."""
    running = engine is not None and not engine.finished
    out = []
    seen = set()
    members = mesh.members if mesh is not None else {}
    for name, member in members.items():
        seen.add(name)
        state = member.state
        component = member.life.component
        if running and engine is not None:
            slot = engine.hosts.get(name)
            if slot is not None:
                component = slot.component
        pid = mesh.agent_pid(name) if mesh is not None and state not in ("gone", "failed", "replaced") else None
        out.append(_node(member.host, state, pid, component))
    out.extend(_node(host, "pooled", None, None) for host in pool if host.name not in seen)
    return out


def mesh_info(mesh: Mesh | None) -> dict[str, Any]:
    if mesh is None:
        return {"connected": 0, "members": 0, "states": {}}
    stats = mesh.statistics()
    listener = mesh.listener
    launcher = mesh.launcher
    return {
        "id": mesh.mesh_id,
        "connected": len(mesh.joined()),
        "members": stats["members"],
        "states": stats["states"],
        "closed": mesh.closed,
        "workspace": str(mesh.workspace),
        "listener": {"host": listener.host, "port": listener.port} if listener is not None else None,
        "launcher": sorted(launcher.capabilities) if launcher is not None else None,
        "agents_alive": len(launcher.alive()) if launcher is not None else 0,
    }


def control_info(settings: Settings, project: Project | None, engine: RunEngine | None, runs: int) -> dict[str, Any]:
    return {
        "settings": {f.name: getattr(settings, f.name) for f in dataclasses.fields(settings)},
        "application": project.name if project is not None else None,
        "spec": project.source if project is not None else None,
        "runs": runs,
        "run": engine.rundir.run_id if engine is not None else None,
        "running": engine is not None and not engine.finished,
        "barriers": barriers_info(engine),
    }


def barriers_info(engine: RunEngine | None) -> list[dict[str, Any]]:
    """Each barrier (and semaphore) of the run in progress or the last one, in declaration order: counts of
    its expected, arrived, waiting, late, failed and admitted hosts, whether it was released and why. Counts,
    not host lists: a barrier over 1,000 hosts stays one small row."""
    if engine is None:
        return []
    manager = engine.coordinator.barriers
    out = []
    for name in manager.names():
        snap = manager.snapshot(name)
        out.append(
            {
                "name": name,
                "kind": "semaphore" if snap.rule.is_semaphore else "barrier",
                "expected": len(snap.expected),
                "arrived": len(snap.arrived),
                "waiting": len(snap.waiting),
                "late": len(snap.late),
                "failed": len(snap.failed),
                "admitted": len(snap.admitted),
                "released": snap.released,
                "reason": snap.reason,
            }
        )
    return out


def app_info(project: Project | None, engine: RunEngine | None) -> dict[str, Any]:
    if project is None:
        return {"loaded": False}
    out: dict[str, Any] = {
        "loaded": True,
        "name": project.name,
        "spec": project.source,
        "components": {
            c.name: {"min": c.num_hosts.min, "max": c.num_hosts.max, "software": list(c.software)}
            for c in project.components
        },
        "service": project.application.service,
    }
    if engine is not None:
        hosts = engine.hosts
        out["run"] = {
            "id": engine.rundir.run_id,
            "results": str(engine.rundir.root),
            "finished": engine.finished,
            "outcome": _outcome(engine),
            "hosts": {
                c.name: [s.name for s in hosts.in_component(c.name) if hosts.is_live(s)] for c in project.components
            },
            "states": hosts.statistics(),
            "app_restarts": engine.app_restarts,
            "timings": {k: round(v, 4) for k, v in engine.timings.items()},
        }
    return out


def _outcome(engine: RunEngine) -> dict[str, Any] | None:
    outcome = engine.outcome
    if outcome is None:
        return None
    return {"ok": outcome.ok, "stopped": outcome.stopped, "reason": outcome.reason}
