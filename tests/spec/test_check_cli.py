"""``plush check``: the report of valid specs, one line per problem, JSON output and exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from xmlspecs import FULL, line_of, spec

import plush.shell.commands  # noqa: F401  (registers the subcommands)
from plush.shell.cli import cli
from plush.shell.commands import main


@pytest.fixture
def full(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    # FULL is written for a testbed (site=ucsd, 1000..4000 MHz): check, as run does, matches the sandbox
    # hosts' properties against it, so this machine gets those properties (the only stub of these tests)
    props = {"cpus": 2, "cores": 2, "arch": "x86_64", "os": "linux", "cpu_mhz": 2000.0, "site": "ucsd"}
    monkeypatch.setattr("plush.controller.preflight.local_properties", lambda: props)
    path = tmp_path / "full.xml"
    path.write_text(FULL)
    (tmp_path / "chunks").mkdir()
    for name in ("part1.txt", "part2.txt"):  # check, as run does, finds every file the spec names
        (tmp_path / "chunks" / name).write_text(name)
    return path


def test_valid_spec_report(full: Path) -> None:
    result = CliRunner().invoke(cli, ["check", str(full)])
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert f"{full}: valid" in out
    assert "senders  hosts 2..4  software sw  resources local:lab, ssh" in out
    assert "receivers  hosts 3..3" in out
    assert "/app/senders/serve  process  python3 -m http.server ' spaced '" in out
    assert "/app/receivers/crunch/task  task process  wc -l" in out
    assert "/app/receivers/gate  semaphore  semaphore capacity=4  until download  after ready" in out
    assert "order: [ready] → [gate] → [download] → [crunch]" in out
    assert "ready  max=2 threshold=0.9 timeout=30s adaptive  shared by /app/senders, /app/receivers" in out
    assert "mode: service (reconnect every 300s); on failure: restart_process" in out
    assert "\x1b[" not in out  # plain text when not on a terminal


def test_invalid_spec_prints_each_problem_and_exits_2(tmp_path: Path) -> None:
    text = spec(blocks='<barrier_block name="b" threshold="2"/>\n<process_block name="x"><predecessor name="firts"/>'
                '<process><path>a</path></process></process_block>')  # fmt: skip
    path = tmp_path / "bad.xml"
    path.write_text(text)
    result = CliRunner().invoke(cli, ["check", str(path)])
    assert result.exit_code == 2
    lines = result.stderr.splitlines()
    b_line, x_line = line_of(text, 'name="b"'), line_of(text, 'name="x"')
    assert lines == [
        f"{path}:{b_line}:1: barrier threshold 2.0 is outside (0, 1] [/app/cb/b]",
        f"{path}:{x_line}:1: predecessor 'firts' names no block [/app/cb/x]; did you mean block 'first'?",
        f"plush: error: {path}: 2 problems",
    ]
    assert result.stdout == ""


def test_several_files_keep_going_and_fail_if_any_fails(full: Path, tmp_path: Path) -> None:
    missing = tmp_path / "missing.xml"
    result = CliRunner().invoke(cli, ["check", str(missing), str(full)])
    assert result.exit_code == 2
    assert f"{missing}: the spec file does not exist" in result.stderr
    assert f"{full}: valid" in result.stdout


def test_json_output(full: Path) -> None:
    result = CliRunner().invoke(cli, ["check", "--json", str(full)])
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert data["kind"] == "Project" and data["name"] == "filedist"
    from plush.spec.model import from_dict
    from plush.spec.xmlreader import parse_xml

    assert from_dict(data) == parse_xml(FULL)


def test_json_output_for_several_files_is_a_list(full: Path) -> None:
    result = CliRunner().invoke(cli, ["check", "--json", str(full), str(full)])
    assert result.exit_code == 0
    assert [d["name"] for d in json.loads(result.stdout)] == ["filedist", "filedist"]


def test_main_in_process(full: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["check", str(full)])
    assert info.value.code == 0
    assert "order: [serve] → [ready]" in capsys.readouterr().out


def test_check_needs_a_file() -> None:
    result = CliRunner().invoke(cli, ["check"])
    assert result.exit_code == 2
    assert "give SPEC or POOLFILE files to check, or --discover COMMAND" in result.output


def test_long_arguments_are_cut_in_the_report(tmp_path: Path) -> None:
    script = "import os\nprint(os.getcwd())\n" + "x" * 100
    (tmp_path / "b.tar").write_bytes(b"")  # the template's package
    path = tmp_path / "long.xml"
    path.write_text(
        spec(
            blocks=f'<process_block name="long"><process><path>python3</path><cmdline><arg>-c</arg><arg>{script}</arg>'
            "</cmdline></process></process_block>"
        )
    )
    result = CliRunner().invoke(cli, ["check", str(path)])
    assert result.exit_code == 0
    assert "/app/cb/long  process  python3 -c 'import os…'" in result.stdout
