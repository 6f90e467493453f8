"""The web UI's store against a real ``plush serve``: a page opened in the middle of a run starts from
``GET /v1/application/states`` and follows the events after it, ending with what the controller says; the
status strip puts a failure's words in the page as text."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from integration_support import RUN_TIMEOUT, wait_until
from playwright.sync_api import expect
from web_support import WAIT, sign_in, web_served

from plush.controller.catalogue import CATALOGUE, PROCESS_OUTPUT

HOSTILE = "<img src=x onerror=window.pwned=1>"
SPEC = """\
project: midrun
components:
  c:
    hosts: 3
application:
  execution:
    c:
      blocks:
        - process: first
          run: [sh, -c, 'true']
        - process: hold
          after: [first]
          run: [sh, -c, 'while [ ! -e {go} ]; do sleep 0.05; done']
        - process: last
          after: [hold]
          run: [sh, -c, '[ "$PLUSH_HOST_INDEX" != 1 ] || {{ echo "{hostile}" >&2; exit 1; }}']
"""

STORE_HOSTS = """async () => {
    const { store } = await import('/static/js/store.js');
    const out = {};
    for (const [name, host] of store.hosts) out[name] = {phase: host.phase, blocks: Object.fromEntries(host.blocks)};
    return out;
}"""


def _hosts_of(states: dict[str, Any]) -> dict[str, Any]:
    return {name: {"phase": h["phase"], "blocks": h["blocks"]} for name, h in states["hosts"].items()}


def _same(page: Any, web: Any) -> dict[str, Any] | None:
    """The controller's states when the page's store holds the same phases and blocks, else None."""
    states = web.api("GET", "/v1/application/states")
    return states if page.evaluate(STORE_HOSTS) == _hosts_of(states) else None


def test_a_page_opened_mid_run_shows_each_hosts_blocks_then_follows_the_run_to_its_end(
    page: Any, tmp_path: Path, screenshots: Path
) -> None:
    go = tmp_path / "go"
    with web_served(tmp_path, hosts=3) as web:
        before = web.api("GET", "/v1/application/states")
        assert before["hosts"] == {}
        web.api("PUT", "/v1/application", {"text": SPEC.format(go=go, hostile=HOSTILE), "format": "yaml"})
        web.api("POST", "/v1/runs", {})

        def holding() -> dict[str, Any] | None:
            states = web.api("GET", "/v1/application/states")
            held = [h for h in states["hosts"].values() if any(p.endswith("/hold") for p in h["blocks"])]
            return states if len(held) == 3 else None

        mid = wait_until(holding, RUN_TIMEOUT, "every host in its hold block")
        assert {h["phase"] for h in mid["hosts"].values()} == {"running"}
        assert mid["event"] > before["event"]
        sign_in(page, web)
        expect(page.locator("#status-run")).to_contain_text("running", timeout=WAIT)
        # the store holds the snapshot (and whatever came after it)
        snapshot = page.evaluate(STORE_HOSTS)
        for name, host in _hosts_of(mid).items():
            assert snapshot[name]["phase"] == "running"
            assert {p: s for p, s in snapshot[name]["blocks"].items() if p in host["blocks"]} == host["blocks"]
        go.touch()
        expect(page.locator("#status-run")).to_contain_text("last run failed", timeout=WAIT)
        end = wait_until(lambda: _same(page, web), RUN_TIMEOUT, "the store to hold what the controller says")
        assert "failed" in {h["phase"] for h in end["hosts"].values()}
        # a second run: the store starts it afresh; its abort's reason is text in the page, not markup
        go.unlink()
        web.api("POST", "/v1/runs", {})
        web.api("POST", "/v1/runs/current/abort", {"reason": HOSTILE})
        expect(page.locator("#status-run")).to_contain_text(HOSTILE, timeout=WAIT)
        assert page.locator("header img").count() == 0
        assert page.evaluate("window.pwned") is None
        page.screenshot(path=screenshots / "status-aborted.png")
        wait_until(lambda: _same(page, web), RUN_TIMEOUT, "the store to follow the second run")


def test_the_store_listens_to_every_event_of_the_catalogue_but_process_output() -> None:
    store = (Path(__file__).resolve().parents[2] / "src/plush/web/static/js/store.js").read_text()
    listed = re.search(r"EVENT_NAMES = \[(.*?)\];", store, re.DOTALL)
    assert listed is not None
    names = set(re.findall(r'"([a-z_.]+)"', listed.group(1)))
    assert names == set(CATALOGUE) - {PROCESS_OUTPUT}
