"""An application's block tree and DAG as plain data: what the HTTP API's ``GET /v1/application/tree`` answers
and ``Controller.tree()`` returns.

Role: one JSON-ready view of a valid :class:`~plush.spec.model.Project` for programs (a GUI draws it, a
script walks it): its components, every block with its path (component blocks, process, barrier, semaphore
and workflow blocks, a workflow's task), the barriers with the component blocks that share them, and per
component block the DAG: its predecessor edges (between sibling blocks, as paths) and its levels (the order
``plush check`` prints; blocks of one level run in parallel).

Invariants: blocks come in :meth:`Project.walk` order (depth first, spec order); every path in ``edges``,
``order`` and ``barriers`` is the ``path`` of a listed block; an edge ``{"from": A, "to": B}`` means B runs
after A (A is one of B's predecessors). Pure: no I/O.
"""

from __future__ import annotations

from typing import Any, Dict, List, Union

from plush.spec import dag
from plush.spec.model import BarrierBlock, Block, ComponentBlock, ProcessBlock, Project, WorkflowBlock
from plush.spec.validate import describe_rule

__all__ = ["block_tree"]


def block_tree(project: Project) -> Dict[str, Any]:
    """``{"name", "application", "service", "on_failure", "components", "blocks", "barriers", "edges",
    "order"}`` of ``project`` (see the module)."""
    app = project.application
    blocks: List[Dict[str, Any]] = []
    barriers: Dict[str, Dict[str, Any]] = {}
    edges: List[Dict[str, str]] = []
    order: Dict[str, List[List[str]]] = {}
    for path, node in project.walk():
        blocks.append({"path": str(path), "parent": str(path.parent), **_block(node)})
    for cb in app.component_blocks:
        here = app.path / cb.name
        names = {b.name for b in cb.blocks}
        for b in cb.blocks:
            for before in dict.fromkeys(b.predecessors):
                if before in names:
                    edges.append({"from": str(here / before), "to": str(here / b.name)})
            if isinstance(b, BarrierBlock):
                shared = barriers.setdefault(b.name, {"name": b.name, **_rule(b), "paths": [], "shared_by": []})
                shared["paths"].append(str(here / b.name))
                shared["shared_by"].append(str(here))
        order[str(here)] = [[str(here / name) for name in level] for level in dag.order(cb.blocks)]
    return {
        "name": project.name,
        "application": str(app.path),
        "service": app.service,
        "on_failure": app.failure_action,
        "components": [
            {
                "name": c.name,
                "min": c.num_hosts.min,
                "max": c.num_hosts.max,
                "software": list(c.software),
                "blocks": [str(app.path / cb.name) for cb in app.component_blocks if cb.component == c.name],
            }
            for c in project.components
        ],
        "blocks": blocks,
        "barriers": list(barriers.values()),
        "edges": edges,
        "order": order,
    }


def _block(node: Union[ComponentBlock, Block]) -> Dict[str, Any]:
    if isinstance(node, ComponentBlock):
        return {"name": node.name, "kind": "component", "component": node.component, "predecessors": []}
    out: Dict[str, Any] = {"name": node.name, "predecessors": list(node.predecessors)}
    if isinstance(node, ProcessBlock):
        out["kind"] = "process"
        out["processes"] = [p.name for p in node.processes]
        out["outputs"] = list(node.outputs)
    elif isinstance(node, BarrierBlock):
        out["kind"] = node.kind  # barrier | semaphore
    elif isinstance(node, WorkflowBlock):
        out["kind"] = "workflow"
        out["data_files"] = list(node.data_files)
    return out


def _rule(b: BarrierBlock) -> Dict[str, Any]:
    return {
        "kind": b.kind,
        "rule": describe_rule(b),
        "max": b.max,
        "threshold": b.threshold,
        "timeout": b.timeout,
        "adaptive": b.adaptive,
        "capacity": b.capacity,
        "until": b.until,
    }
