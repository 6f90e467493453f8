"""``report.html``: a run's failure report and timeline in one self-contained page, in its results directory.

Role: every run writes it when it ends, beside ``report.txt`` and ``report.json`` (:mod:`plush.controller.appruns`),
and ``plush report --html [RUN]`` writes it again for a finished, running or dead run
(:func:`write_run_page`). The page is one file, opened from ``file://`` without a server: its CSS, the timeline
renderer (``plush/web/static/js/timeline.js``, package data of the web room, read here as a file: the
controller imports nothing of the web UI), the timeline's JSON (:class:`plush.controller.timeline.Timeline`)
and the failure report's summary, all inline.

The boundary: host names, block names and reasons are data. In the page's HTML they are escaped
(:func:`html.escape`); the JSON sits in a ``<script type="application/json">`` element, written by
:func:`script_json` with every ``<``, ``>`` and ``&`` (and U+2028/2029) as a ``\\u`` escape, so no data can
end the element or open a comment in it; the renderer reads it with ``textContent`` and ``JSON.parse``. The
page's Content-Security-Policy allows only its own two scripts and its style (by their sha256) and loads
nothing from anywhere. Served over HTTP (``GET /v1/runs/{run}/report.html``), the page gets the same policy
as a header (:func:`served_policy`: the hashes of the scripts and style the served file holds, so a page an
older Plush wrote still draws) plus ``sandbox allow-scripts``: the page runs in an opaque origin, so its
scripts can reach nothing of the API's origin (no cookie, no storage, no same-origin request).

Invariants: :func:`render_page` is pure; the file is written whole or not at all (a temporary file renamed
into place; on a failed write nothing is left) with the run's results mode.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import html
import json
import os
import re
import time
from importlib import resources
from pathlib import Path
from typing import Any

from plush.controller.events import Event
from plush.controller.report import FailureEntry, FailureReport, load_report, read_run
from plush.controller.rundir import RunDir
from plush.controller.timeline import build_timeline

__all__ = [
    "PAGE",
    "page_of",
    "render_page",
    "script_json",
    "served_policy",
    "timeline_script",
    "write_page",
    "write_run_page",
]

#: the page's file name in a results directory
PAGE = "report.html"
#: failures listed in the page's table (the rest: report.txt)
LISTED = 50
_UNSAFE = re.compile(r"</script|<!--", re.IGNORECASE)
# the page's own inline scripts (bare <script>: the JSON's element has a type and runs nothing) and style
_SCRIPTS = re.compile(r"<script>(.*?)</script", re.IGNORECASE | re.DOTALL)
_STYLES = re.compile(r"<style>(.*?)</style", re.IGNORECASE | re.DOTALL)
_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}

_BOOT = """(function () {
  var data = JSON.parse(document.getElementById("plush-timeline-data").textContent);
  window.plushTimeline = window.PlushTimeline.render(document.getElementById("timeline"), data);
})();"""

_STYLE = """
* { box-sizing: border-box; }
body { margin: 0; font: 13px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
  color: #1f2933; background: #f5f7fa; }
header { display: flex; align-items: center; flex-wrap: wrap; gap: 6px 14px; padding: 14px 24px;
  background: #fff; border-bottom: 1px solid #e4e7eb; }
header h1 { margin: 0; font-size: 16px; font-weight: 600; }
header .facts { color: #616e7c; }
.badge { display: inline-block; padding: 2px 9px; border-radius: 10px; color: #fff; font-size: 11.5px;
  font-weight: 600; letter-spacing: .03em; text-transform: uppercase; background: #9aa5b1; }
.badge.ok { background: #27ae60; } .badge.failed { background: #eb5757; } .badge.running { background: #2f80ed; }
.badge.stopped { background: #616e7c; }
main { padding: 16px 24px 28px; }
section { background: #fff; border: 1px solid #e4e7eb; border-radius: 6px; padding: 12px 16px; margin-bottom: 16px; }
section h2 { margin: 0 0 8px; font-size: 13px; font-weight: 600; }
.reason { margin: 0 0 6px; }
.root { border-left: 3px solid #eb5757; padding: 4px 10px; margin: 6px 0 10px; background: #fdf3f3; }
.root .what { font-weight: 600; }
.muted { color: #616e7c; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: 4px 10px 4px 0; border-bottom: 1px solid #eef1f4; vertical-align: top; }
th { font-weight: 600; color: #616e7c; font-size: 12px; }
td.when { white-space: nowrap; font-variant-numeric: tabular-nums; color: #616e7c; }
code, pre { font: 12px/1.45 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
pre { white-space: pre-wrap; margin: 8px 0 0; }
details summary { cursor: pointer; color: #616e7c; }
"""


def script_json(data: Any) -> str:
    """``data`` as JSON that is safe inside a ``<script>`` element: no ``<``, ``>`` or ``&`` (nor U+2028/2029)
    appears in it as such, so it cannot end the element or open a comment; ``JSON.parse`` reads it back."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return re.sub("[<>&\u2028\u2029]", lambda m: _ESCAPES[m.group(0)], text)


def _sha(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


def _policy(scripts: list[str], styles: list[str]) -> str:
    """The page's policy: nothing but ``scripts`` and ``styles`` (inline, by their sha256) and data: images."""
    script_src = " ".join(_sha(s) for s in scripts) or "'none'"
    style_src = " ".join(_sha(s) for s in styles) or "'none'"
    return (
        f"default-src 'none'; script-src {script_src}; style-src {style_src}; "
        "img-src data:; base-uri 'none'; form-action 'none'"
    )


def served_policy(page: str) -> str:
    """The Content-Security-Policy header of ``page`` (a report.html) served from the API's origin: its own
    inline scripts and style by their sha256 (as its meta element), no framing, and a sandbox that lets its
    scripts run in an opaque origin only. Pure."""
    scripts, styles = _SCRIPTS.findall(page), _STYLES.findall(page)
    return f"{_policy(scripts, styles)}; frame-ancestors 'none'; sandbox allow-scripts"


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _when(at: float, start: float | None) -> str:
    return f"+{at - start:.3f}s" if start is not None else time.strftime("%H:%M:%S", time.gmtime(at))


def _entry_row(entry: FailureEntry, start: float | None) -> str:
    where = str(entry.hosts) or "(no host)"
    times = f" ({entry.count} times)" if entry.count > 1 else ""
    return (
        f"<tr><td class=when>{_e(_when(entry.first_at, start))}</td><td>{_e(entry.status)}{_e(times)}</td>"
        f"<td><code>{_e(where)}</code></td><td><code>{_e(entry.block or '')}</code></td>"
        f"<td>Plush {_e(entry.did)}</td></tr>"
    )


def _summary(report: FailureReport) -> str:
    parts = ["<section class=summary><h2>Failure report</h2>"]
    if report.reason:
        parts.append(f"<p class=reason>{_e(report.reason)}</p>")
    root = report.root_cause
    if root is not None:
        where = str(root.hosts) or "(no host)"
        block = f" in {root.block}" if root.block else ""
        parts.append(
            f"<div class=root><div class=what>Root cause: {_e(root.status)} on {_e(where)}{_e(block)}</div>"
            f"<div>Plush {_e(root.did)}</div>"
            + (f"<div class=muted>next: {_e(root.hint)}</div>" if root.hint else "")
            + "</div>"
        )
    if not report.entries:
        parts.append(f"<p class=muted>{'No failures.' if report.finished else 'Nothing has failed so far.'}</p>")
    else:
        parts.append(
            "<table><thead><tr><th>when</th><th>what</th><th>hosts</th><th>block</th><th>did</th></tr></thead><tbody>"
            + "".join(_entry_row(e, report.started_at) for e in report.entries[:LISTED])
            + "</tbody></table>"
        )
        if len(report.entries) > LISTED:
            parts.append(f"<p class=muted>and {len(report.entries) - LISTED} more: see report.txt</p>")
    parts.append(f"<details><summary>The report as text</summary><pre>{_e(report.render_text())}</pre></details>")
    parts.append("</section>")
    return "".join(parts)


def render_page(timeline: dict[str, Any], report: FailureReport, *, script: str) -> str:
    """The page of a run: ``timeline`` (``Timeline.to_dict()``), ``report``'s summary, ``script`` (timeline.js)
    inline. Pure. Raises ValueError for a script that could end its own element."""
    if _UNSAFE.search(script) or _UNSAFE.search(_STYLE):
        raise ValueError("the timeline script or the page's style holds '</script' or '<!--': it cannot be inlined")
    csp = _policy([script, _BOOT], [_STYLE])
    outcome = report.outcome
    duration = f"{report.duration:.1f} s" if report.duration is not None else ""
    started = (
        time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(report.started_at)) if report.started_at is not None else ""
    )
    facts = " · ".join(x for x in (duration, f"started {started}" if started else "") if x)
    run = report.run_id or str(timeline.get("run") or "(unknown)")
    return (
        "<!DOCTYPE html>\n<html lang=en>\n<head>\n<meta charset=utf-8>\n"
        f'<meta http-equiv="Content-Security-Policy" content="{_e(csp)}">\n'
        '<meta name="referrer" content="no-referrer">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>Plush run {_e(run)}: {_e(outcome)}</title>\n<style>{_STYLE}</style>\n</head>\n<body>\n"
        f"<header><h1>Plush run {_e(run)}</h1><span class='badge {_e(outcome)}'>{_e(outcome)}</span>"
        f"<span class=facts>{_e(facts)}</span></header>\n<main>\n{_summary(report)}\n"
        "<div id=timeline></div>\n</main>\n"
        f'<script type="application/json" id="plush-timeline-data">{script_json(timeline)}</script>\n'
        f"<script>{script}</script>\n<script>{_BOOT}</script>\n</body>\n</html>\n"
    )


def timeline_script() -> str:
    """The timeline renderer, ``plush/web/static/js/timeline.js``, as shipped in the package."""
    return resources.files("plush.web").joinpath("static", "js", "timeline.js").read_text(encoding="utf-8")


def write_page(rundir_root: Path, page: str, *, mode: str) -> Path:
    """Write ``page`` as ``report.html`` in the run directory with the file ``mode`` of its results: whole, or not
    at all (a temporary file renamed into place; removed when the write fails, and the error raised)."""
    rundir = RunDir(rundir_root, "", mode)
    temporary = rundir_root / f".{PAGE}.{os.getpid()}.tmp"
    try:
        rundir.write_file(temporary.name, page.encode())
        os.replace(temporary, rundir_root / PAGE)
    except BaseException:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise
    return rundir_root / PAGE


def page_of(events: list[Event], report: FailureReport, *, now: float | None = None) -> str:
    """The page of a run from its events and report (``now``: where an unfinished run's timeline ends)."""
    return render_page(build_timeline(events, now=now).to_dict(), report, script=timeline_script())


def write_run_page(rundir_root: Path, *, mode: str | None = None) -> tuple[Path, FailureReport]:
    """Write (again) ``report.html`` of the run in ``rundir_root`` from its journal and status file; a running
    run's timeline reaches now. ``mode``: the results mode (default: the run directory's own, ``shared`` when
    others may read it); the page's path and the run's report. Raises JournalError for an unreadable journal,
    OSError for a failed write."""
    run = read_run(rundir_root / "journal.sqlite")
    report = load_report(rundir_root / "journal.sqlite", run)
    now = time.time() if report.outcome == "running" else None
    if mode is None:
        mode = "shared" if rundir_root.stat().st_mode & 0o077 else "private"
    return write_page(rundir_root, page_of(run[0], report, now=now), mode=mode), report
