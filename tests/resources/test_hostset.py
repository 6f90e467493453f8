"""Host sets: folding, expanding, parse errors, the HostSet value type, and round-trip properties."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from plush.errors import PlushError
from plush.resources.hostset import MAX_EXPAND, HostSet, HostSetError, expand, fold, natural_key


@pytest.mark.parametrize(
    ("names", "folded"),
    [
        (["local-3", "local-4", "local-5", "local-9", "web1"], "local-[3-5,9],web1"),
        (["node01", "node02", "node03"], "node[01-03]"),
        (["node08", "node09", "node10"], "node[08-10]"),
        (["n10", "n9", "n8", "n2"], "n[2,8-10]"),
        (["web1"], "web1"),
        (["alpha", "beta"], "alpha,beta"),
        (["n1", "n1", "n2"], "n[1-2]"),
        (["rack1-n3", "rack1-n4", "rack2-n3"], "rack1-n[3-4],rack2-n3"),
        (["n3.example.org", "n4.example.org"], "n[3-4].example.org"),
        (["n1", "n01"], "n[1,01]"),
        ([], ""),
    ],
)
def test_fold(names: list[str], folded: str) -> None:
    assert fold(names) == folded


def test_fold_sorts_naturally_across_patterns() -> None:
    assert fold(["web10", "db2", "web9", "app"]) == "app,db2,web[9-10]"


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("local-[3-5,9],web1", ["local-3", "local-4", "local-5", "local-9", "web1"]),
        ("node[01-03]", ["node01", "node02", "node03"]),
        ("node[08-10]", ["node08", "node09", "node10"]),
        ("n[1-2]x", ["n1x", "n2x"]),
        (" a , b ", ["a", "b"]),
        ("n[10,2]", ["n2", "n10"]),
        ("r[1-2]n[1-2]", ["r1n1", "r1n2", "r2n1", "r2n2"]),
        ("n[1-3],n2", ["n1", "n2", "n3"]),
        ("", []),
        ("web1", ["web1"]),
    ],
)
def test_expand(text: str, names: list[str]) -> None:
    assert expand(text) == names


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("n[1-x]", "1-x"),
        ("n[3-1]", "3-1"),
        ("n[1-3", "n[1-3"),
        ("n1-3]", "n1-3]"),
        ("n[[1]]", "n[[1]]"),
        ("a,,b", ""),
        ("n[]", "[]"),
        ("n[8-010]", "8-010"),
        ("n[1-2] x", "n[1-2] x"),
    ],
)
def test_parse_errors_keep_the_fragment(text: str, fragment: str) -> None:
    with pytest.raises(HostSetError) as info:
        HostSet.parse(text)
    assert info.value.text == text
    assert info.value.fragment == (fragment or ",")
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, PlushError)
    assert repr(info.value.fragment) in str(info.value)


def test_expansion_is_bounded() -> None:
    with pytest.raises(HostSetError, match="at most"):
        expand(f"n[0-{MAX_EXPAND}]")


@pytest.mark.parametrize("bad", ["", "a,b", "a b", "n[1]"])
def test_fold_refuses_names_it_cannot_write(bad: str) -> None:
    with pytest.raises(HostSetError):
        fold([bad])


def test_hostset_value_type() -> None:
    hs = HostSet.parse("local-[1-5]")
    assert len(hs) == 5
    assert "local-3" in hs
    assert "local-6" not in hs
    assert list(hs) == [f"local-{i}" for i in range(1, 6)]
    assert str(hs) == "local-[1-5]"
    assert repr(hs) == "HostSet('local-[1-5]')"
    assert hs == HostSet([f"local-{i}" for i in (5, 4, 3, 2, 1)])
    assert hash(hs) == hash(HostSet.parse("local-[1-5]"))
    assert hs.first() == "local-1"
    assert HostSet().first() is None
    assert not HostSet()


def test_hostset_set_operations_return_new_sets() -> None:
    a = HostSet.parse("n[1-5]")
    b = HostSet.parse("n[4-8],web")
    assert str(a | b) == "n[1-8],web"
    assert str(a - b) == "n[1-3]"
    assert str(a & b) == "n[4-5]"
    assert str(a.union(["x1"])) == "n[1-5],x1"
    assert str(a.difference(["n1", "n5"])) == "n[2-4]"
    assert str(a) == "n[1-5]"  # unchanged


def test_hostset_refuses_a_bare_string() -> None:
    with pytest.raises(TypeError):
        HostSet("n1")  # type: ignore[arg-type]


def test_natural_key_orders_numbers_by_value() -> None:
    names = ["n10", "n2", "n1", "m", "n01"]
    assert sorted(names, key=natural_key) == ["m", "n1", "n01", "n2", "n10"]


# --- properties -----------------------------------------------------------------------------------------

_digits = st.one_of(
    st.integers(0, 40).map(str),
    st.integers(0, 40).map(lambda n: str(n).zfill(2)),
    st.integers(0, 12).map(lambda n: str(n).zfill(3)),
)
_name = st.one_of(
    st.builds(
        lambda p, d, s: p + d + s,
        st.sampled_from(["n", "node", "local-", "rack1-n", "web", ""]),
        _digits,
        st.sampled_from(["", ".lan", "-ib", "x"]),
    ),
    st.text(alphabet="abcdefghij.-_", min_size=1, max_size=6),
)


@given(st.lists(_name, max_size=40))
def test_expand_inverts_fold(names: list[str]) -> None:
    assert expand(fold(names)) == sorted(set(names), key=natural_key)


@given(st.lists(_name, max_size=40))
def test_fold_is_canonical(names: list[str]) -> None:
    text = fold(names)
    assert fold(expand(text)) == text
    assert str(HostSet.parse(text)) == text


@given(st.lists(_name, max_size=20), st.lists(_name, max_size=20))
def test_set_operations_agree_with_python_sets(xs: list[str], ys: list[str]) -> None:
    a, b = HostSet(xs), HostSet(ys)
    assert set(a | b) == set(xs) | set(ys)
    assert set(a - b) == set(xs) - set(ys)
    assert set(a & b) == set(xs) & set(ys)
    assert len(a) == len(set(xs))
