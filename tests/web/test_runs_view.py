"""The run view and a host's logs in a real browser against a real ``plush serve --http``, after a run that
failed: the runs listed newest first with their outcome; a run's page with its status, its failure report
(root cause first, its stderr tail), the timeline drawn (the failed host's row and its failed process), its
report.html opened in a new page from the link (its timeline drawn there, served sandboxed), its files, a
process's log opened from them, a large log capped with "Load all"; and the same run's logs of every process
instance on a host's page."""

from __future__ import annotations

import html
import re
import urllib.request
from pathlib import Path
from typing import Any

from integration_support import RUN_TIMEOUT, wait_until
from playwright.sync_api import expect
from web_support import WAIT, WebServed, sign_in, web_served

SPEC = """
project: webruns
components:
  workers:
    hosts: 3
application:
  execution:
    workers:
      blocks:
        - process: hello
          run: [sh, -c, 'echo "hello from $PLUSH_HOST"; echo "a warning on stderr" >&2']
        - process: big
          after: [hello]
          run: [python3, -c, 'for i in range(4000): print("line %05d " % i + "x" * 90)']
        - barrier: written            # every host's big log is whole before local-2 fails the run
          after: [big]
        - process: check
          after: [written]
          run: [sh, -c, '[ "$PLUSH_HOST" != local-2 ] || { echo "local-2 is not ready" >&2; exit 3; }']
"""


def run_to_end(web: WebServed) -> str:
    web.api("PUT", "/v1/application", {"text": SPEC, "format": "yaml"})
    run = str(web.api("POST", "/v1/runs", {})["run"])

    def ended() -> bool:
        status = web.api("GET", "/v1/runs/current")
        return not status["running"] and status["last"] is not None and status["last"]["run"] == run

    wait_until(ended, RUN_TIMEOUT, "the run's end")
    return run


def failed_process_of(web: WebServed, run: str, host: str) -> list[Any]:
    """The failed process span of ``host``'s row in the run's timeline (GET /v1/runs/{run}/timeline)."""
    timeline = web.api("GET", f"/v1/runs/{run}/timeline")
    rows = [row for group in timeline["groups"] for row in group["rows"] if row["hosts"] == host]
    assert len(rows) == 1, timeline
    spans = [s for s in rows[0]["spans"] if s[0] == "process" and s[3] == "failed"]
    assert len(spans) == 1, rows[0]
    return list(spans[0])


def assert_drawn(page: Any, handle: str, host: str, span: list[Any]) -> None:
    """The timeline ``handle`` (a JS expression) drew ``host``'s row and, at its ``span``, tells that span."""
    assert host in page.evaluate(f"{handle}.rows()")
    tip = page.evaluate(
        f"([host, t]) => {{ const tl = {handle}; return tl.at(tl.xOf(t), tl.yOf(host)); }}",
        [host, (span[1] + span[2]) / 2],
    )
    assert tip is not None and tip[0] == f"process {span[4]}" and tip[1] == host, tip
    assert tip[2].startswith("failed"), tip


def test_a_failed_run_s_page_shows_its_report_root_cause_first_its_files_and_a_process_s_log(
    page: Any, tmp_path: Path, screenshots: Path
) -> None:
    with web_served(tmp_path, hosts=3) as web:
        first = run_to_end(web)
        run = run_to_end(web)
        sign_in(page, web)

        # the list: newest first, each with its outcome
        page.goto(f"{web.url}#/runs")
        rows = page.locator(".vt-row:not([hidden])")
        expect(rows).to_have_count(2, timeout=WAIT)
        expect(rows.nth(0)).to_contain_text(run)
        expect(rows.nth(1)).to_contain_text(first)
        expect(rows.nth(0)).to_contain_text("failed")
        expect(rows.nth(0)).to_contain_text("1 failure", timeout=WAIT)
        page.screenshot(path=screenshots / "runs.png")

        # a run's page: its status, the report with the root cause first
        rows.nth(0).get_by_role("link", name=run).click()
        expect(page.locator(".page-head h1")).to_have_text(run, timeout=WAIT)
        expect(page.locator(".page-head .badge")).to_have_text("failed", timeout=WAIT)
        root = page.locator(".report .entry.root-cause")
        expect(root).to_contain_text("local-2", timeout=WAIT)
        expect(root).to_contain_text("/webruns/workers/check")
        expect(root).to_contain_text("exit 3")
        expect(root.locator("pre.out.err")).to_have_text("local-2 is not ready")
        assert page.locator(".report h3").first.inner_text() == "Root cause"
        # the timeline: the failed host has a row of its own, its check process drawn failed there
        failed_span = failed_process_of(web, run, "local-2")
        page.wait_for_function("document.querySelector('.timeline-box').timeline !== undefined", timeout=WAIT)
        assert_drawn(page, "document.querySelector('.timeline-box').timeline", "local-2", failed_span)

        # report.html: the link opens it in a new page, its timeline drawn there
        link = page.locator(".html-note a.report-link")
        expect(link).to_have_attribute("target", "_blank", timeout=WAIT)
        expect(link).to_have_attribute("rel", "noopener")
        with page.context.expect_page() as opened:
            link.click()
        report = opened.value
        report.wait_for_function("window.plushTimeline !== undefined", timeout=WAIT)
        assert report.url == f"{web.url}v1/runs/{run}/report.html"
        assert report.locator("h1").text_content() == f"Plush run {run}"
        assert_drawn(report, "window.plushTimeline", "local-2", failed_span)
        assert report.evaluate("window.origin") == "null"  # sandboxed: nothing of the API's origin is its
        report.close()
        answer = urllib.request.urlopen(
            urllib.request.Request(
                f"{web.url}v1/runs/{run}/report.html", headers={"Authorization": f"Bearer {web.token}"}
            ),
            timeout=30,
        )
        with answer:
            headers, body = answer.headers, answer.read().decode()
        assert headers["Content-Type"] == "text/html; charset=utf-8"
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["Referrer-Policy"] == "no-referrer"
        meta = re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', body)
        assert meta is not None
        # the page's own scripts and style only (the hashes its meta holds), not framed, in a sandbox
        assert headers["Content-Security-Policy"] == (
            html.unescape(meta.group(1)) + "; frame-ancestors 'none'; sandbox allow-scripts"
        )

        # its files: a filter by host set, a process's log opened
        files = page.locator(".files-table .vt-row:not([hidden])")
        expect(files.first).to_be_visible(timeout=WAIT)
        page.fill(".panel-head input.filter", "local-1")
        expect(files).to_have_count(3)  # hello's stdout and stderr, big's stdout (empty logs are not written)
        files.filter(has_text="hello.1.stdout").get_by_role("button", name="open").click()
        log = page.locator(".log-view")
        expect(log).to_have_attribute("data-state", "done", timeout=WAIT)
        expect(log.locator(".log-text")).to_have_text("hello from local-1\n")
        page.screenshot(path=screenshots / "run.png", full_page=True)

        # a host's page: the logs of every process instance of the last run; a large one capped
        page.goto(f"{web.url}#/hosts/local-1")
        table = page.locator(".logs-table")
        expect(table.locator("tbody tr")).to_have_count(2, timeout=WAIT)  # hello #1, big #1
        expect(page.locator(".pick[aria-label=run]")).to_have_value(run)
        table.locator("tr", has_text="big").get_by_role("button", name="stdout").click()
        expect(log).to_have_attribute("data-state", "done", timeout=WAIT)
        expect(log.locator(".log-info")).to_contain_text("the first 256.0 KiB")
        assert len(log.locator(".log-text").inner_text()) == 256 * 1024
        log.get_by_role("button", name="Load all").click()
        expect(log.locator(".log-info")).not_to_contain_text("the first", timeout=WAIT)
        expect(log.locator(".log-text")).to_contain_text("line 03999 ")
        table.locator("tr", has_text="hello").get_by_role("button", name="stderr").click()
        expect(log.locator(".log-text")).to_have_text("a warning on stderr\n", timeout=WAIT)
        page.screenshot(path=screenshots / "host-logs.png")
        assert [
            line for line in page.console_lines if "Failed to load resource" not in line and "timeline.js" not in line
        ] == []
