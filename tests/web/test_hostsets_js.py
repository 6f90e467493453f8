"""The web UI's host sets (src/plush/web/static/js/hostsets.js) agree with plush.resources.hostset.

Hypothesis draws host set texts (well-formed ones from a grammar, and noise from the characters that matter:
brackets, commas, dashes, digits, spaces of every kind, newlines) and lists of names (prefixes, zero-padded
numbers, suffixes, non-ASCII letters); the browser page runs the module on each (page.evaluate) and the answers
must be Python's: the names of a text in the same order, or the same error at the same fragment; the same
folded text of a list (or the same refusal); the same natural order. Digits are ASCII (the module's docstring
says why).
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st
from static_page import open_static

from plush.resources.hostset import HostSetError, expand, fold, natural_key

_CASES = settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

# the module's answers, as plain data
EXPAND = """async (text) => {
  const m = await import("/static/js/hostsets.js");
  try { return {names: m.expand(text)}; }
  catch (e) { if (!(e instanceof m.HostSetError)) throw e; return {reason: e.reason, fragment: e.fragment}; }
}"""
FOLD = """async (names) => {
  const m = await import("/static/js/hostsets.js");
  try { return {text: m.fold(names), sorted: m.naturalSort(names)}; }
  catch (e) { if (!(e instanceof m.HostSetError)) throw e; return {reason: e.reason, fragment: e.fragment}; }
}"""


@pytest.fixture
def js(page: Any) -> Any:
    return open_static(page)


def python_expand(text: str) -> dict[str, Any]:
    try:
        return {"names": expand(text)}
    except HostSetError as exc:
        return {"error": str(exc), "fragment": exc.fragment}


def same_error(js: dict[str, Any], py: dict[str, Any], text: str) -> bool:
    return "reason" in js and py["error"] == f"{js['reason']}: {js['fragment']!r} in host set {text!r}"


LETTERS = "abxyz-_.é中\U0001d4b3"
SPACES = " \t\n\x0b\x0c\r\x1c\x85\xa0\u2003\u3000\ufeff"
number = st.integers(0, 120).flatmap(lambda n: st.sampled_from([str(n), str(n).zfill(2), str(n).zfill(3)]))
bound = st.one_of(number, st.tuples(number, st.integers(0, 40)).map(lambda p: f"{p[0]}-{int(p[0]) + p[1]}"))
ranges = st.lists(bound, min_size=1, max_size=4).map(",".join)
word = st.text(LETTERS + "0123456789", max_size=5)
item = st.tuples(word, st.one_of(st.just(None), ranges), word).map(
    lambda t: t[0] + (f"[{t[1]}]" if t[1] is not None else "") + t[2]
)
pad = st.text(SPACES, max_size=2)
grammar = st.lists(st.tuples(pad, item, pad).map("".join), min_size=1, max_size=4).map(",".join)
noise = st.text("[]-,0123456789ab" + SPACES, max_size=14)


@given(text=st.one_of(grammar, noise))
@example(text="node[1-20]")
@example(text="node[08-11],web1, n[1\n-3]")
@example(text="n[0-1000000]")
@example(text="a,,b")
@example(text="n[3-1]")
@example(text="n[01-100]")
@_CASES
def test_expand_in_the_browser_is_python_s(js: Any, text: str) -> None:
    assume(not re.search(r"\d{5,}", text) or text == "n[0-1000000]")
    py = python_expand(text)
    assume(len(py.get("names", ())) <= 5000)
    answer = js.evaluate(EXPAND, text)
    if "names" in py:
        assert answer == {"names": py["names"]}
    else:
        assert answer["fragment"] == py["fragment"] and same_error(answer, py, text), (answer, py)


digits = st.integers(0, 130).flatmap(lambda n: st.sampled_from([str(n), str(n).zfill(2), str(n).zfill(4)]))
prefix = st.sampled_from(["local-", "n", "web", "rack1-n", "é", "\U0001d4b3", ""])
name = st.one_of(
    st.tuples(prefix, digits, st.sampled_from(["", "a", ".x"])).map("".join),
    st.text(LETTERS + "0123456789", min_size=1, max_size=6),
    st.text(LETTERS + "0123456789,[] \x0b", max_size=4),
)


@given(names=st.lists(name, max_size=30))
@example(names=["local-3", "local-4", "local-5", "local-9", "web1"])
@example(names=["n08", "n09", "n10", "n1", "n01", "n001"])
@example(names=["a\ue000", "a\U0001d4b3", "a"])
@_CASES
def test_fold_and_natural_order_in_the_browser_are_python_s(js: Any, names: list[str]) -> None:
    answer = js.evaluate(FOLD, names)
    try:
        text = fold(names)
    except HostSetError as exc:
        assert "reason" in answer and answer["fragment"] == exc.fragment, answer
        return
    assert answer == {"text": text, "sorted": sorted(names, key=natural_key)}
