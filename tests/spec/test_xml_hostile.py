"""Hostile and broken XML: DTDs and entities are refused, and nothing but SpecError ever escapes."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from xmlspecs import FULL

from plush.errors import SpecError
from plush.spec.model import Project
from plush.spec.xmlreader import parse_xml

BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
]>
<plush><project name="&lol3;"/></plush>
"""

EXTERNAL = """<?xml version="1.0"?>
<!DOCTYPE plush [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<plush><project name="x">&xxe;</project></plush>
"""

EXTERNAL_DTD = """<?xml version="1.0"?>
<!DOCTYPE plush SYSTEM "http://example.invalid/plush.dtd">
<plush/>
"""

PARAMETER_ENTITY = """<?xml version="1.0"?>
<!DOCTYPE plush [<!ENTITY % p SYSTEM "http://example.invalid/x"> %p;]>
<plush/>
"""


@pytest.mark.parametrize("text", [BILLION_LAUGHS, EXTERNAL, EXTERNAL_DTD, PARAMETER_ENTITY])
def test_dtds_and_entities_are_refused(text: str) -> None:
    with pytest.raises(SpecError) as info:
        parse_xml(text, file="evil.xml")
    (problem,) = info.value.problems
    assert problem.message.startswith("refused XML")
    assert problem.line == 2  # the DOCTYPE line: refused before any entity is declared or expanded
    assert problem.hint is not None and "DTD" in problem.hint


def test_undeclared_entity_is_malformed() -> None:
    with pytest.raises(SpecError) as info:
        parse_xml('<plush><project name="&foo;"/></plush>')
    assert "undefined entity" in str(info.value)


def _parse_or_spec_error(data: str | bytes) -> None:
    try:
        result = parse_xml(data, file="fuzz.xml")
    except SpecError as exc:
        assert exc.problems
        assert all(p.file == "fuzz.xml" for p in exc.problems)
        str(exc)
    else:
        assert isinstance(result, Project)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_random_bytes_raise_only_spec_error(data: bytes) -> None:
    _parse_or_spec_error(data)


@settings(deadline=None)
@given(st.integers(min_value=0, max_value=len(FULL.rstrip()) - 1))
def test_truncated_spec_raises_spec_error(cut: int) -> None:
    with pytest.raises(SpecError):
        parse_xml(FULL[:cut], file="fuzz.xml")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(
            st.integers(min_value=0, max_value=len(FULL)),
            st.integers(min_value=0, max_value=8),
            st.text(alphabet='<>/="&; abcnmx019-', max_size=6),
        ),
        min_size=1,
        max_size=4,
    )
)
def test_mutated_spec_raises_only_spec_error(edits: list[tuple[int, int, str]]) -> None:
    text = FULL
    for at, length, replacement in edits:
        text = text[:at] + replacement + text[at + length :]
    _parse_or_spec_error(text)
    _parse_or_spec_error(text.encode("utf-8"))
