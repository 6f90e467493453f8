"""What ``plush copy`` and ``plush gather`` bring back (pure): each host's outcome, the summary, the exit status.

Role. :class:`TransferResult` is what :meth:`plush.Controller.copy` and :meth:`plush.Controller.gather` return:
a :class:`FileOutcome` for each host that answered (done, or failed with its reason), and the hosts that timed
out and that were unreachable. :func:`transfer_lines` is the summary both paths print (the cold one in the
command's own controller, the warm one in the client of ``plush serve``); :func:`transfer_status` the exit
status (docs/commands.md): 255 when a host was unreachable, else 124 when one timed out, else 1 when one
failed, else 0.

Invariants: each selected host is in exactly one of ``results``, ``timed_out``, ``unreachable``;
``from_dict(to_dict())`` gives the result back.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from plush.controller.gather import missing_fields, missing_fields_from, missing_lines, missing_status
from plush.resources.hostset import fold

__all__ = ["EXIT_FAILED", "FileOutcome", "TransferResult", "transfer_lines", "transfer_status"]

#: exit status when a host answered that it could not do it (and every host answered in time)
EXIT_FAILED = 1


@dataclass(frozen=True, slots=True)
class FileOutcome:
    """One host's answer: ``ok``, or why not (``reason``); ``cached``: a copy that found the file in the host's
    content cache (no data travelled); ``size``: bytes of the file; ``path``: where a gathered file was saved."""

    host: str
    ok: bool
    reason: str = ""
    cached: bool = False
    size: int = 0
    path: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "reason": self.reason, "cached": self.cached, "size": self.size, "path": self.path}

    @classmethod
    def from_dict(cls, host: str, d: Mapping[str, Any]) -> FileOutcome:
        return cls(host, bool(d["ok"]), str(d["reason"]), bool(d["cached"]), int(d["size"]), d.get("path"))


@dataclass(slots=True)
class TransferResult:
    """One ``copy`` (``op``) or ``gather`` on many hosts: ``hosts`` (every host selected, natural order),
    ``results`` (those that answered), ``timed_out``, ``unreachable`` (``reasons``: why), ``timeout`` (seconds
    asked), ``duration`` (seconds, inside the controller)."""

    op: str
    hosts: list[str]
    results: dict[str, FileOutcome] = field(default_factory=dict)
    timed_out: list[str] = field(default_factory=list)
    unreachable: list[str] = field(default_factory=list)
    reasons: dict[str, str] = field(default_factory=dict)
    timeout: float = 0.0
    duration: float = 0.0

    @property
    def status(self) -> int:
        return transfer_status(self)

    @property
    def ok(self) -> bool:
        return self.status == 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "op": self.op,
            "hosts": self.hosts,
            "results": {n: r.to_dict() for n, r in self.results.items()},
            **missing_fields(self),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TransferResult:
        return cls(
            str(data["op"]),
            list(data["hosts"]),
            {n: FileOutcome.from_dict(n, r) for n, r in data["results"].items()},
            **missing_fields_from(data),
        )


def transfer_status(result: TransferResult) -> int:
    missing = missing_status(result.timed_out, result.unreachable)
    if missing is not None:
        return missing
    return EXIT_FAILED if any(not r.ok for r in result.results.values()) else 0


def transfer_lines(result: TransferResult) -> list[str]:
    """The summary (each line for stderr, ``plush:`` first): the hosts done (``copied``: how many found the file
    in their cache; ``gathered``), those that failed per reason, the timed-out ones, the unreachable ones."""
    done = [n for n, r in result.results.items() if r.ok]
    lines = []
    if done:
        verb = "copied" if result.op == "copy" else "gathered"
        cached = sum(1 for n in done if result.results[n].cached)
        note = f", {cached} from the host's content cache" if cached else ""
        lines.append(f"plush: {verb}: {fold(done)} ({len(done)}{note})")
    failed: dict[str, list[str]] = {}
    for name, r in result.results.items():
        if not r.ok:
            failed.setdefault(r.reason or "failed", []).append(name)
    lines += [f"plush: failed: {fold(hosts)} ({len(hosts)}): {reason}" for reason, hosts in failed.items()]
    return lines + missing_lines(result.timed_out, result.timeout, result.unreachable, result.reasons)
