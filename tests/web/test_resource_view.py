"""The resource view in a real browser against a real ``plush serve --http``: the pool and the matching of a run
in progress (hosts per component, spares, live), then a host failed by hand and the spare that took its place
(host.rematched: who replaced whom), and a host restarted in place (``plush restart HOST``: host.failed then
host.restarted) that is no longer listed as failed. Screenshot: resources.png."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

from integration_support import RUN_TIMEOUT, cli_env
from playwright.sync_api import expect
from web_support import WAIT, page_errors, sign_in, web_served

#: 2 workers that sleep until the run is stopped
SLEEPERS = """<plush><project name="sleepers">
  <component name="workers"><rspec><num_hosts>2</num_hosts></rspec></component>
  <application_block name="sleepers"><execution><component_block name="workers"><component name="workers"/>
    <process_block name="sleep"><process name="sleep"><path>sleep</path><cmdline><arg>600</arg></cmdline></process>
    </process_block>
  </component_block></execution></application_block>
</project></plush>
"""


def test_the_resource_view_shows_the_matching_spares_and_a_replacement(
    page: Any, tmp_path: Path, screenshots: Path
) -> None:
    spec = tmp_path / "sleepers.xml"
    spec.write_text(SLEEPERS)
    with web_served(tmp_path, hosts=4) as web:
        sign_in(page, web)
        page.goto(web.url + "#/resources")
        expect(page.get_by_test_id("tile-pool")).to_contain_text("4", timeout=WAIT)
        expect(page.get_by_test_id("components")).to_contain_text("No application loaded")

        web.api("PUT", "/v1/application", {"path": str(spec)})
        web.api("POST", "/v1/runs", {})
        row = page.locator('.pl-comp-row[data-component="workers"]')
        expect(row.get_by_test_id("matched-count")).to_have_text("2", timeout=WAIT)
        expect(row).to_contain_text("2 running", timeout=WAIT)
        expect(page.get_by_test_id("tile-spares")).to_contain_text("2")
        matched = web.api("GET", "/v1/application")["run"]["hosts"]["workers"]
        victim = matched[0]

        web.api("POST", f"/v1/hosts/{victim}/fail")
        replaced = page.get_by_test_id("section-replaced")
        expect(replaced).to_contain_text(victim, timeout=WAIT)
        replacement = next(h for h in web.api("GET", "/v1/application")["run"]["hosts"]["workers"] if h not in matched)
        expect(replaced).to_contain_text(replacement)
        expect(page.get_by_test_id("tile-replaced")).to_contain_text("1")
        expect(page.get_by_test_id("section-failed")).to_contain_text("marked failed by the user")
        expect(page.get_by_test_id("tile-spares")).to_contain_text("1", timeout=WAIT)
        expect(row.get_by_test_id("matched-count")).to_have_text("2", timeout=WAIT)  # the replaced host left it
        expect(row).to_contain_text("2 running", timeout=WAIT)
        row.click()  # unfolds the component's hosts
        expect(page.locator(".pl-comp-hosts")).to_contain_text(replacement)
        page.screenshot(path=screenshots / "resources.png")

        # the operator restarts the other host in place: it fails, then is back (not failed any more)
        back = matched[1]
        restart = subprocess.run(
            [sys.executable, "-m", "plush", "restart", back],
            cwd=web.served.cwd,
            env=cli_env(),
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT,
            check=False,
        )
        assert restart.returncode == 0, restart.stderr
        expect(page.get_by_text(f"restarted in place: {back}")).to_be_visible(timeout=WAIT)
        expect(page.get_by_test_id("section-failed")).not_to_contain_text(back)
        expect(page.get_by_test_id("tile-failed")).to_contain_text("1")  # the replaced host only
        expect(row).to_contain_text("2 running", timeout=WAIT)
        page.reload()  # the snapshot says the same
        expect(page.get_by_text(f"restarted in place: {back}")).to_be_visible(timeout=WAIT)
        expect(page.get_by_test_id("section-failed")).to_contain_text(victim)
        expect(page.get_by_test_id("section-failed")).not_to_contain_text(back)
        page.screenshot(path=screenshots / "resources-restarted.png")
        web.api("POST", "/v1/runs/current/stop", {})
        assert not page_errors(page), page.console_lines
