"""The host failure ladder (pure): what to do when a host fails.

PLUSH-FORMAT.md: a failed host is first **restarted** (its agent started again on the same host, its work
started again), then, if it fails again, **rematched** (a spare host from the pool takes its place), and
the application **aborts** only when neither is possible and its component has fallen below its ``min``
live hosts. While every component keeps at least ``min`` live hosts the application goes on without the
failed host (the paper's 48 of 50).

:class:`FailureLadder` holds no clock and does no I/O: the engine reports failures and spare capacity and
carries out the returned :class:`LadderStep`. Invariants: a host is restarted at most ``host_restarts``
times; a host given up on (rematched or dropped) is not used again unless :meth:`FailureLadder.revive`
clears its mark (service mode); the abort message names the component and the numbers. A failure reported
with ``restart=False`` (a host over its limits, or one the user marked failed: the host itself is bad, a
new agent there would not help) skips the restart rung.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

__all__ = ["FailureLadder", "LadderStep"]

StepKind = Literal["restart", "rematch", "continue", "abort", "ignore"]


@dataclass(frozen=True, slots=True)
class LadderStep:
    """The ladder's answer: ``kind``, the failed ``host``, its ``component``, and a sentence for people."""

    kind: StepKind
    host: str
    component: str
    message: str


class FailureLadder:
    """Restart → rematch → continue (≥ min live) → abort, per host."""

    def __init__(
        self,
        hosts: Mapping[str, str],
        minimum: Mapping[str, int],
        *,
        host_restarts: int = 1,
    ) -> None:
        self.component_of: dict[str, str] = dict(hosts)
        self.minimum = dict(minimum)
        self.host_restarts = host_restarts
        self.restarts: dict[str, int] = {}
        self.dead: set[str] = set()

    def component_names(self) -> list[str]:
        return sorted(set(self.component_of.values()) | set(self.minimum))

    def live(self, component: str) -> list[str]:
        return sorted(h for h, c in self.component_of.items() if c == component and h not in self.dead)

    def add_host(self, host: str, component: str) -> None:
        """A new host (a rematch replacement, or a service refill) joins ``component``."""
        self.component_of[host] = component
        self.dead.discard(host)

    def revive(self, host: str) -> None:
        """Service mode: every ``reconnect_interval`` failed marks are cleared."""
        self.dead.discard(host)
        self.restarts.pop(host, None)

    def host_failed(self, host: str, reason: str, *, spares: int, restart: bool = True) -> LadderStep:
        """``host`` failed for ``reason``; ``spares`` hosts of the pool could replace it now; ``restart=False``
        skips the restart rung (the host itself is bad)."""
        component = self.component_of.get(host)
        if component is None or host in self.dead:
            return LadderStep("ignore", host, component or "?", f"{host} is not a live host of this run")
        done = self.restarts.get(host, 0)
        if restart and done < self.host_restarts:
            self.restarts[host] = done + 1
            return LadderStep(
                "restart",
                host,
                component,
                f"{host} failed ({reason}); restarting its agent ({done + 1}/{self.host_restarts})",
            )
        self.dead.add(host)
        if spares > 0:
            again = "again " if done else ""
            return LadderStep(
                "rematch", host, component, f"{host} failed {again}({reason}); replacing it with a spare host"
            )
        live = len(self.live(component))
        need = self.minimum.get(component, 1)
        if live >= need:
            return LadderStep(
                "continue",
                host,
                component,
                f"{host} failed ({reason}); no spare host; component {component!r} goes on with {live} live "
                f"host(s) (min {need})",
            )
        return LadderStep(
            "abort",
            host,
            component,
            f"{host} failed ({reason}) and no spare host is left: component {component!r} has {live} live "
            f"host(s), fewer than its min of {need}",
        )
