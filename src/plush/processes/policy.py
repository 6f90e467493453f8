"""Exit policies: what happens when a process exits (pure; PLUSH-FORMAT.md, "Exit policies").

The agent's process monitor turns a return code into an :class:`ExitStatus` and asks :func:`decide` what to
do; the answer is a :class:`Decision` naming the action and the rule that fired, so that every event and
error can say *why* a process was restarted or the application aborted. :class:`Backoff` spaces restarts.

Rules, in order:

1. Exit code 0 is always success (action ``"success"``); no policy is consulted, not even ``match="0"``.
2. Otherwise the first policy whose ``match`` fits the status wins. ``match`` is an exit code (``"3"``),
   ``"nonzero"`` (any non-zero exit *code*; not a death by signal), ``"signal"`` (death by any signal) or
   ``"*"`` (any failure).
3. No policy matches: the application's default action (``on_failure``) applies, rule
   ``"application on_failure"``. A default ``restart_process`` (services) is not bounded here.
4. A matching policy with ``max_restarts=K`` and a restart action allows K restarts; ``restarts_so_far`` is
   the number of restarts the caller already made for this process. Once spent, the *next* action applies:
   the application's default, except that a default which is ``restart_process`` or the very action just
   exhausted becomes ``abort`` -- otherwise a bounded restart would turn into an endless loop.

Invariants: :func:`decide` is a total function of its arguments (no clock, no I/O); the action returned is
``"success"`` or one of :data:`plush.spec.model.ACTIONS`; ``restarts_left`` is ``None`` only when the
restart is unbounded. Standard library only, Python 3.8 syntax.
"""

from __future__ import annotations

import math
import random
import signal as _signal
from dataclasses import dataclass
from typing import Any, Dict, Optional, Sequence

from plush.spec.model import ACTIONS, ExitPolicy

__all__ = [
    "RESTART_ACTIONS",
    "STOPPED",
    "SUCCESS",
    "UNHANDLED",
    "Backoff",
    "Decision",
    "ExitStatus",
    "decide",
    "policy_matches",
]

#: the action of a successful exit (the block may complete)
SUCCESS = "success"
#: the action reported for a process that Plush stopped (the run ended, a sibling failed): never a failure
STOPPED = "stopped"
#: the action reported for a process that exited by itself while Plush was stopping its block: no policy
#: applied (nothing is restarted any more), but its exit is its own and is reported as it was
UNHANDLED = "unhandled"
#: actions that run something again and therefore may loop
RESTART_ACTIONS = frozenset({"restart_process", "restart_application"})


@dataclass(frozen=True)
class ExitStatus:
    """How a process ended: an exit ``code`` or the ``signal`` that killed it (exactly one is set)."""

    code: Optional[int] = None
    signal: Optional[int] = None

    def __post_init__(self) -> None:
        if (self.code is None) == (self.signal is None):
            raise ValueError("ExitStatus needs exactly one of code and signal")

    @classmethod
    def from_returncode(cls, rc: int) -> ExitStatus:
        """From a ``subprocess`` return code: negative means killed by signal ``-rc``."""
        if rc < 0:
            return cls(signal=-rc)
        return cls(code=rc)

    @property
    def success(self) -> bool:
        return self.code == 0

    @property
    def signal_name(self) -> Optional[str]:
        if self.signal is None:
            return None
        try:
            return _signal.Signals(self.signal).name
        except ValueError:
            return "SIG{}".format(self.signal)

    def to_dict(self) -> Dict[str, Any]:
        return {"code": self.code} if self.signal is None else {"signal": self.signal}

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> ExitStatus:
        return cls(code=data.get("code"), signal=data.get("signal"))

    def __str__(self) -> str:
        if self.signal is not None:
            return "killed by signal {} ({})".format(self.signal, self.signal_name)
        return "exit code {}".format(self.code)


@dataclass(frozen=True)
class Decision:
    """What to do after an exit: ``action``, the ``rule`` that chose it, and restarts still allowed."""

    action: str
    rule: str
    restarts_left: Optional[int] = None  # None: unbounded (or not a restart)

    @property
    def completes_block(self) -> bool:
        """True when the process counts as done for its block (success or ``ignore``)."""
        return self.action in (SUCCESS, "ignore")


def _check_match(match: str) -> None:
    if match in ("*", "nonzero", "signal"):
        return
    if match.isdigit():
        return
    raise ValueError("bad exit_policy match {!r}: expected an exit code, 'nonzero', 'signal' or '*'".format(match))


def policy_matches(match: str, status: ExitStatus) -> bool:
    """True when an ``exit_policy`` ``match`` fits ``status`` (raises ``ValueError`` for a bad match)."""
    _check_match(match)
    if match == "*":
        return not status.success
    if match == "signal":
        return status.signal is not None
    if match == "nonzero":
        return status.code is not None and status.code != 0
    return status.code is not None and status.code == int(match)


def _check_action(action: str, what: str) -> None:
    if action not in ACTIONS:
        raise ValueError("bad {} {!r}: expected one of {}".format(what, action, ", ".join(sorted(ACTIONS))))


def decide(
    policies: Sequence[ExitPolicy],
    status: ExitStatus,
    restarts_so_far: int,
    default_action: str,
) -> Decision:
    """The action for a process that ended with ``status`` (see the module docstring for the rules)."""
    _check_action(default_action, "default action")
    if restarts_so_far < 0:
        raise ValueError("restarts_so_far must be >= 0, not {}".format(restarts_so_far))
    if status.success:
        return Decision(SUCCESS, "exit code 0 is success")
    for index, policy in enumerate(policies, start=1):
        _check_action(policy.action, "exit_policy action")
        if not policy_matches(policy.match, status):
            continue
        rule = "exit_policy #{} match={}".format(index, policy.match)
        if policy.action not in RESTART_ACTIONS:
            return Decision(policy.action, rule)
        if policy.max_restarts is None:
            return Decision(policy.action, rule)
        left = policy.max_restarts - restarts_so_far
        if left > 0:
            return Decision(policy.action, rule + " max_restarts={}".format(policy.max_restarts), left - 1)
        spent = rule + " spent max_restarts={}".format(policy.max_restarts)
        if default_action in ("restart_process", policy.action):
            return Decision("abort", spent + "; abort (application on_failure={} would loop)".format(default_action))
        return Decision(default_action, spent + "; application on_failure")
    return Decision(default_action, "application on_failure")


@dataclass(frozen=True)
class Backoff:
    """Delays between restarts: ``initial * factor**attempt``, capped at ``maximum``, with jitter.

    ``jitter`` is a fraction: the delay is drawn uniformly from ``[d * (1 - jitter), d]`` where ``d`` is the
    capped exponential, so a delay never exceeds ``maximum`` and restarts of many hosts spread out.
    """

    initial: float = 0.5
    maximum: float = 30.0
    factor: float = 2.0
    jitter: float = 0.2

    def __post_init__(self) -> None:
        if not (self.initial >= 0 and self.maximum >= self.initial and self.factor >= 1):
            raise ValueError("Backoff needs 0 <= initial <= maximum and factor >= 1")
        if not 0 <= self.jitter <= 1:
            raise ValueError("Backoff jitter must be within [0, 1]")

    def cap(self, attempt: int) -> float:
        """The delay before restart number ``attempt`` (0-based) without jitter."""
        if attempt < 0:
            raise ValueError("attempt must be >= 0")
        if self.initial == 0:
            return 0.0
        # compare exponents first so that large attempts cannot overflow a float
        if self.factor > 1 and attempt * math.log(self.factor) >= math.log(self.maximum / self.initial) + 1:
            return self.maximum
        return min(self.maximum, self.initial * self.factor**attempt)

    def delay(self, attempt: int, rng: Optional[random.Random] = None) -> float:
        """A jittered delay before restart number ``attempt``; ``rng`` makes it reproducible."""
        d = self.cap(attempt)
        draw = rng.random() if rng is not None else random.random()
        return d * (1.0 - self.jitter * draw)
