"""The browser the web UI's tests drive: Debian's Chromium, headless, with a fresh profile, under Playwright."""

from __future__ import annotations

from typing import Any


def test_the_browser_renders_a_page_and_runs_its_script(page: Any) -> None:
    page.set_content("<p id=out>before</p><script>document.getElementById('out').textContent = 'after'</script>")
    assert page.inner_text("#out") == "after"
    assert page.console_lines == []
