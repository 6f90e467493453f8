"""Pool files are user input (and a discovery command's output is anybody's): no text makes a reader raise
anything but a PoolFileError whose every problem names the file and a line inside it; every host that comes
out has a name that is a safe single path component and never an option; each format round-trips."""

from __future__ import annotations

import json
import re
from xml.sax.saxutils import quoteattr

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from poolfiles import WRITERS, hosts, mutated, printable

from plush.resources.directory import parse_directory
from plush.resources.host import Host, property_value
from plush.resources.inventory import parse_host_json, parse_inventory
from plush.resources.poolentry import PoolFileError
from plush.resources.poolfile import parse_pool, pool_kind

SAFE_NAME = re.compile(r"\A[A-Za-z0-9_][A-Za-z0-9_.-]*\Z")
FILE = "pool.file"
KINDS = sorted(WRITERS)


def outcome(parse: object, text: str | bytes) -> list[Host] | None:
    """The hosts, or None after checking that the error is a clear one."""
    try:
        found = parse(text, file=FILE)  # type: ignore[operator]
    except PoolFileError as exc:
        raw = text if isinstance(text, str) else text.decode("latin-1")
        lines = len(re.findall("\r\n|[\r\n\x85\u2028\u2029]", raw)) + 1  # the line ends of YAML (and expat)
        for p in exc.problems:
            assert p.file == FILE and p.message
            assert p.line is not None and 1 <= p.line <= lines, (p, lines)
        return None
    hosts = found[1] if isinstance(found, tuple) else found
    assert isinstance(hosts, list)
    for h in hosts:
        assert SAFE_NAME.match(h.name) and h.name not in (".", ".."), h.name
        assert h.user is None or not h.user.startswith("-")
        assert h.port is None or 1 <= h.port <= 65535
    assert len({h.name for h in hosts}) == len(hosts)
    return hosts


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=300))
def test_any_text_is_hosts_or_a_clear_error(text: str) -> None:
    assert pool_kind(text) in (None, "directory", "inventory", "json")
    outcome(parse_pool, text)
    outcome(parse_directory, text)
    outcome(parse_inventory, text)
    outcome(parse_host_json, text)


@given(st.binary(max_size=200))
def test_any_bytes_are_hosts_or_a_clear_error(data: bytes) -> None:
    outcome(parse_pool, data)
    outcome(parse_directory, data)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(KINDS).flatmap(lambda kind: st.tuples(st.just(kind), mutated(kind))))
def test_damaged_pool_files_are_hosts_or_a_clear_error(case: tuple[str, str]) -> None:
    kind, text = case
    outcome(parse_pool, text)
    parse = {"directory": parse_directory, "inventory": parse_inventory, "json": parse_host_json}[kind]
    outcome(parse, text)


hostile_values = st.text(max_size=30) | st.sampled_from(
    ["../x", "-oProxyCommand=x", "a/b", ".", "..", "n[1-3]", "n[01-2]:0", "x:65536", "::1", "a b", "a,,b", "[]"]
)


@settings(max_examples=300)
@given(
    st.dictionaries(
        hostile_values,
        hostile_values | st.integers() | st.floats() | st.booleans() | st.none() | st.lists(st.integers(), max_size=2),
        max_size=5,
    ),
    hostile_values,
)
def test_hostile_entries_in_a_json_host_list(extra: dict[str, object], hostname: str) -> None:
    entry = {**extra, "hostname": hostname, "type": "local"}
    text = json.dumps([entry], indent=1, allow_nan=True)
    hosts = outcome(parse_host_json, text)
    if hosts is not None:
        assert all(h.provider == "local" and h.address == "127.0.0.1" for h in hosts)


@given(st.sampled_from(KINDS), hosts())
def test_each_format_round_trips(kind: str, expected: list[Host]) -> None:
    text = WRITERS[kind](expected)
    assert pool_kind(text) == kind
    found, hosts_read = parse_pool(text, file=FILE)
    assert found == kind
    assert hosts_read == expected


@given(printable)
def test_text_values_are_kept_exactly_in_every_format(value: str) -> None:
    xml = f"<plush><resource_manager type='local'><node hostname='a' v={quoteattr(value)}/></resource_manager></plush>"
    yaml = f"defaults: {{type: local}}\nhosts:\n  - hostname: a\n    v: {json.dumps(value, ensure_ascii=False)}\n"
    js = json.dumps([{"hostname": "a", "type": "local", "v": value}])
    cases = ((parse_directory, xml), (parse_inventory, yaml), (parse_host_json, js))
    assert {parse(text)[0].get("v") for parse, text in cases} == {property_value(value)}
