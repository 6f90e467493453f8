"""A host's phase (plush.controller.runstates.phase_of): the rule the web UI colours hosts by, and its store
applies to events (src/plush/web/static/js/store.js, checked against a real run in tests/web/test_web_store.py)."""

from __future__ import annotations

import pytest

from plush.controller.runstates import phase_of, run_states


@pytest.mark.parametrize(
    ("state", "ok", "blocks", "over", "phase"),
    [
        ("joined", None, {}, False, "idle"),
        ("running", None, {"/a/c/p": "started"}, False, "running"),
        ("running", None, {"/a/c/p": "completed"}, True, "idle"),  # the run stopped before the host finished
        ("done", True, {"/a/c/p": "completed"}, True, "done"),
        ("done", False, {"/a/c/p": "completed"}, False, "failed"),
        ("running", None, {"/a/c/p": "failed"}, False, "failed"),
        ("failed", None, {}, False, "failed"),
        ("replaced", None, {"/a/c/p": "started"}, False, "failed"),
    ],
)
def test_a_host_s_phase(state: str, ok: bool | None, blocks: dict[str, str], over: bool, phase: str) -> None:
    assert phase_of(state, ok, blocks, over) == phase


def test_before_any_run_there_is_no_host_and_the_latest_event_id() -> None:
    states = run_states(None, [])
    assert (states["event"], states["finished"], states["hosts"]) == (0, False, {})
