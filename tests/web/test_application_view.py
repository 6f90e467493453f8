"""The application view in a real browser against a real ``plush serve --http``: a refused spec shows the API's
problems by line; a spec loaded by path draws its DAG; Run lights each block by the states of its hosts (counts,
not one node per host); a barrier that waits for a host that never arrives is released from the UI and the run
goes on; Stop ends it; a workflow's queue counts its items done and left. Screenshots: application.png
(mid-run), application-errors.png, application-released.png, application-workflow.png."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from playwright.sync_api import expect
from web_support import WAIT, block, page_errors, sign_in, web_served

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

#: 3 racers: the one of index 2 never reaches the barrier `gate` (it sleeps); the others wait there for it
GATE = """<plush>
  <project name="gate">
    <component name="racers"><rspec><num_hosts>3</num_hosts></rspec></component>
    <application_block name="gate">
      <execution>
        <component_block name="racers">
          <component name="racers"/>
          <process_block name="work">
            <process name="work">
              <path>sh</path>
              <cmdline>
                <arg>-c</arg><arg>[ "$PLUSH_HOST_INDEX" = 2 ] &amp;&amp; exec sleep 600; echo worked</arg>
              </cmdline>
            </process>
          </process_block>
          <barrier_block name="gate"><predecessor name="work"/></barrier_block>
          <process_block name="report">
            <predecessor name="gate"/>
            <process name="report"><path>echo</path><cmdline><arg>passed the gate</arg></cmdline></process>
          </process_block>
        </component_block>
      </execution>
    </application_block>
  </project>
</plush>
"""


def test_load_run_release_a_barrier_and_stop_from_the_application_view(
    page: Any, tmp_path: Path, screenshots: Path
) -> None:
    spec = tmp_path / "gate.xml"
    spec.write_text(GATE)
    with web_served(tmp_path, hosts=3) as web:
        sign_in(page, web)
        page.goto(web.url + "#/application")
        # nothing loaded: the load panel is open; a spec with errors is refused with the API's words, by line
        expect(page.get_by_test_id("load-panel")).to_be_visible(timeout=WAIT)
        expect(page.get_by_test_id("run")).to_be_disabled()
        page.get_by_test_id("spec-text").fill("<plush>\n  <bad/>\n</plush>")
        page.get_by_test_id("load-text").click()
        errors = page.get_by_test_id("spec-errors")
        expect(errors).to_contain_text("unknown element <bad>", timeout=WAIT)
        expect(errors).to_contain_text("line 2")
        page.screenshot(path=screenshots / "application-errors.png")

        page.get_by_test_id("spec-path").fill(str(spec))
        page.get_by_test_id("load-path").click()
        expect(page.locator(".pl-app-title")).to_have_text("gate", timeout=WAIT)
        expect(page.get_by_test_id("load-panel")).to_be_hidden()
        for path in ("/gate/racers/work", "/gate/racers/gate", "/gate/racers/report"):
            expect(block(page, path)).to_be_visible()
        expect(page.locator('.pl-barrier[data-barrier="gate"]')).to_contain_text("all hosts")

        page.get_by_test_id("run").click()
        expect(page.get_by_test_id("run-state")).to_contain_text("running", timeout=WAIT)
        # two racers done with their work and waiting at the gate, the third still running its work
        expect(block(page, "/gate/racers/work").locator(".pl-counts")).to_have_text("1 running · 2 done", timeout=WAIT)
        expect(block(page, "/gate/racers/gate").locator(".pl-counts")).to_have_text("1 idle · 2 waiting", timeout=WAIT)
        barrier = page.locator('.pl-barrier[data-barrier="gate"]')
        expect(barrier.get_by_test_id("arrived")).to_have_text("2/3 arrived", timeout=WAIT)
        # the block's hosts, by state
        block(page, "/gate/racers/gate").click()
        expect(page.get_by_test_id("block-detail")).to_contain_text("2 waiting")
        page.screenshot(path=screenshots / "application.png")

        # released from the UI: the two waiting racers go on through `report` and are done
        barrier.get_by_test_id("release-gate").click()
        expect(barrier.get_by_test_id("barrier-status")).to_contain_text("released", timeout=WAIT)
        expect(block(page, "/gate/racers/report").locator(".pl-counts")).to_have_text("1 idle · 2 done", timeout=WAIT)
        page.screenshot(path=screenshots / "application-released.png")
        assert web.api("GET", "/v1/runs/current")["running"]

        page.get_by_test_id("stop").click()
        expect(page.get_by_test_id("run-state")).to_contain_text("stopped", timeout=WAIT)
        expect(page.get_by_test_id("run")).to_be_enabled()

        # a workflow's work queue: its items done and left, from the work.* events
        page.get_by_test_id("load-toggle").click()
        page.get_by_test_id("spec-path").fill(str(EXAMPLES / "workflow.xml"))
        page.get_by_test_id("load-path").click()
        expect(page.locator(".pl-app-title")).to_have_text("workflow", timeout=WAIT)
        queue = page.locator('.pl-queue-row[data-queue="/workflow/workers/checksums"]')
        expect(queue).to_contain_text("0/4 done · 4 left")
        page.get_by_test_id("run").click()
        expect(queue).to_contain_text("4/4 done · 0 left", timeout=WAIT)
        expect(page.get_by_test_id("run-state")).to_contain_text("last run ok", timeout=WAIT)
        expect(block(page, "/workflow/workers/count").locator(".pl-counts")).to_have_text("2 done")
        page.screenshot(path=screenshots / "application-workflow.png")
        assert not page_errors(page), page.console_lines


def test_an_application_loaded_by_another_client_shows_in_the_open_page(page: Any, tmp_path: Path) -> None:
    """app.loaded: the page's status strip and application view follow a load made over the API (not by them)."""
    spec = tmp_path / "gate.xml"
    spec.write_text(GATE)
    with web_served(tmp_path, hosts=3) as web:
        sign_in(page, web)
        page.goto(web.url + "#/application")
        expect(page.locator("#status-app")).to_have_text("no application", timeout=WAIT)
        web.api("PUT", "/v1/application", {"path": str(spec)})
        expect(page.locator("#status-app")).to_have_text("gate", timeout=WAIT)
        expect(page.locator(".pl-app-title")).to_have_text("gate", timeout=WAIT)
        expect(block(page, "/gate/racers/report")).to_be_visible()
        expect(page.get_by_test_id("run")).to_be_enabled()
        web.api("PUT", "/v1/application", {"path": str(EXAMPLES / "workflow.xml")})
        expect(page.locator("#status-app")).to_have_text("workflow", timeout=WAIT)
        expect(page.locator(".pl-app-title")).to_have_text("workflow", timeout=WAIT)
        expect(block(page, "/workflow/workers/count")).to_be_visible()
        expect(block(page, "/gate/racers/report")).to_have_count(0)
        assert not page_errors(page), page.console_lines
