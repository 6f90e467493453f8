"""The host model and the pool (pure)."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from plush.resources.host import Host, Pool, property_env, property_value


def test_property_values_are_numbers_when_finite_numbers_else_text() -> None:
    assert property_value("2400") == 2400.0
    assert property_value("-1.5") == -1.5
    assert property_value("ucsd") == "ucsd"
    assert property_value("nan") == "nan"
    assert property_value("inf") == "inf"


@given(st.text())
def test_property_value_never_raises_and_numbers_are_finite(text: str) -> None:
    value = property_value(text)
    assert value == text or (isinstance(value, float) and value == value and abs(value) != float("inf"))


def test_a_host_is_immutable_with_read_only_properties() -> None:
    props = {"cpu_mhz": 2400.0}
    host = Host("n1", "10.0.0.1", properties=props)
    props["cpu_mhz"] = 1.0  # the caller's dict is copied
    assert host.get("cpu_mhz") == 2400.0 and host.get("site") is None
    with pytest.raises(TypeError):
        host.properties["x"] = 1.0  # type: ignore[index]
    with pytest.raises(AttributeError):
        host.name = "n2"  # type: ignore[misc]
    with pytest.raises(ValueError, match="name"):
        Host("", "10.0.0.1")


def test_a_pool_keeps_order_replaces_by_name_and_selects_groups() -> None:
    pool = Pool([Host("a", "1", group="g"), Host("b", "2"), Host("c", "3", group="g")])
    pool.add(Host("b", "22", group="g"))
    assert pool.names() == ["a", "b", "c"] and len(pool) == 3 and "b" in pool
    assert pool.get("b") == Host("b", "22", group="g")
    assert [h.name for h in pool.in_group("g")] == ["a", "b", "c"]
    assert [h.name for h in pool.in_group(None)] == ["a", "b", "c"]
    assert pool.remove("a") is not None and pool.remove("a") is None
    assert [h.name for h in pool] == ["b", "c"]


def test_host_properties_become_process_variables_with_modelnet_names() -> None:
    host = Host(
        "ucsd1", "127.0.0.1", properties={"vip": "10.0.0.1", "vn": 1.0, "site": "ucsd", "lat": 32.88, "cpu-mhz": 2400.0}
    )
    assert property_env(host.properties) == {
        "PLUSH_PROP_VIP": "10.0.0.1",
        "PLUSH_VIP": "10.0.0.1",
        "PLUSH_PROP_VN": "1",
        "PLUSH_VN": "1",
        "PLUSH_PROP_SITE": "ucsd",
        "PLUSH_PROP_LAT": "32.88",
        "PLUSH_PROP_CPU_MHZ": "2400",
    }


@given(st.dictionaries(st.text(min_size=1), st.one_of(st.text(), st.floats(allow_nan=False, allow_infinity=False))))
def test_any_property_name_gives_a_plain_variable_name(props: dict[str, str | float]) -> None:
    env = property_env(props)
    for var, value in env.items():
        assert re.fullmatch(r"PLUSH_(PROP_[A-Z0-9_]*|VIP|VN)", var), var
        assert isinstance(value, str)
    assert len([v for v in env if v.startswith("PLUSH_PROP_")]) <= len(props)
