"""The user's story of issue 14 in one browser test, against a real ``plush serve --hosts 5 --http``: load an
example from the application view, run it, watch its hosts turn running then done, release its barrier from
the UI; in the host view select hosts by a host set, run ``hostname`` on them and read the folded output;
open a process's log on a host's page; open the run's timeline in the run view. A screenshot of each step
(tour-1-loaded.png ... tour-7-timeline.png).

The example is examples/partial.yaml, the one with a barrier to release, made releasable: as written its
racers sleep 0 to 4 s and the barrier ``quorum`` releases itself at 3 of 5 (or 30 s after the first): a user
(or a test) could not release it before it releases itself, except by winning a race. Here (two replacements
of its text, checked) racers 2 to 4 work until the barrier has been released (the first racer past it leaves
a file in ``$PLUSH_RUN_DIR``, which the sandbox hosts share) and the timeout is 10 minutes: only 2 racers
arrive, the barrier waits for the user, and once released the other 3 finish and pass it late.
"""

from __future__ import annotations

import re
import socket
from pathlib import Path
from typing import Any

from playwright.sync_api import expect
from web_support import WAIT, block, page_errors, sign_in, web_served

PARTIAL = Path(__file__).resolve().parents[2] / "examples" / "partial.yaml"

#: (what partial.yaml says, what the tour's copy says instead)
CHANGES = [
    (
        """run: [sh, -c, 'sleep "$PLUSH_HOST_INDEX"; echo""",
        """run: [sh, -c, 'if [ "$PLUSH_HOST_INDEX" -lt 2 ]; then sleep "$PLUSH_HOST_INDEX"; """
        """else until [ -e "$PLUSH_RUN_DIR/released" ]; do sleep 0.1; done; fi; echo""",
    ),
    ("timeout: 30", "timeout: 600"),
    (
        """run: [sh, -c, 'echo "$PLUSH_HOST passed the quorum barrier"']""",
        """run: [sh, -c, 'touch "$PLUSH_RUN_DIR/released"; echo "$PLUSH_HOST passed the quorum barrier"']""",
    ),
]


def releasable_partial(tmp_path: Path) -> Path:
    text = PARTIAL.read_text()
    for old, new in CHANGES:
        assert text.count(old) == 1, f"examples/partial.yaml changed: {old!r} is not in it once"
        text = text.replace(old, new)
    spec = tmp_path / "partial.yaml"
    spec.write_text(text)
    return spec


def test_the_user_s_story_load_run_release_exec_a_log_and_the_timeline(
    page: Any, tmp_path: Path, screenshots: Path
) -> None:
    spec = releasable_partial(tmp_path)
    with web_served(tmp_path, hosts=5) as web:
        sign_in(page, web)

        # 1. load the example by its path in the application view
        page.get_by_role("link", name="Application").click()
        expect(page.get_by_test_id("load-panel")).to_be_visible(timeout=WAIT)
        page.get_by_test_id("spec-path").fill(str(spec))
        page.get_by_test_id("load-path").click()
        expect(page.locator(".pl-app-title")).to_have_text("partial", timeout=WAIT)
        work, quorum, report = (block(page, f"/partial/racers/{name}") for name in ("work", "quorum", "report"))
        expect(work).to_be_visible()
        page.screenshot(path=screenshots / "tour-1-loaded.png")

        # 2. run it: racers 0 and 1 are done with their work and wait at the barrier, 2 to 4 are still running
        page.get_by_test_id("run").click()
        expect(page.get_by_test_id("run-state")).to_contain_text("running", timeout=WAIT)
        expect(work.locator(".pl-counts")).to_have_text("3 running · 2 done", timeout=WAIT)
        expect(quorum.locator(".pl-counts")).to_have_text("3 idle · 2 waiting", timeout=WAIT)
        barrier = page.locator('.pl-barrier[data-barrier="quorum"]')
        expect(barrier.get_by_test_id("arrived")).to_have_text("2/5 arrived", timeout=WAIT)
        expect(report.locator(".pl-counts")).to_have_text("5 idle")
        page.screenshot(path=screenshots / "tour-2-running.png")

        # 3. release the barrier: the 2 go on, the other 3 finish their work and pass late; every host is done
        barrier.get_by_test_id("release-quorum").click()
        expect(barrier.get_by_test_id("barrier-status")).to_contain_text("released", timeout=WAIT)
        expect(work.locator(".pl-counts")).to_have_text("5 done", timeout=WAIT)
        expect(report.locator(".pl-counts")).to_have_text("5 done", timeout=WAIT)
        expect(barrier).to_contain_text("3 late")
        expect(page.get_by_test_id("run-state")).to_contain_text("last run ok", timeout=WAIT)
        run = web.api("GET", "/v1/runs/current")["last"]["run"]
        page.screenshot(path=screenshots / "tour-3-released-done.png")

        # 4. the host view: a host set selects 3 hosts, `hostname` runs on them, one folded group answers
        page.get_by_role("link", name="Hosts").click()
        rows = page.locator(".vt-row:not([hidden])")
        expect(rows).to_have_count(5, timeout=WAIT)
        page.fill("input.filter", "local-[2-4]")
        expect(rows).to_have_count(3, timeout=WAIT)
        page.get_by_role("button", name="Select all shown").click()
        expect(page.locator(".selection")).to_have_text("local-[2-4] (3 hosts)")
        page.fill("input.command", "hostname")
        page.get_by_role("button", name="Run on 3 hosts").click()
        expect(page.locator(".exec-summary[data-state=done]")).to_contain_text("status 0", timeout=WAIT)
        groups = page.locator(".exec-group")
        expect(groups).to_have_count(1)
        expect(groups.first.locator(".hostset")).to_have_text("local-[2-4]")
        expect(groups.first.locator("pre.out")).to_have_text(socket.gethostname() + "\n")
        page.screenshot(path=screenshots / "tour-4-hostname.png")

        # 5. a host's page: the logs of the run's process instances; work's stdout opened
        page.get_by_role("link", name="local-3").click()
        expect(page.locator(".page-head h1")).to_have_text("local-3", timeout=WAIT)
        expect(page.locator(".pick[aria-label=run]")).to_have_value(run, timeout=WAIT)
        logs = page.locator(".logs-table")
        expect(logs.locator("tbody tr")).to_have_count(2, timeout=WAIT)  # work #1, report #1
        logs.locator("tr", has_text="work").get_by_role("button", name="stdout").click()
        log = page.locator(".log-view")
        expect(log).to_have_attribute("data-state", "done", timeout=WAIT)
        expect(log.locator(".log-text")).to_have_text("local-3 finished its work\n")
        page.screenshot(path=screenshots / "tour-5-log.png")

        # 6. the run view: the run listed ok; its page draws the timeline of the 5 racers
        page.get_by_role("link", name="Runs").click()
        runs = page.locator(".vt-row:not([hidden])")
        expect(runs).to_have_count(1, timeout=WAIT)
        expect(runs.first).to_contain_text("ok", timeout=WAIT)
        page.screenshot(path=screenshots / "tour-6-runs.png")
        runs.first.get_by_role("link", name=run).click()
        expect(page.locator(".page-head h1")).to_have_text(run, timeout=WAIT)
        chart = page.locator(".timeline-box .plush-timeline")
        expect(chart).to_contain_text("5 hosts", timeout=WAIT)
        gantt = re.compile("^Gantt chart of 5 hosts over ")
        expect(chart.locator("canvas[role=img]")).to_have_attribute("aria-label", gantt)
        chart.scroll_into_view_if_needed()
        page.screenshot(path=screenshots / "tour-7-timeline.png")
        assert not page_errors(page), page.console_lines
