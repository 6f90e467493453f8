#!/usr/bin/env python3
"""Writes the web UI's pictures of the docs, ``docs/images/*.png``, from a demo run against a real ``plush serve``.

Run by hand from the repository (Debian's ``/usr/bin/chromium`` and the ``playwright`` package of the dev
dependencies, as the browser tests use them); its output is committed:

    .venv/bin/python tools/web_screenshots.py [--out docs/images] [--keep]

What it does, everything in a temporary directory (the serve's state, token, cache, runs; ``--keep`` keeps it
and prints where): writes a pool file of 40 local sandbox hosts, 36 of them with a site and ``lat``/``lon``
(docs/pools.md), and a spec ``sweep`` (4 servers, 24 clients: fetch, a shared barrier ``ready``, measure for a
few seconds, one client failing once and restarted by its exit policy, a shared barrier ``finished``); starts
``plush serve -d POOL --http 127.0.0.1:0``; signs a headless Chromium in (1400x900) and, through the UI
where a user would, loads the spec and runs it, then takes:

- ``application.png``: the application view mid-run (clients measuring, servers waiting at ``finished``);
- ``resources.png``: the resource view after one client was marked failed and a spare took its place;
- ``world.png``: the world view at the run's end (done, failed, the spares idle);
- ``hosts.png``: the host view, a host set selected and a command's output folded by host set;
- ``host-page.png``: a client's page with its ``measure`` log open;
- ``run.png``: the run's page, its report and timeline in view;
- ``report-html.png``: the run's ``report.html`` opened from its file.

Only viewport-sized shots (no full-page ones: the sticky header would be drawn mid-page, and the files stay
small). Waits are Playwright's ``wait_for``/``expect``; the deadline of each is generous. Stdlib + playwright.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from playwright.sync_api import expect, sync_playwright

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
WAIT = 60_000  # ms

#: (host set, site, lat, lon): 36 hosts on 11 sites; lab[1-4] have no coordinates
SITES = [
    ("ucsd[1-4]", "ucsd", 32.88, -117.24),
    ("uw[1-3]", "uw", 47.65, -122.31),
    ("mit[1-4]", "mit", 42.36, -71.09),
    ("usp[1-3]", "usp", -23.56, -46.73),
    ("ucl[1-3]", "ucl", 51.52, -0.13),
    ("epfl[1-4]", "epfl", 46.52, 6.57),
    ("uct[1-2]", "uct", -33.96, 18.46),
    ("iitb[1-3]", "iitb", 19.13, 72.92),
    ("nus[1-3]", "nus", 1.30, 103.77),
    ("tokyo[1-4]", "tokyo", 35.71, 139.76),
    ("unsw[1-3]", "unsw", -33.92, 151.23),
]

POOL_END = """    <node hostname="lab[1-4]" group="lab" cpu_mhz="2400"/>
  </resource_manager>
</plush>
"""

SPEC = r"""# The demo of the web UI's pictures (tools/web_screenshots.py): 4 servers index, 24 clients measure.
project: sweep

components:
  servers:
    hosts: 4
  clients:
    hosts: 24

application:
  execution:
    servers:
      blocks:
        - process: index
          run: [sh, -c, 'sleep 1; echo "$PLUSH_HOST: index of 2048 objects built"']
        - barrier: ready
          after: [index]
        - process: serve
          after: [ready]
          run: [sh, -c, 'echo "$PLUSH_HOST: serving"; sleep 4; echo "$PLUSH_HOST: 12480 requests served"']
        - barrier: finished
          after: [serve]

    clients:
      blocks:
        - process: fetch
          run:
            - python3
            - -c
            - |
              import os, time
              i = int(os.environ["PLUSH_HOST_INDEX"])
              time.sleep(0.5 + i % 3 * 0.4)
              print(os.environ["PLUSH_HOST"], "fetched", 40 + 7 * i, "MB")
        - barrier: ready
          after: [fetch]
        - process: measure
          after: [ready]
          run:
            - python3
            - -c
            - |
              import os, sys, time
              host, i = os.environ["PLUSH_HOST"], int(os.environ["PLUSH_HOST_INDEX"])
              if i == 5 and not os.path.exists("tried"):
                  open("tried", "w").close()
                  time.sleep(1)
                  sys.exit("measure: connection reset by the server (attempt 1)")
              for second in range(4 + i % 5 * 2):
                  print("%s t=%02d rtt=%.1f ms" % (host, second, 20 + (i * 7 + second * 3) % 40))
                  sys.stdout.flush()
                  time.sleep(1)
              print(host, "done")
          exit:
            - {code: 1, action: restart_process, max_restarts: 2}
        - barrier: finished
          after: [measure]
        - process: summarise
          after: [finished]
          run: [sh, -c, 'echo "$PLUSH_HOST: summary written"']
"""


def pool_text() -> str:
    lines = ['<?xml version="1.0"?>', "<plush>", '  <resource_manager type="local">']
    for hosts, site, lat, lon in SITES:
        lines.append(f'    <node hostname="{hosts}" group="testbed" site="{site}" lat="{lat}" lon="{lon}"/>')
    return "\n".join(lines) + "\n" + POOL_END


class Serve:
    """``plush serve -d POOL --http 127.0.0.1:0`` in ``tmp/served``, its environment's XDG dirs in ``tmp``."""

    def __init__(self, tmp: Path, pool: Path) -> None:
        self.cwd = tmp / "served"
        self.cwd.mkdir()
        self.env = dict(os.environ)
        for var in ("XDG_CONFIG_HOME", "XDG_STATE_HOME", "XDG_RUNTIME_DIR", "XDG_CACHE_HOME"):
            path = tmp / var.lower()
            path.mkdir(mode=0o700)
            self.env[var] = str(path)
        for var in [v for v in self.env if v.startswith("PLUSH_")]:
            del self.env[var]
        self.runs = tmp / "runs"
        argv = [sys.executable, "-m", "plush", "serve", "-d", str(pool), "--name", "demo", "--runs-dir", str(self.runs)]
        self.err = self.cwd / "serve.err"
        with open(self.err, "w") as err:
            self.process = subprocess.Popen(
                [*argv, "--http", "127.0.0.1:0"],
                cwd=self.cwd,
                env=self.env,
                stdout=subprocess.DEVNULL,
                stderr=err,
                start_new_session=True,
            )
        deadline = time.monotonic() + 120
        while "hosts connected" not in self.err.read_text():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"plush serve did not start:\n{self.err.read_text()}")
            time.sleep(0.1)
        found = re.search(r"web UI at (http\S+?)/?\s", self.err.read_text())
        if not found:
            raise SystemExit(f"plush serve has no web UI:\n{self.err.read_text()}")
        self.url = found.group(1).rstrip("/") + "/"
        token = subprocess.run(
            [sys.executable, "-m", "plush", "serve", "--show-token"],
            cwd=self.cwd,
            env=self.env,
            capture_output=True,
            text=True,
            check=True,
        )
        self.token = token.stdout.strip()

    def api(self, method: str, path: str, body: Any = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        assert self.url.startswith("http://127.0.0.1:")
        request = urllib.request.Request(self.url.rstrip("/") + path, data=data, method=method)  # noqa: S310
        request.add_header("Authorization", f"Bearer {self.token}")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310 (http://127.0.0.1 only)
            return json.loads(answer.read() or b"null")

    def close(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


def wait_until(condition: Any, what: str, timeout: float = 120) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.1)
    return value


def shoot(page: Any, out: Path, name: str) -> None:
    page.mouse.move(1, 899)  # no hover effect or tooltip left over
    path = out / name
    page.screenshot(path=path)
    print(f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}: {path.stat().st_size // 1024} KiB")


def demo(serve: Serve, tmp: Path, out: Path, browser: Any) -> None:
    spec = tmp / "sweep.yaml"
    spec.write_text(SPEC)
    page = browser.pages[0] if browser.pages else browser.new_page()
    page.goto(f"{serve.url}?token={serve.token}")
    page.wait_for_selector("main#view > section", timeout=WAIT)

    # load and run from the application view
    page.goto(serve.url + "#/application")
    page.get_by_test_id("spec-path").fill(str(spec))
    page.get_by_test_id("load-path").click()
    expect(page.locator(".pl-app-title")).to_have_text("sweep", timeout=WAIT)
    page.get_by_test_id("run").click()
    expect(page.get_by_test_id("run-state")).to_contain_text("running", timeout=WAIT)

    # mid-run: some clients done measuring (waiting at `finished`), most still measuring
    measure = page.locator('.pl-block[data-block="/sweep/clients/measure"] .pl-counts')
    expect(measure).to_contain_text(re.compile(r"running · [3-9] done"), timeout=WAIT)
    page.locator('.pl-block[data-block="/sweep/clients/measure"]').click()
    shoot(page, out, "application.png")

    # a client still measuring is marked failed: a spare takes its place
    clients = serve.api("GET", "/v1/application")["run"]["hosts"]["clients"]
    victim = clients[-1]
    serve.api("POST", f"/v1/hosts/{victim}/fail")
    page.get_by_role("link", name="Resources").click()
    expect(page.get_by_test_id("section-replaced")).to_contain_text(victim, timeout=WAIT)
    page.locator('.pl-comp-row[data-component="servers"]').click()
    shoot(page, out, "resources.png")

    wait_until(lambda: not serve.api("GET", "/v1/runs/current")["running"], "the run's end")
    run = serve.api("GET", "/v1/runs/current")["last"]["run"]

    # the world view at the end: the run's hosts done, the failed one red, the spares idle
    page.get_by_role("link", name="World").click()
    expect(page.get_by_test_id("world-legend")).to_contain_text("28 done", timeout=WAIT)
    shoot(page, out, "world.png")

    # the host view: a host set, its hosts selected, a command folded by host set
    page.get_by_role("link", name="Hosts").click()
    page.fill("input.filter", "mit[1-4],epfl[1-4],tokyo[1-4],lab[1-4]")
    expect(page.locator(".counts")).to_contain_text("16 shown", timeout=WAIT)
    page.get_by_role("button", name="Select all shown").click()
    page.fill("input.command", 'echo "$PLUSH_HOST: $(uname -s -m), $(id -un)"')
    page.get_by_role("button", name="Run on 16 hosts").click()
    expect(page.locator(".exec-summary[data-state=done]")).to_be_visible(timeout=WAIT)
    shoot(page, out, "hosts.png")

    # a client's page, its measure log open
    host = clients[2]
    page.goto(f"{serve.url}#/hosts/{host}")
    logs = page.locator(".logs-table")
    expect(logs.locator("tr", has_text="measure")).to_be_visible(timeout=WAIT)
    logs.locator("tr", has_text="measure").get_by_role("button", name="stdout").click()
    expect(page.locator(".log-view")).to_have_attribute("data-state", "done", timeout=WAIT)
    shoot(page, out, "host-page.png")

    # the run's page: its report, then its timeline in view
    page.goto(f"{serve.url}#/runs/{run}")
    chart = page.locator(".timeline-box .plush-timeline")
    expect(chart).to_be_visible(timeout=WAIT)
    expect(page.locator(".report")).to_be_visible(timeout=WAIT)
    page.locator(".report").scroll_into_view_if_needed()
    page.evaluate("window.scrollTo(0, document.querySelector('.report').closest('section').offsetTop - 70)")
    shoot(page, out, "run.png")

    # report.html, from its file
    report = serve.runs / run / "report.html"
    page.goto(report.as_uri())
    page.wait_for_selector(".plush-timeline canvas", timeout=WAIT)
    shoot(page, out, "report-html.png")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images", help="where the PNGs go")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (its path is printed)")
    args = parser.parse_args()
    if not Path(CHROMIUM).exists():
        raise SystemExit(f"{CHROMIUM} is missing: apt-get install chromium")
    args.out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="plush-screenshots-"))
    serve = None
    try:
        pool = tmp / "pool.xml"
        pool.write_text(pool_text())
        serve = Serve(tmp, pool)
        with sync_playwright() as driver:
            browser = driver.chromium.launch_persistent_context(
                str(tmp / "chromium-profile"),
                executable_path=CHROMIUM,
                headless=True,
                args=["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"],
                viewport={"width": 1400, "height": 900},
            )
            try:
                demo(serve, tmp, args.out, browser)
            finally:
                browser.close()
    finally:
        if serve is not None:
            serve.close()
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
