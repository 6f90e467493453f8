"""The web UI's store against a real ``plush serve``: a page opened in the middle of a run starts from
``GET /v1/application/states`` and follows the events after it, ending with what the controller says; the
status strip puts a failure's words in the page as text."""

from __future__ import annotations

import json
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


#: a workflow of 6 items over 2 hosts: i1 and i2 are quick, the others wait for the file {go}
FLOW = """\
project: ledger
components:
  c:
    hosts: 2
application:
  execution:
    c:
      blocks:
        - workflow: flow
          data: [d/i1, d/i2, d/i3, d/i4, d/i5, d/i6]
          task:
            run: [sh, -c, 'case "$0" in *i1|*i2) exit 0;; esac; while [ ! -e {go} ]; do sleep 0.05; done']
"""
FLOW_QUEUE = "/ledger/c/flow"
LEDGER = ("replaced", "failures", "dropped", "restarts", "work")

STORE_LEDGER = """async () => {
    const { store } = await import('/static/js/store.js');
    const work = {};
    for (const [path, q] of store.work) {
        work[path] = {done: q.done, failed: q.failed,
            in_flight: [...q.inFlight].map(([item, host]) => ({item: JSON.parse(item), host}))};
    }
    return {replaced: store.replaced, failures: Object.fromEntries(store.failures),
        dropped: Object.fromEntries(store.dropped), restarts: Object.fromEntries(store.restarts), work};
}"""


def _ledger(states: dict[str, Any]) -> dict[str, Any]:
    out = {key: states[key] for key in LEDGER}
    out["work"] = {
        path: {**q, "in_flight": sorted(q["in_flight"], key=lambda f: json.dumps(f, sort_keys=True))}
        for path, q in states["work"].items()
    }
    return out


def _same_ledger(page: Any, web: Any) -> dict[str, Any] | None:
    """The controller's states when the page's store holds the same failures, replacements and queues."""
    states = web.api("GET", "/v1/application/states")
    return states if _ledger(page.evaluate(STORE_LEDGER)) == _ledger(states) else None


def test_a_page_opened_after_a_replacement_shows_it_and_the_work_queue_from_the_snapshot_on_one_stream(
    page: Any, tmp_path: Path, screenshots: Path
) -> None:
    """The failures, replacements and work queues come with the snapshot (no second stream replaying the
    controller's history): the store holds what the controller says when the page opens, follows the events
    after it (states read again meanwhile neither lose nor repeat one), and ends equal to it."""
    go = tmp_path / "go"
    (tmp_path / "d").mkdir()
    for n in range(1, 7):
        (tmp_path / "d" / f"i{n}").write_text(f"item {n}\n")
    spec = tmp_path / "flow.yaml"
    spec.write_text(FLOW.format(go=go))
    streams: list[str] = []
    page.on("request", lambda request: streams.append(request.url) if "/v1/events" in request.url else None)
    with web_served(tmp_path, hosts=3) as web:
        web.api("PUT", "/v1/application", {"path": str(spec)})
        web.api("POST", "/v1/runs", {})

        def queue_is(done: int, held: int) -> dict[str, Any] | None:
            states = web.api("GET", "/v1/application/states")
            q = states["work"].get(FLOW_QUEUE)
            return states if q and (q["done"], len(q["in_flight"])) == (done, held) else None

        wait_until(lambda: queue_is(2, 2), RUN_TIMEOUT, "2 items done, 2 held")
        victim = web.api("GET", "/v1/application")["run"]["hosts"]["c"][0]
        web.api("POST", f"/v1/hosts/{victim}/fail")
        mid = wait_until(
            lambda: (s := queue_is(2, 2)) and s["replaced"] and s, RUN_TIMEOUT, "the replacement holding an item"
        )
        replacement = mid["replaced"][0]["replacement"]
        assert mid["replaced"][0]["host"] == victim and mid["failures"] == {victim: "marked failed by the user"}
        assert victim not in {f["host"] for f in mid["work"][FLOW_QUEUE]["in_flight"]}

        sign_in(page, web)
        page.goto(web.url + "#/resources")
        wait_until(lambda: _same_ledger(page, web), RUN_TIMEOUT, "the store to hold the snapshot's ledger")
        expect(page.get_by_test_id("section-replaced")).to_contain_text(replacement, timeout=WAIT)
        expect(page.get_by_test_id("section-failed")).to_contain_text("marked failed by the user")
        page.goto(web.url + "#/application")
        queue = page.locator(f'.pl-queue-row[data-queue="{FLOW_QUEUE}"]')
        expect(queue).to_contain_text("2/6 done · 4 left · 2 in progress", timeout=WAIT)

        go.touch()
        page.evaluate(
            """async () => {
                const { store } = await import('/static/js/store.js');
                for (let i = 0; i < 20; i++) await store.refresh('states');
            }"""
        )
        expect(queue).to_contain_text("6/6 done · 0 left", timeout=WAIT)
        expect(page.locator("#status-run")).to_contain_text("last run", timeout=WAIT)
        end = wait_until(lambda: _same_ledger(page, web), RUN_TIMEOUT, "the store to end as the controller")
        assert end["work"][FLOW_QUEUE]["done"] == 6
        wait_until(lambda: _same(page, web), RUN_TIMEOUT, "the store's hosts to end as the controller's")
        page.screenshot(path=screenshots / "application-ledger.png")
    assert len(streams) == 1, streams
    assert not [line for line in page.console_lines if line.startswith("pageerror")], page.console_lines
