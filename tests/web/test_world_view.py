"""The world view in a real browser against a real ``plush serve --http`` whose pool file gives most hosts
``lat``/``lon`` (docs/pools.md): they are drawn on the outline, one mark per place, coloured by phase (a run
turns them done); the hosts without coordinates are listed beside the map. Screenshot: world.png."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from playwright.sync_api import expect
from web_support import WAIT, page_errors, sign_in, web_served

#: the pool: hosts of a directory file's fields (docs/pools.md), added over the API (``served`` connects
#: ``--hosts`` sandbox hosts, and a serve takes -d or --hosts, not both): local-1 has no coordinates
POOL = [
    ("ucsd1", "ucsd", 32.88, -117.24),
    ("ucsd2", "ucsd", 32.88, -117.24),
    ("mit1", "mit", 42.36, -71.09),
    ("epfl1", "epfl", 46.52, 6.57),
    ("epfl2", "epfl", 46.52, 6.57),
    ("tokyo1", "tokyo", 35.71, 139.76),
]


def at(box: dict[str, float], lat: float, lon: float) -> tuple[float, float]:
    """Where the view draws (lat, lon): equirectangular, latitudes 84 to -58 (world.js's frame)."""
    scale = min(box["width"] / 360, box["height"] / 142)
    x0, y0 = (box["width"] - 360 * scale) / 2, (box["height"] - 142 * scale) / 2
    return box["x"] + x0 + (lon + 180) * scale, box["y"] + y0 + (84 - lat) * scale


#: every host of the pool echoes once
HELLO = """<plush><project name="hello">
  <component name="all"><rspec><num_hosts>7</num_hosts></rspec></component>
  <application_block name="hello"><execution><component_block name="all"><component name="all"/>
    <process_block name="hi">
      <process name="hi"><path>echo</path><cmdline><arg>hi</arg></cmdline></process>
    </process_block>
  </component_block></execution></application_block>
</project></plush>
"""


def test_the_world_view_places_hosts_by_lat_lon_and_lists_the_others(
    page: Any, tmp_path: Path, screenshots: Path
) -> None:
    spec = tmp_path / "hello.xml"
    spec.write_text(HELLO)
    with web_served(tmp_path, hosts=1) as web:
        for name, site, lat, lon in POOL:
            fields = {"site": site, "lat": str(lat), "lon": str(lon)}  # as a pool file has them: text
            web.api("POST", "/v1/hosts", {"hostname": name, "type": "local", "properties": fields, "connect": True})
        sign_in(page, web)
        page.goto(web.url + "#/world")
        world = page.get_by_test_id("world-map")
        expect(world).to_have_attribute("data-places", "4", timeout=WAIT)  # ucsd, mit, epfl, tokyo
        expect(page.get_by_test_id("placed")).to_have_text("6 on the map")
        side = page.get_by_test_id("no-coordinates")
        expect(side).to_contain_text("Without coordinates: 1")
        expect(side).to_contain_text("local-1")
        expect(page.get_by_test_id("world-legend")).to_contain_text("7 idle")

        web.api("PUT", "/v1/application", {"path": str(spec)})
        web.api("POST", "/v1/runs", {})
        expect(page.get_by_test_id("world-legend")).to_contain_text("7 done", timeout=WAIT)
        # the tooltip of a place: its site, its hosts and their states
        page.mouse.move(*at(world.bounding_box(), 46.52, 6.57))
        expect(page.locator(".pl-tip")).to_contain_text("epfl", timeout=WAIT)
        expect(page.locator(".pl-tip")).to_contain_text("2 done")
        page.screenshot(path=screenshots / "world.png")
        assert not page_errors(page), page.console_lines


def test_close_places_keep_their_dots_and_tooltips_and_their_labels_never_overlap(
    page: Any, tmp_path: Path, screenshots: Path
) -> None:
    close = [("tokyo", 35.71, 139.76, 3), ("seoul", 37.57, 126.98, 1), ("osaka", 34.69, 135.50, 2)]
    with web_served(tmp_path, hosts=1) as web:
        for site, lat, lon, n in close:
            for i in range(1, n + 1):
                fields = {"site": f"{site}-university", "lat": str(lat), "lon": str(lon)}
                web.api("POST", "/v1/hosts", {"hostname": f"{site}{i}", "type": "local", "properties": fields})
        sign_in(page, web)
        page.goto(web.url + "#/world")
        world = page.get_by_test_id("world-map")
        expect(world).to_have_attribute("data-places", "3", timeout=WAIT)  # every place keeps its dot
        labels = page.locator(".pl-place-label")
        expect(labels.first).to_have_text("tokyo-university 3", timeout=WAIT)  # the biggest place first
        boxes = [labels.nth(i).bounding_box() for i in range(labels.count())]
        assert 1 <= len(boxes) <= 3
        for i, a in enumerate(boxes):
            for b in boxes[i + 1 :]:
                apart = (
                    a["x"] + a["width"] <= b["x"]
                    or b["x"] + b["width"] <= a["x"]
                    or a["y"] + a["height"] <= b["y"]
                    or b["y"] + b["height"] <= a["y"]
                )
                assert apart, (a, b)
        for site, lat, lon, n in close:  # each place's tooltip, labelled or not
            page.mouse.move(*at(world.bounding_box(), lat, lon))
            expect(page.locator(".pl-tip")).to_contain_text(f"{site}-university", timeout=WAIT)
            expect(page.locator(".pl-tip")).to_contain_text(f"{n} idle")
        page.screenshot(path=screenshots / "world-close.png")
        assert not page_errors(page), page.console_lines
