"""The store's refreshes asked for by events are coalesced: a burst of events that each want a part of the state
read again (500 hosts arriving at a barrier: 500 ``barrier.arrived``) makes one request of that part, and one
more after it for what came meanwhile, never one per event."""

from __future__ import annotations

import json
from typing import Any

from static_page import ORIGIN, open_static

BURST = """async (n) => {
    const { store } = await import('/static/js/store.js');
    for (let i = 0; i < n; i++) store._later('barriers');
    while (store._pending.size) await new Promise((ok) => setTimeout(ok, 10));
    return store.barriers;
}"""


def test_a_burst_of_events_that_ask_for_the_barriers_makes_two_requests_not_one_per_event(page: Any) -> None:
    open_static(page)
    asked: list[str] = []
    answer = [{"name": "gate", "expected": 500, "arrived": 500}]

    def barriers(route: Any) -> None:
        asked.append(route.request.url)
        route.fulfill(status=200, body=json.dumps(answer), headers={"Content-Type": "application/json"})

    page.route(f"{ORIGIN}/v1/barriers", barriers)
    assert page.evaluate(BURST, 500) == answer
    assert len(asked) == 2
