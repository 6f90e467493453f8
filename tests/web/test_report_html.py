"""report.html in a browser: examples/partial.xml run for real, its page opened from file:// (no server), the
late hosts' waits and late passes drawn and told by the tooltips; the renderer at 1,000 rows."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from integration_support import events, first, only_run, run_cli

from plush.controller.reportpage import timeline_script

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
ORANGE = (0xF2, 0x99, 0x4A)


def tooltip_at(page: Any, x: float, y: float) -> str:
    """Hover the rows' canvas at (x, y) (CSS pixels from its top left); the tooltip's text."""
    box = page.locator("canvas[role=img]").bounding_box()
    page.mouse.move(box["x"] + x, box["y"] + y)
    tip = page.locator("[data-role=tooltip]")
    tip.wait_for(state="visible")
    return str(tip.text_content())


def pixel(page: Any, x: float, y: float) -> tuple[int, int, int]:
    rgb = page.evaluate(
        """([x, y]) => {
            const canvas = document.querySelector("canvas[role=img]");
            const r = window.devicePixelRatio || 1;
            const d = canvas.getContext("2d").getImageData(Math.round(x * r), Math.round(y * r), 1, 1).data;
            return [d[0], d[1], d[2]];
        }""",
        [x, y],
    )
    return (rgb[0], rgb[1], rgb[2])


def test_the_partial_example_s_report_shows_the_late_hosts_wait_and_late_pass(
    page: Any, screenshots: Path, tmp_path: Path
) -> None:
    done = run_cli(EXAMPLES / "partial.xml", tmp_path / "runs", "-q")
    assert done.returncode == 0, done.stderr
    root = only_run(tmp_path / "runs")
    evs = events(root)
    t0 = first(evs, "run.started").at
    late = sorted((e.host or "", round(e.at - t0, 3)) for e in evs if e.name == "barrier.late")
    released = first(evs, "barrier.released", barrier="quorum")
    assert len(late) == 2

    page.goto((root / "report.html").as_uri())
    page.locator("canvas[role=img]").wait_for()
    page.wait_for_function("window.plushTimeline !== undefined")
    assert page.locator("h1").text_content() == f"Plush run {root.name}"
    assert page.evaluate("window.plushTimeline.rows()") == [f"local-{n}" for n in range(1, 6)]
    legend = str(page.locator("[data-role=legend]").text_content())
    assert "barrier wait" in legend and "late pass" in legend

    for host, at in late:
        x, mid = page.evaluate("([h, t]) => [window.plushTimeline.xOf(t), window.plushTimeline.yOf(h)]", [host, at])
        r, g, b = pixel(page, x + 3, mid)  # the late wait bar, drawn at least 6 px wide
        assert abs(r - ORANGE[0]) < 24 and abs(g - ORANGE[1]) < 24 and abs(b - ORANGE[2]) < 24, (host, (r, g, b))
        wait = tooltip_at(page, x + 3, mid)
        assert "barrier quorum" in wait and f"{host}\n" in wait and "late" in wait, wait
        mark = tooltip_at(page, x, mid - 8)  # the late pass mark, above the bar
        assert "passed quorum late" in mark, mark
    host = next(h for h in released.data["hosts"] if h not in dict(late))
    x = page.evaluate("(t) => window.plushTimeline.xOf(t)", round(released.at - t0, 3) - 0.05)
    mid = page.evaluate("(h) => window.plushTimeline.yOf(h)", host)
    text = tooltip_at(page, x, mid)
    assert "barrier quorum" in text and "waited: released" in text, text

    x, mid = page.evaluate("([h, t]) => [window.plushTimeline.xOf(t), window.plushTimeline.yOf(h)]", late[0])
    page.locator("canvas[role=img]").hover(position={"x": x + 3, "y": mid})
    page.screenshot(path=screenshots / "report-html.png", full_page=True)
    # no script error, nothing refused by the page's CSP (Chromium's advice on the test's own pixel reads aside)
    assert [line for line in page.console_lines if "willReadFrequently" not in line] == []


def test_a_thousand_unfolded_rows_are_drawn_as_they_scroll_into_view(page: Any, screenshots: Path) -> None:
    """Also: an element removed without destroy() is let go (the run view of the web UI replaces it)."""
    rows = [
        {
            "hosts": f"node{n}",
            "count": 1,
            "cpus": 2,
            "spans": [["process", 0.1, 1 + n / 100, "ok" if n % 7 else "failed", "/app/c/work/work", "#1"]],
            "marks": [],
            "samples": [[0.5, n % 3, 40.0]],
            "omitted": 0,
        }
        for n in range(1, 1001)
    ]
    data = {
        "version": 1,
        "duration": 11.0,
        "finished": True,
        "hosts": 1000,
        "rows": 1000,
        "marks": [],
        "groups": [{"component": "</script><b>c</b>", "hosts": 1000, "rows": rows}],
    }
    page.set_content("<!DOCTYPE html><body><div id=t></div></body>")
    page.add_script_tag(content=timeline_script())
    page.evaluate("(data) => { window.tl = window.PlushTimeline.render(document.getElementById('t'), data); }", data)
    assert page.evaluate("window.tl.rows().length") == 1000
    assert page.locator("b").count() == 0  # data is text, never markup
    page.locator("[data-role=rows]").evaluate("(el) => { el.scrollTop = el.scrollHeight; }")
    box = page.locator("[data-role=rows]").bounding_box()
    page.mouse.move(box["x"] + 40, box["y"] + box["height"] - 10)
    page.locator("[data-role=tooltip]").wait_for(state="visible")
    assert str(page.locator("[data-role=tooltip]").text_content()).startswith("node1000")
    page.screenshot(path=screenshots / "timeline-1000.png")
    page.mouse.move(box["x"] + 40, box["y"] + 8)  # the component of the rows in view stays pinned at the top
    page.wait_for_function("document.querySelector('[data-role=tooltip]').textContent.startsWith('</script>')")
    # a view that drops the element without calling destroy() leaves nothing listening: no redraw once it is gone
    width = page.evaluate(
        """() => new Promise((done) => {
            const canvas = document.querySelector("canvas[role=img]");
            const before = canvas.width;
            document.getElementById("t").remove();
            window.dispatchEvent(new Event("resize"));
            requestAnimationFrame(() => requestAnimationFrame(() => done([before, canvas.width])));
        })"""
    )
    assert width[0] == width[1] and width[0] > 480
    assert page.console_lines == []
    json.dumps(data)  # the test's own data is JSON, as the API's
