"""``plush check POOLFILE``: a pool file, told by its content, is checked as a spec is (exit 2, one line per
problem with file:line, then the count) and, when valid, its hosts are listed; specs are checked as before."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

import plush.shell.commands  # noqa: F401  (registers the subcommands)
from plush.resources.inventory import parse_host_json
from plush.resources.poolfile import read_pool
from plush.shell.cli import cli

POOLS = Path(__file__).resolve().parents[2] / "examples" / "pools"


def check(*args: str) -> Result:
    return CliRunner().invoke(cli, ["check", *args])


def test_a_valid_directory_prints_its_hosts() -> None:
    result = check(str(POOLS / "local.xml"))
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == f"{POOLS / 'local.xml'}: valid Plush resource directory (XML), 6 hosts"
    assert lines[1].split() == ["name", "address", "provider", "group", "properties"]
    assert lines[2].split() == [
        "ucsd1", "127.0.0.1", "local", "lab", "site=ucsd", "lat=32.88", "lon=-117.24", "cpu_mhz=2400", "vip=10.0.0.1",
        "vn=1",
    ]  # fmt: skip
    assert lines[7].split()[:2] == ["epfl2", "127.0.0.1:15002"]
    assert result.stderr == ""


@pytest.mark.parametrize(
    ("name", "kind", "count"), [("inventory.yaml", "YAML inventory", 7), ("hosts.json", "JSON host list", 4)]
)
def test_every_example_pool_is_valid(name: str, kind: str, count: int) -> None:
    result = check(str(POOLS / name))
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0] == f"{POOLS / name}: valid {kind}, {count} hosts"
    assert len(result.stdout.splitlines()) == count + 2


def test_the_kind_is_told_by_content_not_by_name(tmp_path: Path) -> None:
    path = tmp_path / "hosts.txt"
    path.write_text('[{"hostname": "a", "type": "local", "user": "bob", "site": "x"}]')
    result = check(str(path))
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[2].split() == ["a", "bob@127.0.0.1", "local", "-", "site=x"]


def test_pool_problems_one_per_line_then_the_count(tmp_path: Path) -> None:
    path = tmp_path / "pool.xml"
    path.write_text(
        '<plush>\n  <resource_manager type="cloud">\n    <node hostname="a"/>\n  </resource_manager>\n'
        '  <resource_manager type="local">\n    <node hostname="b" vn="1" port="2"/>\n  </resource_manager>\n</plush>\n'
    )
    result = check(str(path))
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        f"{path}:2:3: unknown type 'cloud' (in <resource_manager>); the types are local, ssh",
        f"{path}:6:5: port is not a property (in <node>); give the agent port in the hostname, as HOST:PORT",
        f"plush: error: {path}: 2 problems",
    ]


def test_json_prints_a_host_list_that_reads_back_as_the_same_hosts() -> None:
    result = check("--json", str(POOLS / "local.xml"))
    assert result.exit_code == 0, result.output
    entries = json.loads(result.stdout)
    assert entries[5] == {
        "hostname": "epfl2:15002", "type": "local", "group": "lab", "cpu_mhz": 800, "lat": 46.52, "lon": 6.57,
        "site": "epfl", "vip": "10.0.0.6", "vn": 6,
    }  # fmt: skip
    assert parse_host_json(result.stdout) == read_pool(POOLS / "local.xml")[1]


def test_specs_and_pools_in_one_call(tmp_path: Path) -> None:
    spec = POOLS.parent / "tarball.xml"
    bad = tmp_path / "bad.yaml"
    bad.write_text("hosts: [a]\n")
    result = check(str(spec), str(POOLS / "hosts.json"), str(bad))
    assert result.exit_code == 2
    assert f"{spec}: valid" in result.stdout
    assert f"\n\n{POOLS / 'hosts.json'}: valid JSON host list, 4 hosts\n" in result.stdout
    assert result.stderr.splitlines() == [
        f"{bad}:1:1: no type (local or ssh); type local: sandbox hosts on this machine",
        f"plush: error: {bad}: 1 problem",
    ]
    result = check("--json", str(spec), str(POOLS / "hosts.json"))
    model, hosts = json.loads(result.stdout)
    assert model["name"] == "tarball" and hosts[0]["hostname"] == "web1"


def test_a_file_that_is_neither_is_still_checked_as_a_spec(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("just text\n")
    result = check(str(path))
    assert result.exit_code == 2
    assert (
        result.stderr.splitlines()[0]
        == f"{path}: unknown spec file type '.txt'; name the file *.xml (Plush XML) or *.yaml / *.yml (YAML)"
    )


def test_check_discover_checks_what_a_discovery_command_prints(tmp_path: Path) -> None:
    import sys

    command = f"{sys.executable} {POOLS / 'discover.py'} 2"
    result = check("--discover", command)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == f"discovery command {_shown(command)}: valid JSON host list, 2 hosts"
    assert [line.split()[0] for line in lines[2:]] == ["found1", "found2"]
    as_json = check("--json", "--discover", command)
    assert [h.name for h in parse_host_json(as_json.stdout)] == ["found1", "found2"]
    bad = check("--discover", "echo [1]")
    assert bad.exit_code == 2
    assert bad.stderr.splitlines()[-1] == "plush: error: discovery command echo '[1]': 1 problem"
    failed = check("--discover", "sh -c 'exit 4'")
    assert failed.exit_code == 2
    assert failed.stderr == "plush: error: discovery command sh -c 'exit 4': exited with status 4\n"
    assert check().exit_code == 2  # nothing to check


def _shown(command: str) -> str:
    """How a discovery command is named in a report: a long one (a deep checkout's path) keeps both ends."""
    import shlex

    from plush.resources.providers import DiscoveryCommand

    return DiscoveryCommand(shlex.split(command), timeout=1).name
