"""Block paths: parse and print round-trip; a bad path's error keeps the offending fragment."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import names

from plush.spec.paths import BlockPath, BlockPathError, check_name


@settings(deadline=None)
@given(st.lists(names, max_size=5))
def test_parse_print_round_trip(parts: list[str]) -> None:
    path = BlockPath(tuple(parts))
    assert BlockPath.parse(str(path)) == path
    assert str(BlockPath.parse(str(path))) == str(path)


def test_navigation() -> None:
    p = BlockPath.parse("/app/senders/join/")
    assert str(p) == "/app/senders/join"
    assert p.name == "join" and str(p.parent) == "/app/senders"
    assert p.is_under(BlockPath.of("app")) and not BlockPath.of("app").is_under(p)
    assert BlockPath.of("app") / "senders" == p.parent


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("app/cb", "app/cb"),
        ("/app//cb", "//"),
        ("/app/bad name/x", "bad name"),
        ("/app/../etc", ".."),
        ("/app/-x", "-x"),
    ],
)
def test_bad_paths_keep_the_fragment(text: str, fragment: str) -> None:
    with pytest.raises(BlockPathError) as info:
        BlockPath.parse(text)
    assert info.value.fragment == fragment
    assert info.value.text == text
    assert repr(fragment) in str(info.value)


def test_constructing_with_a_bad_segment_fails() -> None:
    with pytest.raises(BlockPathError) as info:
        BlockPath.of("app", "a/b")
    assert info.value.fragment == "a/b"
    assert not check_name("") and not check_name(".") and check_name("a.b+c@d:e-f")
