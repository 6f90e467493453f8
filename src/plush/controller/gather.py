"""What ``plush exec`` gathers (pure): the per-host results of one command, their folding, their exit status.

Role. :class:`ExecResult` is what :meth:`plush.Controller.exec` returns: a :class:`HostOutput` per host that
answered, and the hosts that timed out and that were unreachable. This module turns it into what a face
prints, with no I/O:

- :func:`fold_outputs` -- **gathering** (``-b``): hosts whose output is identical share one :class:`Block`
  under their folded host set (``node[1-40,43]``); beyond ClusterShell, outputs that differ only by the host's
  own *name*, *address* or *index* (the number in its name, as host sets fold it: ``7`` in ``local-7``) fold
  too, shown once with the varying part marked ``{host}``, ``{address}``, ``{index}`` (:data:`MARKS`);
- :func:`gathered_lines` / :func:`host_lines` / :func:`summary_lines` -- the text of ``-b``, of ``-L`` (one
  host's lines, ``host: line``), and of the summary (exit statuses per host set, then the timed-out and the
  unreachable hosts); :func:`reply_lines` and :func:`final_lines` put them together as ``plush exec`` prints
  them, on either path (cold: in the command's own controller; warm: in the client of ``plush serve``);
- :func:`exit_status` -- the command's exit status (:data:`EXIT_UNREACHABLE`, :data:`EXIT_TIMED_OUT`, else the
  highest remote status; docs/commands.md).

Invariants (tests/controller/test_gather.py, Hypothesis): every host with output is in exactly one block; a
block without marks is the output of each of its hosts as is; expanding a marked block's text with the
values of any of its hosts (:func:`expand`) gives exactly that host's output; a block has marks only when
its hosts' outputs differ; an output that contains a mark literally is never taken for a template (so
expansion is never ambiguous).
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from plush.resources.hostset import fold, natural_key

__all__ = [
    "EXIT_TIMED_OUT",
    "EXIT_UNREACHABLE",
    "MARKS",
    "Block",
    "ExecResult",
    "HostOutput",
    "HostValues",
    "Line",
    "exit_status",
    "expand",
    "final_lines",
    "fold_outputs",
    "gathered_lines",
    "host_lines",
    "reply_lines",
    "summary_lines",
    "template",
]

#: exit status of ``plush exec`` when a selected host was unreachable
EXIT_UNREACHABLE = 255
#: exit status when a host timed out (and none was unreachable), as timeout(1)
EXIT_TIMED_OUT = 124

#: the marks of a folded block, in the order they are looked for: what each stands for
MARKS = {"host": "the host's name", "address": "the host's address", "index": "the number in the host's name"}
_MARK = re.compile(rb"\{(host|address|index)\}")
_INDEX = re.compile(r"(\d+)\D*$")
RULE = "-" * 15


@dataclass(frozen=True, slots=True)
class HostOutput:
    """What one host answered: exit ``code`` or ``signal``, its output (at most the inline limit per stream:
    ``truncated``), whether its agent killed the command at the timeout, seconds it took on the host."""

    host: str
    code: int | None
    signal: int | None = None
    stdout: bytes = b""
    stderr: bytes = b""
    truncated: bool = False
    timed_out: bool = False
    duration: float = 0.0

    @property
    def status(self) -> int:
        """The exit status as a shell gives it: the code, or 128 + the signal."""
        if self.code is not None:
            return self.code
        return 128 + (self.signal or 0)

    def describe(self) -> str:
        if self.code is not None:
            return f"exit {self.code}"
        return f"killed by signal {self.signal}"

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data, outputs in base64 (the host's name is the caller's key)."""
        return {
            "code": self.code,
            "signal": self.signal,
            "stdout": base64.b64encode(self.stdout).decode("ascii"),
            "stderr": base64.b64encode(self.stderr).decode("ascii"),
            "truncated": self.truncated,
            "timed_out": self.timed_out,
            "duration": self.duration,
        }

    @classmethod
    def from_dict(cls, host: str, r: Mapping[str, Any]) -> HostOutput:
        return cls(
            host,
            r["code"],
            r["signal"],
            base64.b64decode(r["stdout"]),
            base64.b64decode(r["stderr"]),
            bool(r["truncated"]),
            bool(r["timed_out"]),
            float(r["duration"]),
        )


@dataclass(slots=True)
class ExecResult:
    """One command on many hosts: ``hosts`` (every host selected, natural order), ``results`` (those that
    answered, a timed-out one with what it wrote before), ``timed_out``, ``unreachable`` (``reasons``: why),
    ``timeout`` (seconds asked), ``duration`` (seconds, inside the controller)."""

    hosts: list[str]
    results: dict[str, HostOutput] = field(default_factory=dict)
    timed_out: list[str] = field(default_factory=list)
    unreachable: list[str] = field(default_factory=list)
    reasons: dict[str, str] = field(default_factory=dict)
    timeout: float = 0.0
    duration: float = 0.0

    @property
    def status(self) -> int:
        """The exit status of ``plush exec`` for this result (:func:`exit_status`)."""
        return exit_status(self)

    @property
    def ok(self) -> bool:
        """Every host answered in time with exit status 0."""
        return self.status == 0

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data (outputs in base64): what a controller service sends its clients."""
        return {
            "hosts": self.hosts,
            "results": {n: r.to_dict() for n, r in self.results.items()},
            **missing_fields(self),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ExecResult:
        return cls(
            list(data["hosts"]),
            {n: HostOutput.from_dict(n, r) for n, r in data["results"].items()},
            **missing_fields_from(data),
        )


def exit_status(result: ExecResult) -> int:
    """:data:`EXIT_UNREACHABLE` when a host was unreachable, else :data:`EXIT_TIMED_OUT` when one timed out,
    else the highest exit status of the hosts (a signal counts 128 + its number; 0 when no host)."""
    missing = missing_status(result.timed_out, result.unreachable)
    return missing if missing is not None else max((r.status for r in result.results.values()), default=0)


# --- folding --------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HostValues:
    """The values a folded block may mark for one host: its name, address and index (None: none)."""

    host: str
    address: str | None = None
    index: str | None = None

    @classmethod
    def of(cls, host: str, address: str | None = None) -> HostValues:
        """``host``'s values: the index is the last run of digits of its name (``local-7``: ``7``)."""
        found = _INDEX.search(host)
        return cls(host, address or None, found.group(1) if found else None)

    def mapping(self) -> dict[bytes, bytes]:
        out = {b"host": self.host.encode()}
        if self.address:
            out[b"address"] = self.address.encode()
        if self.index is not None:
            out[b"index"] = self.index.encode()
        return out


def template(output: bytes, values: HostValues) -> bytes:
    """``output`` with each occurrence of the host's name, address and index (a whole number, not part of a
    longer one) replaced by its mark, in one pass, the longest value first; ``output`` itself when it holds
    a mark literally (it could not be told from a template)."""
    if _MARK.search(output):
        return output
    alternatives: list[tuple[bytes, bytes]] = []
    for mark, value in values.mapping().items():
        if not value:
            continue
        pattern = re.escape(value)
        if mark == b"index":
            pattern = rb"(?<!\d)" + pattern + rb"(?!\d)"
        alternatives.append((value, b"(?P<" + mark + b">" + pattern + b")"))
    alternatives.sort(key=lambda a: -len(a[0]))
    if not alternatives:
        return output
    regex = re.compile(b"|".join(p for _, p in alternatives))
    return regex.sub(lambda m: b"{" + (m.lastgroup or "").encode() + b"}", output)


def expand(text: bytes, values: HostValues) -> bytes:
    """A block's ``text`` as ``values``'s host wrote it: each mark replaced by the host's own value."""
    mapping = values.mapping()
    return _MARK.sub(lambda m: mapping.get(m.group(1), m.group(0)), text)


@dataclass(frozen=True, slots=True)
class Block:
    """Hosts (natural order) that wrote ``text``; ``marks``: the marks it holds (a template), or none."""

    hosts: tuple[str, ...]
    text: bytes
    marks: tuple[str, ...] = ()


def fold_outputs(outputs: Mapping[str, bytes], values: Callable[[str], HostValues] = HostValues.of) -> list[Block]:
    """The blocks of ``outputs`` (host -> output; empty outputs are left out): identical outputs together,
    then outputs written once that have the same :func:`template` together (at least two hosts: a template is
    shown only when it folds). Ordered by their first host (natural order)."""
    by_output: dict[bytes, list[str]] = {}
    for host, out in outputs.items():
        if out:
            by_output.setdefault(out, []).append(host)
    blocks: list[Block] = []
    by_template: dict[bytes, list[str]] = {}
    for out, hosts in by_output.items():
        if len(hosts) > 1 or _MARK.search(out):  # (an output holding a mark is never a template's)
            blocks.append(Block(_ordered(hosts), out))
        else:
            by_template.setdefault(template(out, values(hosts[0])), []).append(hosts[0])
    for text, hosts in by_template.items():
        if len(hosts) > 1:
            marks = tuple(m.decode() for m in dict.fromkeys(_MARK.findall(text)))
            blocks.append(Block(_ordered(hosts), text, marks))
        else:
            blocks.append(Block((hosts[0],), outputs[hosts[0]]))
    blocks.sort(key=lambda b: natural_key(b.hosts[0]))
    return blocks


def _ordered(hosts: Iterable[str]) -> tuple[str, ...]:
    return tuple(sorted(hosts, key=natural_key))


# --- text -------------------------------------------------------------------------------------------------------


def _text(data: bytes) -> list[str]:
    return data.decode("utf-8", "replace").splitlines()


def gathered_lines(blocks: Iterable[Block]) -> list[str]:
    """``-b``'s text of ``blocks``: a header per block (its host set and count, the marks it holds), its
    lines."""
    lines: list[str] = []
    for block in blocks:
        head = f"{fold(block.hosts)} ({len(block.hosts)})"
        if block.marks:
            head += " varies: " + " ".join("{" + m + "}" for m in block.marks)
        lines += [RULE, head, RULE, *_text(block.text)]
    return lines


def host_lines(host: str, data: bytes) -> list[str]:
    """``-L``'s text of one host's output: ``host: line`` for each line."""
    return [f"{host}: {line}" for line in _text(data)]


def summary_lines(result: ExecResult, *, everything: bool = True) -> list[str]:
    """The summary (each line for stderr, ``plush:`` first): the hosts per exit status (``everything``:
    status 0 too), the truncated outputs, the timed-out hosts, the unreachable hosts and why."""
    answered = [r for r in result.results.values() if not r.timed_out]
    by_status: dict[str, list[str]] = {}
    for r in sorted(answered, key=lambda r: (r.code is None, r.status)):
        if everything or r.status != 0:
            by_status.setdefault(r.describe(), []).append(r.host)
    lines = [f"plush: {what}: {fold(hosts)} ({len(hosts)})" for what, hosts in by_status.items()]
    cut = [n for n, r in result.results.items() if r.truncated]
    if cut:
        lines.append(f"plush: output truncated: {fold(cut)} ({len(cut)})")
    return lines + missing_lines(result.timed_out, result.timeout, result.unreachable, result.reasons)


def missing_lines(
    timed_out: list[str], timeout: float, unreachable: list[str], reasons: Mapping[str, str]
) -> list[str]:
    """The summary lines of the hosts a fan-out (exec, copy, gather) did not hear from: the timed-out ones, then
    the unreachable ones per reason."""
    lines = []
    if timed_out:
        lines.append(f"plush: timed out after {timeout:g}s: {fold(timed_out)} ({len(timed_out)})")
    by_reason: dict[str, list[str]] = {}
    for name in unreachable:
        by_reason.setdefault(reasons.get(name, "no answer"), []).append(name)
    lines += [f"plush: unreachable: {fold(hosts)} ({len(hosts)}): {reason}" for reason, hosts in by_reason.items()]
    return lines


def missing_fields(result: Any) -> dict[str, Any]:
    """What every fan-out's result (exec, copy, gather) carries beside its hosts and answers, as plain data:
    the hosts that timed out or were unreachable (and why), the timeout asked and the duration."""
    return {
        "timed_out": result.timed_out,
        "unreachable": result.unreachable,
        "reasons": result.reasons,
        "timeout": result.timeout,
        "duration": result.duration,
    }


def missing_fields_from(data: Mapping[str, Any]) -> dict[str, Any]:
    """:func:`missing_fields` read back (keyword arguments of the result's class)."""
    return {
        "timed_out": list(data["timed_out"]),
        "unreachable": list(data["unreachable"]),
        "reasons": dict(data["reasons"]),
        "timeout": float(data["timeout"]),
        "duration": float(data["duration"]),
    }


def missing_status(timed_out: list[str], unreachable: list[str]) -> int | None:
    """:data:`EXIT_UNREACHABLE` when a host was unreachable, else :data:`EXIT_TIMED_OUT` when one timed out,
    else None (every host answered: the answers decide)."""
    if unreachable:
        return EXIT_UNREACHABLE
    return EXIT_TIMED_OUT if timed_out else None


#: ``(stream, line)``: one line of text for ``"stdout"`` or ``"stderr"``
Line = tuple[str, str]


def reply_lines(result: HostOutput) -> list[Line]:
    """``-L``'s lines of one host's answer, as it comes: its stdout lines, then its stderr lines."""
    return [("stdout", line) for line in host_lines(result.host, result.stdout)] + [
        ("stderr", line) for line in host_lines(result.host, result.stderr)
    ]


def final_lines(result: ExecResult, *, gather: bool, values: Callable[[str], HostValues]) -> list[Line]:
    """What ``plush exec`` prints once every host answered: with ``gather`` (``-b``), the folded blocks of
    stdout then of stderr (``values``: each host's name, address and index); then the summary on stderr.
    The cold path and the warm path's client print these same lines."""
    lines: list[Line] = []
    if gather:
        for stream in ("stdout", "stderr"):
            outputs = {n: getattr(r, stream) for n, r in result.results.items()}
            lines += [(stream, line) for line in gathered_lines(fold_outputs(outputs, values))]
    return lines + [("stderr", line) for line in summary_lines(result, everything=gather)]
