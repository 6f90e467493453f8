"""What ``plush run`` refuses before it contacts a host, ``plush check`` refuses too: exit 2, ``file:line``.

Every case runs through both commands in-process. ``run`` must refuse it before any host exists (no run
directory is created), with the same problem line that ``check`` prints.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner, Result

import plush.shell.commands  # noqa: F401  (registers the subcommands)
from plush.protocol.framing import MAX_FRAME
from plush.shell.cli import cli

BLOCKS = """
application:
  execution:
    c:
      blocks:
{blocks}
"""
TRUE = '        - process: x\n          run: ["true"]\n'


def yaml_spec(components: str = "  c: {}\n", blocks: str = TRUE, extra: str = "") -> str:
    return "project: p\n" + extra + "components:\n" + components + BLOCKS.format(blocks=blocks.rstrip("\n"))


def line_of(text: str, marker: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if marker in line)


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


def both(tmp_path: Path, name: str, text: str, *args: str) -> tuple[Path, Result, Result, Path]:
    spec = tmp_path / name
    spec.write_text(text)
    runs = tmp_path / "runs"
    checked = invoke("check", *args, str(spec))
    ran = invoke("run", "--runs-dir", str(runs), *args, str(spec))
    return spec, checked, ran, runs


def assert_refused(tmp_path: Path, name: str, text: str, fragment: str, line: int | None, *args: str) -> str:
    spec, checked, ran, runs = both(tmp_path, name, text, *args)
    where = f"{spec}:{line}:" if line is not None else f"{spec}: "
    assert checked.exit_code == 2, checked.output
    assert "Traceback" not in checked.output
    found = [x for x in checked.stderr.splitlines() if fragment in x]
    assert found and found[0].startswith(where), checked.stderr
    assert ran.exit_code == 2, ran.output
    assert "Traceback" not in ran.output
    assert ran.stderr.startswith("plush: error: " + where) and fragment in ran.stderr, ran.stderr
    assert not runs.exists() or not any(runs.iterdir()), "run created a run directory before refusing"
    return found[0]


# --- item 2: host paths ----------------------------------------------------------------------------------


def test_package_dest_outside_the_working_directory_is_refused(tmp_path: Path) -> None:
    (tmp_path / "tool.sh").write_text("echo hi\n")
    text = yaml_spec(
        components="  c: {software: [s]}\n",
        extra="software:\n  s:\n    packages:\n      - path: tool.sh\n        dest: ../../../../tmp/x\n",
    )
    line = assert_refused(tmp_path, "dest.yaml", text, "dest '../../../../tmp/x'", line_of(text, "- path: tool.sh"))
    assert "package 'tool.sh' of software 's'" in line and "'..'" in line and "; " in line  # with a hint


# absolute paths point into the test's own directory: a regression must not write over real files
@pytest.mark.parametrize("dest", ["{tmp}/x", "~/x", "a//b", "./x"])
def test_package_dest_forms_that_are_not_plain_are_refused_in_xml(tmp_path: Path, dest: str) -> None:
    dest = dest.format(tmp=tmp_path)
    (tmp_path / "tool.sh").write_text("echo hi\n")
    text = f"""<plush><project name="p">
<software name="s"><package name="t"><path>tool.sh</path><dest>{dest}</dest></package></software>
<component name="c"><software name="s"/></component>
<application_block name="app"><execution><component_block name="c"><component name="c"/>
<process_block name="x"><process name="x"><path>true</path></process></process_block>
</component_block></execution></application_block></project></plush>
"""
    assert_refused(tmp_path, "dest.xml", text, f"dest {dest!r}"[:40], line_of(text, '<package name="t">'))


def test_default_dest_from_a_url_that_ends_in_dot_dot_is_refused(tmp_path: Path) -> None:
    text = yaml_spec(
        components="  c: {software: [s]}\n",
        extra="software:\n  s:\n    packages:\n      - path: http://example.org/a/..\n        name: up\n",
    )
    assert_refused(tmp_path, "web.yaml", text, "base name", line_of(text, "- path: http"))


@pytest.mark.parametrize(
    ("key", "value"),
    [("cwd", "{tmp}"), ("stdout", "../../../out"), ("stderr", "{tmp}/err.log"), ("stdin", "~/secret")],
)
def test_process_paths_outside_the_working_directory_are_refused(tmp_path: Path, key: str, value: str) -> None:
    value = value.format(tmp=tmp_path)
    text = yaml_spec(blocks=TRUE + f"          {key}: {value}\n")
    line = assert_refused(tmp_path, "proc.yaml", text, f"{key} {value!r}"[:40], line_of(text, "- process: x"))
    assert line.count("[/p/c/x]") == 1


def test_outputs_patterns_outside_the_working_directory_are_refused(tmp_path: Path) -> None:
    text = yaml_spec(blocks=TRUE + f'          outputs: ["logs/*.txt", "{tmp_path}/*", "../**"]\n')
    _, checked, ran, _ = both(tmp_path, "out.yaml", text)
    assert checked.exit_code == 2 and ran.exit_code == 2
    problems = [x for x in checked.stderr.splitlines() if "outputs pattern" in x]
    assert len(problems) == 2 and f"'{tmp_path}/*'" in problems[0] and "'../**'" in problems[1]
    assert "pattern 'logs/*.txt'" not in checked.stderr


def test_workflow_data_whose_base_name_is_not_a_file_name_is_refused(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    text = yaml_spec(blocks='        - workflow: w\n          data: ["d/.."]\n          task: {run: ["true"]}\n')
    assert_refused(tmp_path, "wf.yaml", text, "data file 'd/..'", line_of(text, "- workflow: w"))


# --- item 13: what run refuses, check refuses ----------------------------------------------------------


def test_missing_package_file(tmp_path: Path) -> None:
    text = yaml_spec(components="  c: {software: [s]}\n", extra="software:\n  s:\n    packages: [files/nothere.tgz]\n")
    assert_refused(tmp_path, "pkg.yaml", text, "no file at", line_of(text, "packages:"))


def test_missing_workflow_data_file(tmp_path: Path) -> None:
    text = yaml_spec(blocks='        - workflow: w\n          data: [gone.txt]\n          task: {run: ["true"]}\n')
    assert_refused(tmp_path, "wf.yaml", text, "data file 'gone.txt' not found", line_of(text, "- workflow: w"))


def test_more_hosts_than_max_local_hosts(tmp_path: Path) -> None:
    text = yaml_spec(components="  c: {hosts: 1001}\n")
    assert_refused(tmp_path, "many.yaml", text, "more than max_local_hosts=1000", line_of(text, "c: {hosts"))


def test_a_component_whose_min_is_zero_needs_hosts(tmp_path: Path) -> None:
    text = yaml_spec(components="  c: {hosts: 0..3}\n")
    assert_refused(tmp_path, "zero.yaml", text, "component 'c'", line_of(text, "c: {hosts"))
    spec = tmp_path / "zero.yaml"
    assert invoke("check", "--hosts", "c=2", str(spec)).exit_code == 0


def test_a_requirement_this_machine_does_not_meet(tmp_path: Path) -> None:
    text = yaml_spec(components="  c:\n    require: {mem_mb: '>=1000000000'}\n")
    assert_refused(tmp_path, "req.yaml", text, "requires mem_mb >= 1000000000", line_of(text, "require:"))


def test_a_spec_too_large_for_one_message(tmp_path: Path) -> None:
    big = "x" * MAX_FRAME
    text = f"""<plush><project name="p">
<component name="c"/>
<application_block name="app"><execution><component_block name="c"><component name="c"/>
<process_block name="x"><process name="x"><path>echo</path><cmdline><arg>{big}</arg></cmdline></process>
</process_block></component_block></execution></application_block></project></plush>
"""
    assert_refused(tmp_path, "big.xml", text, "too large", line_of(text, "<project"))


@pytest.mark.parametrize(
    ("fragment", "value"),
    [
        ("hosts: ", "9" * 5000),  # over Python's 4,300-digit limit for int()
        ("hosts: ", "0x" + "f" * 5000),  # no digit limit for hex, but far too large
        ("max_load: ", "9" * 400),  # too large for a float
        ("max_load: ", ".inf"),
        ("min_free_mem: ", "9" * 40),
    ],
)
def test_numbers_too_large_in_yaml(tmp_path: Path, fragment: str, value: str) -> None:
    text = yaml_spec(components=f"  c:\n    {fragment}{value}\n")
    assert_refused(tmp_path, "num.yaml", text, fragment.rstrip(": "), line_of(text, fragment))


@pytest.mark.parametrize(
    ("key", "value"), [("timeout", "1.0e+400"), ("timeout", ".nan"), ("max", "9" * 5000), ("max", "1" + "0" * 30)]
)
def test_barrier_numbers_too_large_in_yaml(tmp_path: Path, key: str, value: str) -> None:
    text = yaml_spec(blocks=f"        - barrier: b\n          {key}: {value}\n" + TRUE)
    assert_refused(tmp_path, "num.yaml", text, key, line_of(text, f"{key}: "))


@pytest.mark.parametrize("value", ["9" * 5000, "9" * 4000, "1" + "0" * 20])
def test_numbers_too_large_in_xml(tmp_path: Path, value: str) -> None:
    text = f"""<plush><project name="p">
<component name="c"><rspec><num_hosts min="1" max="{value}"/></rspec></component>
<application_block name="app"><execution><component_block name="c"><component name="c"/>
<barrier_block name="b" max="{value}"/>
</component_block></execution></application_block></project></plush>
"""
    spec, checked, ran, _ = both(tmp_path, "num.xml", text)
    assert checked.exit_code == 2 and ran.exit_code == 2, checked.output + ran.output
    assert "Traceback" not in checked.output + ran.output
    lines = checked.stderr.splitlines()
    assert lines[0].startswith(f"{spec}:{line_of(text, '<num_hosts')}:"), lines
    assert lines[1].startswith(f"{spec}:{line_of(text, '<barrier_block')}:"), lines
    assert all(len(x) < 300 for x in lines)  # the number is not printed in full


def test_exit_codes_with_many_digits_are_refused(tmp_path: Path) -> None:
    text = yaml_spec(blocks=TRUE + f"          exit: [{{code: {'9' * 5000}, action: ignore}}]\n")
    spec = tmp_path / "exit.yaml"
    spec.write_text(text)
    result = invoke("check", str(spec))
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "bad exit_policy code" in result.stderr and len(result.stderr) < 1000


CYCLE = """project: p
components:
  a: {}
  b: {}
application:
  execution:
    a:
      blocks:
        - barrier: b1
        - barrier: b2
          after: [b1]
    b:
      blocks:
        - barrier: b2
        - process: work
          after: [b2]
          run: ["true"]
        - barrier: b1
          after: [work]
"""


def test_barrier_cycle_across_component_blocks(tmp_path: Path) -> None:
    first = line_of(CYCLE, "- barrier: b1")
    line = assert_refused(tmp_path, "cycle.yaml", CYCLE, "barriers wait for each other", first)
    assert "/p/a: b2 after b1" in line and "/p/b: b1 after work after b2" in line


def test_a_cycle_through_a_barrier_with_a_timeout_is_allowed(tmp_path: Path) -> None:
    text = CYCLE.replace("- barrier: b1\n", "- barrier: b1\n          timeout: 5\n")  # both uses: one rule
    spec = tmp_path / "timeout.yaml"
    spec.write_text(text)
    result = invoke("check", str(spec))
    assert result.exit_code == 0, result.output


def test_barriers_in_the_same_order_everywhere_are_fine(tmp_path: Path) -> None:
    text = CYCLE.replace(
        "        - barrier: b2\n        - process: work\n          after: [b2]",
        "        - barrier: b2\n          after: [b1]\n        - process: work\n          after: [b2]",
    )
    text = text.replace("        - barrier: b1\n          after: [work]\n", "        - barrier: b1\n")  # fmt: skip
    spec = tmp_path / "ok.yaml"
    spec.write_text(text)
    result = invoke("check", str(spec))
    assert result.exit_code == 0, result.output


# --- item 14: --hosts within num_hosts min..max ------------------------------------------------------------

RANGE = yaml_spec(components="  c: {hosts: 2..4}\n")


@pytest.mark.parametrize(("arg", "n"), [("c=1", 1), ("1", 1), ("c=5", 5), ("5", 5), ("c=0", 0)])
def test_hosts_outside_min_max_are_refused(tmp_path: Path, arg: str, n: int) -> None:
    line = assert_refused(tmp_path, "range.yaml", RANGE, "component 'c'", line_of(RANGE, "c: {hosts"), "--hosts", arg)
    assert "2..4" in line and f"asks for {n}" in line


def test_hosts_naming_an_unknown_component_are_refused(tmp_path: Path) -> None:
    assert_refused(tmp_path, "range.yaml", RANGE, "--hosts names unknown component 'd'", None, "--hosts", "d=2")


def test_hosts_within_range_pass_check(tmp_path: Path) -> None:
    spec = tmp_path / "range.yaml"
    spec.write_text(RANGE)
    for arg in ("c=2", "c=4", "3"):
        result = invoke("check", "--hosts", arg, str(spec))
        assert result.exit_code == 0, result.output


def test_run_lists_every_problem_of_a_rejected_spec(tmp_path: Path) -> None:
    text = yaml_spec(
        blocks='        - process: x\n          run: ["true"]\n          stdout: /abs/out\n'
        '        - process: y\n          run: ["true"]\n          stderr: ../err\n'
    )
    spec, checked, ran, _ = both(tmp_path, "two.yaml", text)
    assert checked.exit_code == ran.exit_code == 2, (checked.output, ran.output)
    problems = [x for x in checked.stderr.splitlines() if not x.startswith("plush: error:")]
    assert len(problems) == 2, checked.stderr
    lines = ran.stderr.splitlines()
    assert lines == [*problems, f"plush: error: {spec}: 2 problems"], ran.stderr
