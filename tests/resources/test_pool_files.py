"""Pool files, format by format: the Plush directory (XML), the YAML inventory, the JSON host list, the rules
they share, the kind told by content, and the examples in examples/pools/."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from plush.resources.directory import parse_directory
from plush.resources.host import Host
from plush.resources.inventory import parse_host_json, parse_inventory
from plush.resources.poolentry import FIELDS, MAX_POOL_HOSTS, RESERVED, TYPES, PoolFileError
from plush.resources.poolfile import parse_pool, pool_kind, read_pool

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"


def problems(exc: pytest.ExceptionInfo[PoolFileError]) -> list[str]:
    return [str(p) for p in exc.value.problems]


# --- the directory (XML) ---------------------------------------------------------------------------------

DIRECTORY = """<?xml version="1.0"?>
<plush>
  <resource_manager type="local">
    <node hostname="planetlab1.ucsd.edu:15000" user="alice" group="lab" cpu_mhz="2400" mem_mb="8192"
          site="ucsd" lat="32.88" lon="-117.24" vip="10.0.0.1" vn="1"/>
    <node hostname="n[1-2]"/>
  </resource_manager>
</plush>
"""


def test_directory_entries_become_hosts_with_every_attribute_a_property() -> None:
    hosts = parse_directory(DIRECTORY, file="d.xml")
    assert [h.name for h in hosts] == ["planetlab1.ucsd.edu", "n1", "n2"]
    first = hosts[0]
    assert first == Host(
        "planetlab1.ucsd.edu",
        "127.0.0.1",  # type local: a sandbox host on this machine, whatever its name
        "local",
        15000,
        "alice",
        "lab",
        {
            "cpu_mhz": 2400.0,
            "mem_mb": 8192.0,
            "site": "ucsd",
            "lat": 32.88,
            "lon": -117.24,
            "vip": "10.0.0.1",
            "vn": 1.0,
        },
    )
    assert hosts[1] == Host("n1", "127.0.0.1", "local")


def test_ssh_entries_are_hosts_at_their_hostname_with_the_agent_port_and_ssh_attributes() -> None:
    text = '<plush>\n<resource_manager type="ssh">\n<node hostname="a:15000" user="bob" ssh_port="2222"/>\n'
    text += '<node hostname="b" python="python3.9"/>\n</resource_manager>\n</plush>'
    hosts = parse_directory(text, file="d.xml")
    assert hosts[0] == Host("a", "a", "ssh", 15000, "bob", None, {"ssh_port": 2222.0})
    assert hosts[1] == Host("b", "b", "ssh", None, None, None, {"python": "python3.9"})


def test_directory_problems_all_at_once_with_line_and_element() -> None:
    text = """<plush>
  <resource_manager type="local">
    <node hostname="../x" port="7"/>
    <node hostname="a:0"/>
    <node user="bob"/>
    <nod hostname="c"/>
  </resource_manager>
  <resource_manager type="cloud"><node hostname="d"/></resource_manager>
  <resource_manager/>
</plush>"""
    with pytest.raises(PoolFileError) as exc:
        parse_directory(text, file="d.xml")
    assert problems(exc) == [
        "d.xml:3:5: port is not a property (in <node>); give the agent port in the hostname, as HOST:PORT",
        "d.xml:3:5: bad host name '../x' (in <node>); a host name is letters, digits, '_', '.' and '-', "
        "starting with a letter, digit or '_'",
        "d.xml:4:5: bad agent port '0' in hostname (in <node>); a port is a number in 1..65535",
        "d.xml:5:5: the entry has no hostname (in <node>); every entry names its host(s): hostname",
        "d.xml:6:5: unknown element <nod> in <resource_manager>; did you mean <node>?",
        "d.xml:8:3: unknown type 'cloud' (in <resource_manager>); the types are local, ssh",
        "d.xml:9:3: <resource_manager> holds no <node>",
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("<plush><node", "d.xml:1:8: malformed XML: unclosed token"),
        ('<!DOCTYPE x [<!ENTITY a "b">]><plush/>', "d.xml:1:13: refused XML: DTDForbidden; DTDs, entity declarations"),
        ("<gush/>", "d.xml:1:1: the directory names no hosts"),
        ("<resources/>", "d.xml:1:1: the root element is <resources>, not <plush>"),
        ("<plush><project name='p'/></plush>", "d.xml:1:8: unknown element <project> in <plush>; this is a spec"),
        (b'<?xml version="1.0" encoding="nope"?><plush/>', "d.xml:1: unreadable XML"),
    ],
)
def test_directory_errors_name_their_line(text: str | bytes, expected: str) -> None:
    with pytest.raises(PoolFileError) as exc:
        parse_directory(text, file="d.xml")
    assert problems(exc)[0].startswith(expected)


# --- the YAML inventory ----------------------------------------------------------------------------------

INVENTORY = """# a lab
defaults:
  type: local
  site: ucsd
hosts:
  - node[01-03]
  - hostname: big[1-2]:15001
    group: big
    user: alice
    mem_mb: 65536
    site: mit
  - hostname: odd
    zip: 010
"""


def test_inventory_expands_ranges_and_takes_the_defaults() -> None:
    hosts = parse_inventory(INVENTORY, file="i.yaml")
    assert [h.name for h in hosts] == ["node01", "node02", "node03", "big1", "big2", "odd"]
    assert hosts[0] == Host("node01", "127.0.0.1", "local", properties={"site": "ucsd"})
    assert hosts[3] == Host("big1", "127.0.0.1", "local", 15001, "alice", "big", {"site": "mit", "mem_mb": 65536.0})
    assert hosts[5].get("zip") == 10.0  # the text as written ("010"), then a number like any property


def test_inventory_problems_name_their_line() -> None:
    text = """defaults:
  type: local
hosts:
  - hostname: a
    port: 3
  - hostname: b[3-1]
  - hostname: c
    tags: [x, y]
  - {hostname: a}
  - hostname: d
    hostname: e
hots: 1
"""
    with pytest.raises(PoolFileError) as exc:
        parse_inventory(text, file="i.yaml")
    assert problems(exc) == [
        "i.yaml:5:5: port is not a property; give the agent port in the hostname, as HOST:PORT",
        "i.yaml:6:5: bad hostname: a range must not go down: '3-1' in host set 'b[3-1]'",
        "i.yaml:8:11: tags must be a single value, found a list",
        "i.yaml:9:6: host 'a' is named twice; first at line 4",
        "i.yaml:11:5: duplicate key 'hostname' in a host entry",
        "i.yaml:12:1: unknown key 'hots'; did you mean 'hosts'?",
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "i.yaml:1: the inventory is empty"),
        ("hosts: [a\n", "i.yaml:2:1: malformed YAML"),
        ("hosts: []\n", "i.yaml:1:1: the pool file names no hosts"),
        ("hosts:\n  - a\n", "i.yaml:1:1: no type (local or ssh)"),
        ("hosts: {a: 1}\n", "i.yaml:1:8: hosts must be a list, found a mapping"),
        ("- a\n", "i.yaml:1:1: a pool file is a mapping with hosts:, found a list"),
        ("defaults: {type: local}\nhosts: [!!python/name:os.system a]\n", "i.yaml:2:9: unsupported YAML tag"),
        ("defaults: &d {type: local}\nhosts: [{<<: *d, hostname: a}]\n", "i.yaml:2:10: merge keys (<<)"),
        ("defaults: {type: local, user: '-x'}\nhosts: [a]\n", "i.yaml:1:25: bad user '-x'"),
        ("defaults: {type: local}\nhosts: [a, ~]\n", "i.yaml:2:12: empty host entry"),
    ],
)
def test_inventory_errors(text: str, expected: str) -> None:
    with pytest.raises(PoolFileError) as exc:
        parse_inventory(text, file="i.yaml")
    assert problems(exc)[0].startswith(expected), problems(exc)


def test_inventory_refuses_more_hosts_than_a_pool_holds() -> None:
    text = f"defaults: {{type: local}}\nhosts:\n  - n[1-{MAX_POOL_HOSTS}]\n  - m[1-2]\n"
    with pytest.raises(PoolFileError) as exc:
        parse_inventory(text, file="i.yaml")
    assert problems(exc) == [f"i.yaml:4:5: the pool holds more than {MAX_POOL_HOSTS} hosts"]


# --- the JSON host list ----------------------------------------------------------------------------------


def test_json_host_list_entries_with_scalars_of_any_json_type() -> None:
    text = '[{"hostname": "a:2", "type": "local", "vn": 1, "fast": true, "lat": -1.5e1, "site": "x"}]'
    (host,) = parse_host_json(text, file="h.json")
    assert host == Host("a", "127.0.0.1", "local", 2, properties={"vn": 1.0, "fast": "true", "lat": -15.0, "site": "x"})
    obj = '{"defaults": {"type": "local"}, "hosts": ["a", {"hostname": "b"}]}'
    assert [h.name for h in parse_host_json(obj)] == ["a", "b"]
    assert parse_host_json("[]", allow_empty=True) == []


def test_a_well_formed_json_list_with_problems_still_names_their_lines() -> None:
    # (a well-formed list is read by the fast parser, which keeps no positions: the problems come from a rescan)
    text = '[\n {"hostname": "a", "type": "local"},\n {"hostname": "-b", "type": "local"},\n {"hostname": "a"}\n]'
    with pytest.raises(PoolFileError) as exc:
        parse_host_json(text, file="h.json")
    assert [p.split(";")[0] for p in problems(exc)] == [
        "h.json:3:3: bad host name '-b'",
        "h.json:4:2: no type (local or ssh)",
        "h.json:4:3: host 'a' is named twice",
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "h.json:1:1: malformed JSON: unexpected end"),
        ('[\n  {"hostname": "a", "type": "local",}\n]', "h.json:2:37: malformed JSON: expected a key in double quotes"),
        ('[{"hostname": "a", "type": "local", "x": NaN}]', "h.json:1:42: malformed JSON: NaN is not a JSON number"),
        ('[{"hostname": "a", "type": "local"}] x', "h.json:1:38: malformed JSON: extra data"),
        ("[" * 100 + "]" * 100, "h.json:1:66: malformed JSON: nested too deeply"),
        ("[]", "h.json:1:1: the pool file names no hosts"),
        ('[{"hostname": "a", "type": "local", "x": null}]', "h.json:1:37: x has no value"),
        ('[{"hostname": "a", "type": "local", "x": "\\u001b[2J"}]', "h.json:1:37: the value of x holds a control"),
        ('[{"hostname": "a", "type": "local", "x": "\\ud800"}]', "h.json:1:37: the value of x is not valid UTF-8"),
        ('[{"hostname": "a", "hostname": "b", "type": "local"}]', "h.json:1:20: duplicate key 'hostname'"),
        ('[{"hostname": "fe80::1", "type": "local"}]', "h.json:1:3: hostname 'fe80::1' looks like an IPv6"),
    ],
)
def test_json_errors(text: str, expected: str) -> None:
    with pytest.raises(PoolFileError) as exc:
        parse_host_json(text, file="h.json")
    assert problems(exc)[0].startswith(expected), problems(exc)


# --- the kind, told by content ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        (DIRECTORY, "directory"),
        ("<!-- <project> --><gush><resource_manager/></gush>", "directory"),
        ("<plush><project name='p'><resource_manager/></project></plush>", None),
        ("<plush><resource_manager type=", "directory"),  # malformed, still a directory: its reader says why
        (INVENTORY, "inventory"),
        ("'hosts': [a]", "inventory"),
        ("hosts:\nproject: p\n", None),
        ("project: p\napplication: {}\n", None),
        ('\ufeff  [{"hostname": "a"}]', "json"),
        ('{"hosts": []}', "json"),
        ('{"project": "p", "hosts": []}', None),
        ("{project: p}", None),
        ("", None),
        ("just text", None),
    ],
)
def test_pool_kind_from_content(text: str, kind: str | None) -> None:
    assert pool_kind(text) == kind


def test_specs_are_never_taken_for_pool_files() -> None:
    specs = sorted(EXAMPLES.glob("*.xml")) + sorted(EXAMPLES.glob("*.yaml"))
    assert len(specs) >= 10
    for spec in specs:
        assert pool_kind(spec.read_text()) is None, spec


def test_parse_pool_refuses_what_is_not_a_pool_file() -> None:
    with pytest.raises(PoolFileError) as exc:
        parse_pool((EXAMPLES / "tarball.xml").read_text(), file="t.xml")
    assert problems(exc)[0].startswith("t.xml:1: not a pool file; a pool file is a Plush resource directory")


def test_read_pool_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(PoolFileError, match="cannot read the pool file: No such file"):
        read_pool(tmp_path / "missing.xml")
    (tmp_path / "bin.yaml").write_bytes(b"hosts:\n  - a\xff\n")
    with pytest.raises(PoolFileError) as exc:
        read_pool(tmp_path / "bin.yaml")
    assert problems(exc) == [f"{tmp_path / 'bin.yaml'}:2: the file is not UTF-8 text"]


# --- the examples ----------------------------------------------------------------------------------------


def test_example_directory_has_local_hosts_with_modelnet_and_site_properties() -> None:
    kind, hosts = read_pool(EXAMPLES / "pools" / "local.xml")
    assert kind == "directory" and len(hosts) == 6
    assert {h.provider for h in hosts} == {"local"}
    assert [h.get("vn") for h in hosts] == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    assert all(isinstance(h.get(k), float) for h in hosts for k in ("lat", "lon", "cpu_mhz"))
    assert {h.get("site") for h in hosts} == {"ucsd", "mit", "epfl"}
    assert hosts[0].get("vip") == "10.0.0.1"


def test_example_inventory_and_host_list() -> None:
    kind, hosts = read_pool(EXAMPLES / "pools" / "inventory.yaml")
    assert kind == "inventory"
    assert [h.name for h in hosts] == ["node01", "node02", "node03", "node04", "big1", "big2", "edge"]
    kind, hosts = read_pool(EXAMPLES / "pools" / "hosts.json")
    assert kind == "json"
    assert [h.name for h in hosts] == ["web1", "web2", "db1", "db2"]


def test_the_documented_examples_and_json_schema_match_the_rules() -> None:
    text = (ROOT / "docs" / "pools.md").read_text()
    block = text.split("Its JSON Schema", 1)[1].split("```json\n", 1)[1].split("```", 1)[0]
    schema = json.loads(block)
    entry = schema["items"]
    assert entry["properties"]["type"]["enum"] == list(TYPES)
    assert set(entry["properties"]) == set(FIELDS)
    assert entry["propertyNames"]["not"]["enum"] == list(RESERVED)
    json_example = text.split("## The JSON host list", 1)[1].split("```json\n", 1)[1].split("```", 1)[0]
    assert [h.name for h in parse_host_json(json_example)] == ["web1", "db1", "db2"]
    xml = text.split("```xml\n", 1)[1].split("```", 1)[0]
    assert [h.name for h in parse_directory(xml)] == ["ucsd1", "epfl1", "epfl2"]
    yaml = text.split("```yaml\n", 1)[1].split("```", 1)[0]
    assert [h.name for h in parse_inventory(yaml)] == ["node01", "node02", "node03", "node04", "big1", "big2"]
