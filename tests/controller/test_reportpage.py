"""report.html (plush.controller.reportpage): the JSON-in-script boundary, the page's fixed structure whatever
the data, the file written whole with the run's mode, and rewritten for a finished run."""

from __future__ import annotations

import json
import os
import stat
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from plush.controller.events import Event
from plush.controller.journal import Journal
from plush.controller.report import build_report
from plush.controller.reportpage import (
    PAGE,
    page_of,
    render_page,
    script_json,
    timeline_script,
    write_page,
    write_run_page,
)
from plush.controller.timeline import build_timeline

T0 = 1_700_000_000.0
#: every tag the page is made of: data never adds one
TAGS = {"html", "head", "meta", "title", "style", "body", "header", "h1", "span", "main", "section", "h2", "p"}
TAGS |= {"div", "table", "thead", "tbody", "tr", "th", "td", "code", "details", "summary", "pre", "script"}


class Page(HTMLParser):
    """What a browser's tokenizer sees: the start tags with their attributes, and each script's text."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.scripts: list[tuple[dict[str, str | None], str]] = []
        self.comments: list[str] = []
        self._script: dict[str, str | None] | None = None
        self.feed(text)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag == "script":
            self._script = dict(attrs)
            self.scripts.append((self._script, ""))

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._script = None

    def handle_data(self, data: str) -> None:
        if self._script is not None:
            attrs, text = self.scripts[-1]
            self.scripts[-1] = (attrs, text + data)

    def handle_comment(self, data: str) -> None:
        self.comments.append(data)


def hostile_run(host: str, reason: str, block: str) -> list[Event]:
    events = [
        Event(name="run.started", at=T0, data={"run": "20240101-120000-0001", "hosts": 1}),
        Event(name="host.joined", at=T0 + 0.1, host=host, data={"component": reason}),
        Event(name="process.started", at=T0 + 0.2, host=host, block=block, instance=1, data={"pid": 1}),
        Event(name="barrier.arrived", at=T0 + 0.3, host=host, block=block, data={"barrier": reason}),
        Event(name="barrier.late", at=T0 + 0.3, host=host, data={"barrier": reason}),
    ]
    events.append(
        Event(
            name="process.exited",
            at=T0 + 1,
            host=host,
            block=block,
            instance=1,
            data={"code": 3, "action": "abort", "rule": reason, "stderr_tail": reason},
        )
    )
    events.append(Event(name="host.failed", at=T0 + 1.5, host=host, data={"reason": reason, "component": reason}))
    events.append(Event(name="run.finished", at=T0 + 2, data={"ok": False, "reason": reason, "timings": {}}))
    return events


_NASTY = st.sampled_from(["</script>", "</SCRIPT >", "<!--", "-->", "<script>", "&amp;", "\u2028", "'\"", "<b>"])
_text = st.lists(st.one_of(_NASTY, st.text(max_size=6)), min_size=1, max_size=4).map("".join)
#: a host name is one a host set can hold (the failure report folds them): no space, comma or bracket
_host = _text.map(lambda t: "".join(c for c in t if c not in ",[] \t\r\n") or "h")


@settings(max_examples=150, deadline=None)
@given(_host, _text, _text)
def test_no_data_can_end_the_script_or_add_markup(host: str, reason: str, block: str) -> None:
    events = hostile_run(host, reason, block)
    timeline = build_timeline(events).to_dict()
    text = render_page(timeline, build_report(events), script=timeline_script())
    page = Page(text)
    assert {tag for tag, _ in page.tags} <= TAGS
    assert not [name for _, attrs in page.tags for name in attrs if name.startswith("on")]
    assert page.comments == []
    assert [attrs.get("type") for attrs, _ in page.scripts] == ["application/json", None, None]
    assert json.loads(page.scripts[0][1]) == json.loads(json.dumps(timeline))
    assert page.scripts[1][1] == timeline_script()


@settings(max_examples=300, deadline=None)
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
        max_leaves=16,
    )
)
def test_script_json_reads_back_and_holds_no_markup_character(value: Any) -> None:
    text = script_json(value)
    assert not set(text) & {"<", ">", "&", "\u2028", "\u2029"}
    assert json.loads(text) == value


def test_the_timeline_script_can_be_inlined() -> None:
    script = timeline_script().lower()
    assert "</script" not in script and "<!--" not in script
    assert not [w for w in ("innerhtml =", "outerhtml", "insertadjacenthtml", "document.write") if w in script]
    assert "window.PlushTimeline" in timeline_script()


def test_a_script_that_could_end_its_element_is_refused() -> None:
    with pytest.raises(ValueError, match="cannot be inlined"):
        render_page({}, build_report([]), script="var a = '</script>';")


@pytest.mark.parametrize(("mode", "bits"), [("private", 0o600), ("shared", 0o644)])
def test_the_page_is_written_whole_with_the_results_mode(tmp_path: Path, mode: str, bits: int) -> None:
    events = hostile_run("local-1", "boom", "/app/c/p")
    path = write_page(tmp_path, page_of(events, build_report(events)), mode=mode)
    assert path == tmp_path / PAGE and stat.S_IMODE(os.stat(path).st_mode) == bits
    assert sorted(p.name for p in tmp_path.iterdir()) == [PAGE]  # no temporary file left


def test_a_failed_write_leaves_no_file(tmp_path: Path) -> None:
    (tmp_path / PAGE).mkdir()  # the rename cannot replace a directory
    with pytest.raises(OSError):
        write_page(tmp_path, "<!DOCTYPE html>", mode="private")
    assert sorted(p.name for p in tmp_path.iterdir()) == [PAGE]


def test_a_run_page_is_rewritten_from_the_journal(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "journal.sqlite")
    for event in hostile_run("local-1", "boom", "/app/c/p"):
        journal(event)
    journal.close()
    os.chmod(tmp_path, 0o700)
    path, report = write_run_page(tmp_path)
    assert report.outcome == "failed"
    text = path.read_text()
    assert "Plush run 20240101-120000-0001" in text and "failed" in text
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    data = json.loads(Page(text).scripts[0][1])
    assert data["groups"][0]["rows"][0]["hosts"] == "local-1"


def test_the_served_policy_allows_the_page_s_own_scripts_and_style_in_a_sandbox() -> None:
    from plush.controller.reportpage import _BOOT, _STYLE, _sha, served_policy

    page = render_page(build_timeline([]).to_dict(), build_report([]), script="/* timeline.js */")
    policy = served_policy(page)
    assert f"script-src {_sha('/* timeline.js */')} {_sha(_BOOT)};" in policy
    assert f"style-src {_sha(_STYLE)};" in policy
    assert policy.endswith("; frame-ancestors 'none'; sandbox allow-scripts")
    assert "unsafe" not in policy and "allow-same-origin" not in policy
    # a page without scripts allows none
    assert "script-src 'none';" in served_policy("<!DOCTYPE html><p>no script</p>")
