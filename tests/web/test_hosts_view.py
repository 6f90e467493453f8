"""The host view in a real browser against a real ``plush serve --http``: a host set in the filter box, "select
all shown", a shell command on the selection with its output folded by host set (identical outputs once,
outputs that differ only by the host's name once under ``{host}``, a failure apart with its exit status), and
"Mark failed" on a host's page, confirmed, answered with the API's own words when no run is in progress; after a
run, its hosts keep the component they served in it (the host view's column, a host's page) until the next run
matches again, and a host the run did not use has none."""

from __future__ import annotations

import re
import socket
from pathlib import Path
from typing import Any

from integration_support import RUN_TIMEOUT, wait_until
from playwright.sync_api import expect
from web_support import WAIT, sign_in, web_served


def test_a_host_set_selects_hosts_and_a_command_s_output_comes_back_folded_by_host_set(
    page: Any, tmp_path: Path, screenshots: Path
) -> None:
    with web_served(tmp_path, hosts=6) as web:
        sign_in(page, web)
        page.goto(f"{web.url}#/hosts")
        rows = page.locator(".vt-row:not([hidden])")
        expect(rows).to_have_count(6, timeout=WAIT)
        expect(rows.first).to_contain_text("local-1")

        page.fill("input.filter", "local-[2-4],local-6")
        expect(page.locator(".counts")).to_contain_text("4 shown", timeout=WAIT)
        expect(rows).to_have_count(4)
        page.get_by_role("button", name="Select all shown").click()
        expect(page.locator(".selection")).to_have_text("local-[2-4,6] (4 hosts)")

        # the same output everywhere: one group
        page.fill("input.command", "hostname")
        page.get_by_role("button", name="Run on 4 hosts").click()
        expect(page.locator(".exec-summary[data-state=done]")).to_contain_text("status 0", timeout=WAIT)
        groups = page.locator(".exec-group")
        expect(groups).to_have_count(1)
        expect(groups.first.locator(".hostset")).to_have_text("local-[2-4,6]")
        expect(groups.first).to_contain_text("(4 hosts)")
        expect(groups.first).to_contain_text("exit 0")
        expect(groups.first.locator("pre.out")).to_have_text(socket.gethostname() + "\n")
        page.screenshot(path=screenshots / "hosts-hostname.png")

        # outputs that differ by the host's name fold under {host}; a failure is a group of its own
        page.fill("input.command", 'echo "I am $PLUSH_HOST"; [ "$PLUSH_HOST" != local-3 ] || { echo no >&2; exit 3; }')
        page.get_by_role("button", name="Run on 4 hosts").click()
        expect(page.locator(".exec-summary[data-state=done]")).to_contain_text("status 3", timeout=WAIT)
        expect(groups).to_have_count(2)
        ok, failed = groups.nth(0), groups.nth(1)
        expect(ok.locator(".hostset")).to_have_text("local-[2,4,6]")
        expect(ok).to_contain_text("varies: {host}")
        expect(ok.locator("pre.out")).to_have_text("I am {host}\n")
        expect(failed).to_have_class("exec-group kind-failed")
        expect(failed.locator(".hostset")).to_have_text("local-3")
        expect(failed).to_contain_text("exit 3")
        expect(failed.locator("pre.out.err")).to_have_text("no\n")
        expect(page.locator(".exec-summary")).to_contain_text("3 ok · 1 failed")
        page.screenshot(path=screenshots / "hosts.png")

        # a host's page: its facts; "Mark failed" asks first, then says what the API answered
        page.get_by_role("link", name="local-3").click()
        expect(page.locator(".page-head h1")).to_have_text("local-3", timeout=WAIT)
        expect(page.locator(".facts")).to_contain_text("address")
        page.get_by_role("button", name="Mark failed").click()
        expect(page.locator(".confirm")).to_contain_text("Mark local-3 failed?")
        page.get_by_role("button", name="Mark local-3 failed").click()
        expect(page.locator(".notice.error")).to_contain_text("no application is running", timeout=WAIT)
        page.screenshot(path=screenshots / "host-page.png")

        # back to the list: the filter, the selection and the last output are as they were
        page.get_by_role("link", name="Hosts").first.click()
        expect(page.locator("input.filter")).to_have_value("local-[2-4],local-6", timeout=WAIT)
        expect(page.locator(".selection")).to_have_text("local-[2-4,6] (4 hosts)")
        expect(groups).to_have_count(2)
        # (the browser logs the API's refusals: the 409 above, and the tree of no application)
        assert [
            line for line in page.console_lines if "Failed to load resource" not in line and "timeline.js" not in line
        ] == []


def _spec(name: str, hosts: int) -> str:
    """An application of one component ``name`` of ``hosts`` hosts that each echo once."""
    return f"""<plush><project name="{name}">
  <component name="{name}"><rspec><num_hosts>{hosts}</num_hosts></rspec></component>
  <application_block name="{name}"><execution><component_block name="{name}"><component name="{name}"/>
    <process_block name="hi"><process name="hi"><path>echo</path><cmdline><arg>hi</arg></cmdline></process>
    </process_block>
  </component_block></execution></application_block>
</project></plush>
"""


def _run(web: Any, spec: Path) -> dict[str, list[str]]:
    """Load ``spec``, run it to its end; the run's matching (component -> hosts)."""
    web.api("PUT", "/v1/application", {"path": str(spec)})
    run = web.api("POST", "/v1/runs", {})["run"]

    def over() -> Any:
        app = web.api("GET", "/v1/application")
        return app["run"]["id"] == run and app["run"]["finished"] and app["run"]["hosts"]

    return wait_until(over, RUN_TIMEOUT, f"run {run} finished")  # type: ignore[no-any-return]


def test_a_finished_run_s_hosts_keep_the_component_they_served_and_a_new_run_matches_again(
    page: Any, tmp_path: Path, screenshots: Path
) -> None:
    first, second = tmp_path / "first.xml", tmp_path / "second.xml"
    first.write_text(_spec("first", 2))
    second.write_text(_spec("second", 1))
    with web_served(tmp_path, hosts=3) as web:
        sign_in(page, web)
        page.goto(f"{web.url}#/hosts")
        rows = page.locator(".vt-row:not([hidden])")
        expect(rows).to_have_count(3, timeout=WAIT)

        def row(name: str) -> Any:
            return rows.filter(has=page.locator(".vt-cell", has_text=re.compile(f"^{name}$")))

        matched = _run(web, first)["first"]
        (spare,) = {"local-1", "local-2", "local-3"} - set(matched)
        # the API's: no run holds them once its stop phase is over
        wait_until(lambda: {n["component"] for n in web.api("GET", "/v1/hosts")} == {None}, RUN_TIMEOUT, "released")
        expect(page.locator(".counts")).to_contain_text("3 shown", timeout=WAIT)
        for name in matched:
            expect(row(name)).to_contain_text("first", timeout=WAIT)
            expect(row(name)).to_contain_text("completed")  # its blocks (its state is the mesh's: joined again)
        expect(row(spare)).not_to_contain_text("first")  # the run did not use it
        page.reload()  # a page opened after the run reads the same from the snapshots
        expect(rows).to_have_count(3, timeout=WAIT)
        for name in matched:
            expect(row(name)).to_contain_text("first", timeout=WAIT)
        expect(row(spare)).to_contain_text(spare)
        expect(row(spare)).not_to_contain_text("first")
        page.screenshot(path=screenshots / "hosts-after-run.png")

        # so does a host's page
        page.goto(f"{web.url}#/hosts/{matched[0]}")
        page.reload()
        component = page.locator(".facts dt", has_text="component").locator("xpath=following-sibling::dd[1]")
        expect(component).to_have_text("first", timeout=WAIT)
        page.goto(f"{web.url}#/hosts/{spare}")
        expect(page.locator(".page-head h1")).to_have_text(spare, timeout=WAIT)
        expect(component).to_have_text("—")

        # a new run matches its hosts again: the first run's components are gone
        page.goto(f"{web.url}#/hosts")
        (again,) = _run(web, second)["second"]
        expect(row(again)).to_contain_text("second", timeout=WAIT)
        for name in {"local-1", "local-2", "local-3"} - {again}:
            expect(row(name)).not_to_contain_text("first", timeout=WAIT)
            expect(row(name)).not_to_contain_text("second")
