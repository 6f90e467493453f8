"""docs/howitworks.md, "Host lifecycle", is the table the code runs: same states (in order), same transitions
row for row, same declared no-ops."""

from __future__ import annotations

import itertools
import re
from pathlib import Path

from plush.controller.lifecycle import EVENTS, IGNORED, STATES, TRANSITIONS

DOC = Path(__file__).resolve().parents[2] / "docs" / "howitworks.md"


def section() -> str:
    text = DOC.read_text()
    start = text.index("## 8. Host lifecycle")
    end = text.find("\n## ", start + 1)
    return text[start : end if end >= 0 else len(text)]


def tables() -> list[list[list[str]]]:
    """Every Markdown table of the section: rows of cells (header and rule lines dropped)."""
    found: list[list[list[str]]] = []
    current: list[list[str]] | None = None
    for line in section().splitlines():
        if line.startswith("|"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if current is None:
                current = []
                found.append(current)
                continue  # the header
            if not set(line) <= set("|-: "):
                current.append(cells)
        else:
            current = None
    return found


def ticked(cell: str) -> list[str]:
    return re.findall(r"`([a-z_]+)`", cell)


def test_the_documented_states_are_exactly_the_table_states() -> None:
    states, _, _ = tables()
    assert [ticked(row[0])[0] for row in states] == list(STATES)
    assert all(row[1] for row in states), "every state says what it means"


def test_the_documented_transitions_are_exactly_the_code_transitions() -> None:
    _, transitions, _ = tables()
    documented = set()
    for row in transitions:
        froms, events, tos = ticked(row[0]), ticked(row[1]), ticked(row[2])
        assert froms and events and tos and row[3], row
        documented |= set(itertools.product(froms, events, tos))
    code = {(s, e, t) for (s, e), targets in TRANSITIONS.items() for t in targets}
    assert documented == code
    assert {e for _, e, _ in documented} == set(EVENTS)


def test_the_documented_no_ops_are_exactly_the_code_no_ops() -> None:
    _, _, ignored = tables()
    documented = {ticked(row[0])[0]: set(ticked(row[1])) for row in ignored}
    assert documented == {state: set(events) for state, events in IGNORED.items()}
