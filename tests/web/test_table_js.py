"""The host and run views' widgets in Chromium, without a server (tests/web/static_page.py):

- js/vtable.js at 5,000 rows: only the rows in view are in the DOM (also after scrolling to the end); a header
  click sorts; click, shift-click and ctrl-click select as file managers do; "select all" takes the rows the
  filter shows; replacing every row keeps the selection of the keys still there; a burst of updates is drawn
  once per animation frame;
- js/execfold.js: an exec answer folded by outcome and output, a timed-out host and the unreachable hosts (per
  reason) in groups of their own.
"""

from __future__ import annotations

import base64
from typing import Any

from static_page import open_static

TABLE = """async (count) => {
  const css = document.createElement("link");
  css.rel = "stylesheet";
  css.href = "/static/views-hosts-runs.css";
  await new Promise((done) => { css.onload = done; document.head.append(css); });
  const { createTable } = await import("/static/js/vtable.js");
  const box = document.getElementById("box");
  box.style.height = "600px";
  const rows = (n, tag) => Array.from({ length: n }, (_, i) => ({ name: `n${i + 1}`, load: (i * 7) % 13, tag }));
  let draws = 0;
  const table = createTable(box, {
    columns: [
      { id: "name", title: "Name", value: (r) => r.name, text: (r) => r.name },
      { id: "load", title: "Load", value: (r) => r.load, text: (r) => String(r.load) },
    ],
    key: (r) => r.name,
    rowHeight: 30,
    onRender: () => { draws += 1; },
  });
  window.t = { table, rows, draws: () => draws };
  table.setRows(rows(count, "a"));
}"""

SHOWN = """() => [...document.querySelectorAll('.vt-row:not([hidden])')]
    .sort((a, b) => a.dataset.index - b.dataset.index).map((r) => r.dataset.key)"""
#: a burst of 50 updates in one task, and the draws it made once two frames passed (the table settled first)
BURST = """async () => {
  const frames = () => new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done)));
  await frames();
  const before = t.draws();
  for (let i = 0; i < 50; i += 1) t.table.setRows(t.rows(4000, String(i)));
  await frames();
  return t.draws() - before;
}"""


def shown(page: Any) -> list[str]:
    """The names of the rows in the DOM, top to bottom."""
    return list(page.evaluate(SHOWN))


def wait_shown(page: Any, condition: str, arg: Any = None) -> list[str]:
    """Wait until the rows in the DOM (``names``, top to bottom) meet ``condition`` (a JS expression of
    ``names`` and ``arg``): the table draws in an animation frame, after a scroll event, which need not come
    within any given number of frames; the rows then."""
    page.wait_for_function(f"([arg]) => {{ const names = ({SHOWN})(); return {condition}; }}", arg=[arg])
    return shown(page)


def selected(page: Any) -> list[str]:
    return sorted(page.evaluate("() => t.table.selected()"), key=lambda n: int(n[1:]))


def row(page: Any, name: str) -> Any:
    return page.locator(f".vt-row[data-key={name}] .vt-cell[data-col=load]")


def test_the_table_draws_only_the_rows_in_view_sorts_and_selects_like_a_file_manager(page: Any) -> None:
    open_static(page)
    page.evaluate(TABLE, 5000)
    names = wait_shown(page, "names.length > 0")
    assert names[0] == "n1" and 20 <= len(names) <= 40
    assert page.locator(".vt-row").count() <= 40

    page.evaluate("() => { document.querySelector('.vt-body').scrollTop = 1e9; }")
    names = wait_shown(page, "names.includes('n5000')")
    assert names[-1] == "n5000" and len(names) <= 40

    page.evaluate("() => { document.querySelector('.vt-body').scrollTop = 0; }")
    wait_shown(page, "names.includes('n1')")
    page.locator(".vt-th[data-col=load]").click()
    loads = page.evaluate("() => t.table.shown().slice(0, 400).map((r) => r.load)")
    assert loads == sorted(loads) and loads[0] == 0
    page.locator(".vt-th[data-col=name]").click()  # by name: n1, n2, ..., n10 (natural order)
    first = [f"n{i}" for i in range(1, 12)]
    assert wait_shown(page, "JSON.stringify(names.slice(0, 11)) === JSON.stringify(arg)", first)[:11] == first

    row(page, "n3").click()
    row(page, "n7").click(modifiers=["Shift"])
    assert selected(page) == ["n3", "n4", "n5", "n6", "n7"]
    row(page, "n5").click(modifiers=["Control"])
    row(page, "n10").click(modifiers=["Control"])
    assert selected(page) == ["n3", "n4", "n6", "n7", "n10"]
    page.wait_for_function("() => document.querySelectorAll('.vt-row.selected').length === 5")
    row(page, "n2").click()
    assert selected(page) == ["n2"]

    # select what the filter shows; every row replaced: the keys still there stay selected
    page.evaluate("() => t.table.setFilter((r) => r.load === 0)")
    page.locator(".vt-all").check()
    zero = [f"n{i}" for i in range(1, 5001) if (i - 1) * 7 % 13 == 0]
    assert selected(page) == sorted({"n2", *zero}, key=lambda n: int(n[1:]))
    page.evaluate("() => { t.table.setFilter(null); t.table.setRows(t.rows(4000, 'b')); }")
    assert selected(page) == sorted({"n2", *(n for n in zero if int(n[1:]) <= 4000)}, key=lambda n: int(n[1:]))

    # a burst of updates in one frame is one draw
    assert page.evaluate(BURST) == 1
    assert page.console_lines == []


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def test_an_exec_answer_folds_by_outcome_and_output_and_shows_timeouts_and_unreachable_hosts(page: Any) -> None:
    open_static(page)

    def result(out: str, code: int | None = 0, signal: int | None = None, timed_out: bool = False) -> dict[str, Any]:
        return {
            "code": code,
            "signal": signal,
            "stdout": b64(out),
            "stderr": "",
            "truncated": False,
            "timed_out": timed_out,
            "duration": 0.1,
        }

    answer = {
        "hosts": [f"n{i}" for i in range(1, 10)],
        "results": {
            "n1": result("same\n"),
            "n2": result("same\n"),
            "n4": result("same\n"),
            "n3": result("I am n3 at 10.0.0.3\n"),
            "n5": result("I am n5 at 10.0.0.5\n"),
            "n6": result("same\n", code=1),
            "n7": result("partial\n", code=None, timed_out=True),
            "n10": result("", code=None, signal=9),
        },
        "timed_out": ["n7"],
        "unreachable": ["n8", "n9"],
        "reasons": {"n8": "connection lost", "n9": "connection lost"},
        "timeout": 5.0,
        "duration": 5.1,
        "status": 255,
    }
    groups = page.evaluate(
        """async (answer) => {
            const m = await import("/static/js/execfold.js");
            const addresses = new Map([["n3", "10.0.0.3"], ["n5", "10.0.0.5"]]);
            return m.foldExec(answer, addresses).map((g) => [g.hostset, g.kind, g.text, g.stdout, g.marks]);
        }""",
        answer,
    )
    assert groups == [
        ["n[1-2,4]", "ok", "exit 0", "same\n", []],
        ["n[3,5]", "ok", "exit 0", "I am {host} at {address}\n", ["host", "address"]],
        ["n6", "failed", "exit 1", "same\n", []],
        ["n7", "timeout", "timed out after 5s", "partial\n", []],
        ["n10", "failed", "killed by signal 9", "", []],
        ["n[8-9]", "unreachable", "unreachable: connection lost", "", []],
    ]
