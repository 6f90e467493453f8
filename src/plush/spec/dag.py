"""The block DAG: ordering helpers over the sibling blocks of one component block (or any siblings).

Predecessor edges between siblings form a directed graph; a valid spec makes it acyclic. These helpers
are pure functions of a sequence of blocks (anything with ``.name`` and ``.predecessors``), deterministic,
and keep spec order wherever the graph leaves a choice, so the run engine, ``plush check`` and validation
agree on one order. Predecessor names that are not siblings are ignored here (validation reports them);
with duplicate names the first block of a name wins.

:func:`find_wait_cycle` looks across groups of siblings (the component blocks of an application): blocks
that share a name and are *joined* (barriers that wait for every host) are one node, so a host waiting at
such a barrier in one group waits for the hosts of every other group to reach it.

Pure, stdlib, Python 3.8.
"""

from __future__ import annotations

from typing import AbstractSet, Dict, List, Optional, Protocol, Sequence, Set, Tuple

__all__ = ["Node", "dependents", "find_cycle", "find_wait_cycle", "order", "requires"]


class Node(Protocol):
    """What the helpers need of a block: its name and the names of its predecessors."""

    @property
    def name(self) -> str: ...

    @property
    def predecessors(self) -> Sequence[str]: ...


def _edges(blocks: Sequence[Node]) -> Dict[str, List[str]]:
    """name -> its sibling predecessors (unknown names dropped), in spec order."""
    names = {b.name for b in blocks}
    edges: Dict[str, List[str]] = {}
    for b in blocks:
        if b.name not in edges:
            edges[b.name] = [p for p in dict.fromkeys(b.predecessors) if p in names]
    return edges


def order(blocks: Sequence[Node]) -> List[List[str]]:
    """Topological levels: level 0 has no predecessors, level k only needs levels < k.

    Names in one level can run in parallel; each level lists names in spec order. Blocks on a cycle
    (and those that depend on one) never become ready and are left out; :func:`find_cycle` names it.
    """
    edges = _edges(blocks)
    done: Set[str] = set()
    levels: List[List[str]] = []
    remaining = list(edges)
    while remaining:
        level = [n for n in remaining if all(p in done for p in edges[n])]
        if not level:
            break
        levels.append(level)
        done.update(level)
        remaining = [n for n in remaining if n not in done]
    return levels


def find_cycle(blocks: Sequence[Node]) -> Optional[List[str]]:
    """One cycle of predecessor edges as ``[a, b, ..., a]`` (a needs b, ..., needs a), or None.

    The cycle found is the first in spec order: the search starts at the first block on a cycle.
    """
    edges = _edges(blocks)
    white, grey, black = 0, 1, 2
    colour: Dict[str, int] = dict.fromkeys(edges, white)
    for start in edges:
        if colour[start] != white:
            continue
        # iterative DFS keeping the current path
        path: List[str] = [start]
        iters = [iter(edges[start])]
        colour[start] = grey
        while path:
            nxt = next(iters[-1], None)
            if nxt is None:
                colour[path.pop()] = black
                iters.pop()
                continue
            if colour[nxt] == grey:
                cycle = path[path.index(nxt) :]
                return [*cycle, nxt]
            if colour[nxt] == white:
                colour[nxt] = grey
                path.append(nxt)
                iters.append(iter(edges[nxt]))
    return None


def dependents(blocks: Sequence[Node], name: str) -> List[str]:
    """Every sibling that transitively depends on ``name`` (must wait for it), in spec order."""
    edges = _edges(blocks)
    found: Set[str] = set()
    todo = [name]
    while todo:
        current = todo.pop()
        for n, preds in edges.items():
            if current in preds and n not in found:
                found.add(n)
                todo.append(n)
    found.discard(name)
    return [n for n in edges if n in found]


def requires(blocks: Sequence[Node], name: str) -> List[str]:
    """Every sibling that ``name`` transitively waits for, in spec order."""
    edges = _edges(blocks)
    found: Set[str] = set()
    todo = list(edges.get(name, ()))
    while todo:
        current = todo.pop()
        if current not in found:
            found.add(current)
            todo.extend(edges.get(current, ()))
    found.discard(name)
    return [n for n in edges if n in found]


#: one wait in a cycle across groups: (group, block, the sibling block it waits for)
Wait = Tuple[str, str, str]


def find_wait_cycle(
    groups: Sequence[Tuple[str, Sequence[Node]]], joined: AbstractSet[Tuple[str, str]]
) -> Optional[List[Wait]]:
    """One cycle of waits across groups, as the list of its waits in order, or None.

    ``groups`` are ``(group name, sibling blocks)``; ``joined`` holds the ``(group, block)`` pairs that are one
    node per block name across all groups. Each wait ``(g, a, b)`` says: in group ``g``, ``a`` runs after
    ``b``; the wait after it starts where ``b`` is (the same block, or the joined node of that name in
    another group). Groups are searched in order, so the cycle found is the first in spec order. A cycle
    inside one group is found too (:func:`find_cycle` names it better).
    """

    def key(group: str, name: str) -> Tuple[str, str]:
        return ("", name) if (group, name) in joined else (group, name)

    edges: Dict[Tuple[str, str], List[Tuple[Tuple[str, str], Wait]]] = {}
    for group, blocks in groups:
        for name, preds in _edges(blocks).items():
            edges.setdefault(key(group, name), [])
            for p in preds:
                edges[key(group, name)].append((key(group, p), (group, name, p)))
    white, grey, black = 0, 1, 2
    colour = dict.fromkeys(edges, white)
    for start, first in edges.items():
        if colour[start] != white:
            continue
        path = [start]
        via: List[Wait] = []
        iters = [iter(first)]
        colour[start] = grey
        while path:
            step = next(iters[-1], None)
            if step is None:
                colour[path.pop()] = black
                iters.pop()
                if via:
                    via.pop()
                continue
            nxt, wait = step
            if colour[nxt] == grey:
                return [*via[path.index(nxt) :], wait]
            if colour[nxt] == white:
                colour[nxt] = grey
                path.append(nxt)
                via.append(wait)
                iters.append(iter(edges[nxt]))
    return None
