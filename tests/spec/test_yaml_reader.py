"""The YAML reader: compact forms map to the model, locations are exact, every problem is reported."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from plush.errors import SpecError
from plush.spec.model import (
    AttrRequirement,
    BarrierBlock,
    ExitPolicy,
    HostCount,
    LivenessMonitor,
    Package,
    Process,
    ProcessBlock,
    ResourceRef,
    WorkflowBlock,
)
from plush.spec.xmlreader import parse_xml
from plush.spec.yamlreader import parse_yaml, read_yaml


def y(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


MINIMAL = y(
    """
    project: demo
    components:
      workers: {hosts: 2}
    application:
      execution:
        workers:
          blocks:
            - process: hello
              run: [echo, hello]
    """
)


def problems(text: str) -> list[str]:
    with pytest.raises(SpecError) as info:
        parse_yaml(text, file="spec.yaml")
    return [str(p) for p in info.value.problems]


def test_minimal_spec_reads_with_defaults() -> None:
    p = parse_yaml(MINIMAL)
    assert p.name == "demo"
    assert p.application.name == "demo"  # defaults to the project name
    cb = p.application.component_blocks[0]
    assert (cb.name, cb.component) == ("workers", "workers")  # component defaults to the block's name
    assert cb.blocks == (ProcessBlock(name="hello", processes=(Process(name="hello", path="echo", args=("hello",)),)),)
    assert p.component("workers").num_hosts == HostCount(2, 2)


def test_every_object_knows_its_line_and_column() -> None:
    p = parse_yaml(MINIMAL, file="demo.yaml")
    assert p.source == "demo.yaml"
    comp = p.component("workers")
    assert comp.where is not None and (comp.where.file, comp.where.line, comp.where.column) == ("demo.yaml", 3, 3)
    block = p.application.component_blocks[0].blocks[0]
    assert block.where is not None and (block.where.line, block.where.column) == (8, 11)
    assert isinstance(block, ProcessBlock)
    assert block.processes[0].where == block.where


@pytest.mark.parametrize(
    ("hosts", "expected"),
    [
        ("3", HostCount(3, 3)),
        ('"2..8"', HostCount(2, 8)),
        ("{min: 2, max: 5}", HostCount(2, 5)),
        ("{min: 4}", HostCount(4, 4)),
    ],
)
def test_host_count_forms(hosts: str, expected: HostCount) -> None:
    p = parse_yaml(MINIMAL.replace("{hosts: 2}", "{hosts: " + hosts + "}"))
    assert p.component("workers").num_hosts == expected


def test_requirements_compact_and_long_forms() -> None:
    text = MINIMAL.replace(
        "{hosts: 2}",
        '{hosts: 2, require: {cpu_mhz: ">=1000", cores: "<=8", mem: "1..2", arch: x86_64, os: "==linux",'
        " disk: {min: 5, equals: ssd}}, max_load: 4, min_free_mem: 512}",
    )
    comp = parse_yaml(text).component("workers")
    assert comp.requirements == (
        AttrRequirement("cpu_mhz", min=1000.0),
        AttrRequirement("cores", max=8.0),
        AttrRequirement("mem", min=1.0, max=2.0),
        AttrRequirement("arch", equals="x86_64"),
        AttrRequirement("os", equals="linux"),
        AttrRequirement("disk", min=5.0, equals="ssd"),
    )
    assert (comp.max_load, comp.min_free_mem) == (4.0, 512)
    listed = MINIMAL.replace("{hosts: 2}", "{require: [{attr: cpu_mhz, min: 1000}, {attr: cpu_mhz, max: 3000}]}")
    assert parse_yaml(listed).component("workers").requirements == (
        AttrRequirement("cpu_mhz", min=1000.0),
        AttrRequirement("cpu_mhz", max=3000.0),
    )


def test_software_packages_and_resources() -> None:
    text = y(
        """
        project: demo
        software:
          bundle:
            type: tar
            packages:
              - files/app.tar.gz
              - {name: data, path: "https://example.org/d.bin", type: web, dest: d.bin}
        components:
          workers:
            software: bundle
            resources: [local, {type: ssh, group: lab}]
        application:
          execution: {workers: {blocks: []}}
        """
    )
    p = parse_yaml(text)
    assert p.software_bundle("bundle").packages == (
        Package(name="app.tar.gz", path="files/app.tar.gz"),
        Package(name="data", path="https://example.org/d.bin", type="web", dest="d.bin"),
    )
    assert p.component("workers").software == ("bundle",)
    assert p.component("workers").resources == (ResourceRef("local"), ResourceRef("ssh", group="lab"))


def test_strings_are_taken_as_written() -> None:
    text = MINIMAL.replace(
        "run: [echo, hello]", "run: [echo, yes, 010, 1.50, ~, 'quoted']\n          env: {N: 08, B: no}"
    )
    proc = parse_yaml(text).application.component_blocks[0].blocks[0]
    assert isinstance(proc, ProcessBlock)
    assert proc.processes[0].args == ("yes", "010", "1.50", "~", "quoted")
    assert proc.processes[0].env == (("N", "08"), ("B", "no"))


def test_process_block_full_form() -> None:
    text = y(
        """
        project: demo
        components: {workers: }
        application:
          name: app
          service: true
          reconnect_interval: 60
          on_failure: restart_process
          execution:
            main:
              component: workers
              blocks:
                - process: first
                  run: {path: sh, args: [-c, "exit 0"]}
                - process: pair
                  after: first
                  processes:
                    - {name: a, run: [true], cwd: sub, stdin: in.txt, stdout: out.txt, stderr: err.txt}
                    - {name: b, run: "false", env: [X=1, X=2]}
                  exit:
                    - {code: 3, action: ignore}
                    - {code: any, action: restart_process, max_restarts: 2}
                  liveness: {run: [test, -e, ok], interval: 0.5}
                  outputs: ["*.log"]
        """
    )
    app = parse_yaml(text).application
    assert (app.name, app.service, app.reconnect_interval, app.on_failure) == ("app", True, 60.0, "restart_process")
    first, pair = app.component_blocks[0].blocks
    assert isinstance(first, ProcessBlock) and first.processes[0].argv == ("sh", "-c", "exit 0")
    assert isinstance(pair, ProcessBlock)
    assert pair.predecessors == ("first",)
    assert pair.processes == (
        Process(name="a", path="true", cwd="sub", stdin="in.txt", stdout="out.txt", stderr="err.txt"),
        Process(name="b", path="false", env=(("X", "1"), ("X", "2"))),
    )
    assert pair.exit_policies == (ExitPolicy("3", "ignore"), ExitPolicy("*", "restart_process", max_restarts=2))
    assert pair.liveness == LivenessMonitor(path="test", args=("-e", "ok"), interval=0.5)
    assert pair.outputs == ("*.log",)


def test_barriers_semaphores_and_workflows() -> None:
    text = y(
        """
        project: demo
        components: {workers: {hosts: 4}}
        application:
          execution:
            workers:
              blocks:
                - barrier: start
                  max: 3
                  threshold: 75%
                  timeout: 30
                  adaptive: 1
                - semaphore: slots
                  after: [start]
                  capacity: 2
                  until: crunch
                - workflow: crunch
                  after: [slots]
                  data: [a.txt, b.txt]
                  task: {run: [wc, -c]}
        """
    )
    start, slots, crunch = parse_yaml(text).application.component_blocks[0].blocks
    assert start == BarrierBlock(name="start", max=3, threshold=0.75, timeout=30.0, adaptive=True)
    assert slots == BarrierBlock(name="slots", predecessors=("start",), kind="semaphore", capacity=2, until="crunch")
    assert isinstance(crunch, WorkflowBlock)
    assert crunch.data_files == ("a.txt", "b.txt")
    assert crunch.task.name == "task" and crunch.task.processes[0].argv == ("wc", "-c")


def test_same_model_as_the_equivalent_xml() -> None:
    xml = """<plush><project name="demo">
      <component name="workers"><rspec><num_hosts min="2" max="4"/>
        <require attr="cpu_mhz" min="1000"/><max_load>2.5</max_load></rspec></component>
      <application_block name="demo" on_failure="ignore"><execution>
        <component_block name="workers"><component name="workers"/>
          <process_block name="go"><process name="go"><path>sh</path>
            <cmdline><arg>-c</arg><arg>echo "$PLUSH_HOST"</arg></cmdline><env name="A">1</env></process>
            <exit_policy code="nonzero" action="abort"/><output>out/*</output></process_block>
          <barrier_block name="sync" threshold="0.5"><predecessor name="go"/></barrier_block>
        </component_block></execution></application_block></project></plush>"""
    text = y(
        """
        project: demo
        components:
          workers: {hosts: 2..4, require: {cpu_mhz: ">=1000"}, max_load: 2.5}
        application:
          on_failure: ignore
          execution:
            workers:
              blocks:
                - process: go
                  run: [sh, -c, 'echo "$PLUSH_HOST"']
                  env: {A: 1}
                  exit: [{code: nonzero, action: abort}]
                  outputs: [out/*]
                - {barrier: sync, after: [go], threshold: 0.5}
        """
    )
    assert parse_yaml(text) == parse_xml(xml)


# --- problems -----------------------------------------------------------------------------------------


def test_unknown_key_suggests_the_closest_valid_one() -> None:
    found = problems(MINIMAL.replace("run: [echo, hello]", "run: [echo, hello]\n          aftr: [x]"))
    assert found == [
        "spec.yaml:10:11: unknown key 'aftr' in a process block [/demo/workers/hello]; did you mean 'after'?"
    ]


def test_xml_habits_get_the_yaml_name() -> None:
    found = problems(MINIMAL.replace("{hosts: 2}", "{num_hosts: 2}"))
    assert len(found) == 1 and "did you mean 'hosts'?" in found[0]


def test_all_structural_problems_are_reported_at_once() -> None:
    text = y(
        """
        project: demo
        components:
          workers: {hosts: many, max_load: high}
        application:
          execution:
            workers:
              blocks:
                - process: a
                  run: echo hello
                - {process: b}
                - {barrier: c, max: 2.5}
                - {nothing: d}
        """
    )
    found = problems(text)
    assert len(found) == 6, found
    assert found[0].startswith('spec.yaml:3:20: hosts must be a number, "min..max"')
    assert found[1].startswith("spec.yaml:3:36: max_load must be a number, found 'high'")
    assert found[2].startswith("spec.yaml:9:16: run is a list of arguments, not a command line")
    assert "write run: [echo, hello]" in found[2]
    assert found[3].startswith("spec.yaml:10:11: a process block needs the key 'run'")
    assert found[4].startswith("spec.yaml:11:29: max must be a whole number, found '2.5' [/demo/workers/c]")
    assert found[5].startswith("spec.yaml:12:11: a block has exactly one of the keys process, barrier")


def test_missing_required_top_level_keys_and_wrong_types() -> None:
    assert problems("project: demo\n") == ["spec.yaml:1:1: the spec needs the key 'application'"]
    assert problems("- a\n- b\n") == ["spec.yaml:1:1: the spec must be a mapping, found a list"]
    found = problems("project: [a]\napplication: {}\n")
    assert found == ["spec.yaml:1:10: project must be a single value, found a list"]


def test_duplicate_keys_are_problems() -> None:
    found = problems(MINIMAL.replace("{hosts: 2}", "{hosts: 2, hosts: 3}"))
    assert len(found) == 1 and "duplicate key 'hosts'" in found[0]


def test_malformed_yaml_names_the_parsers_position() -> None:
    with pytest.raises(SpecError) as info:
        parse_yaml("project: demo\napplication: [\n", file="bad.yaml")
    (p,) = info.value.problems
    assert p.message.startswith("malformed YAML:")
    assert (p.file, p.line) == ("bad.yaml", 3)
    with pytest.raises(SpecError, match="the spec is empty"):
        parse_yaml("# nothing here\n")


def test_semantic_problems_come_from_validation() -> None:
    text = MINIMAL.replace("run: [echo, hello]", "run: [echo, hello]\n          after: [nowhere]")
    found = problems(text)
    assert len(found) == 1
    assert "predecessor 'nowhere' names no block" in found[0] and found[0].startswith("spec.yaml:8:")


def test_read_yaml_reports_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="cannot read the spec") as info:
        read_yaml(tmp_path / "nope.yaml")
    assert info.value.file == str(tmp_path / "nope.yaml")
    good = tmp_path / "good.yaml"
    good.write_text(MINIMAL)
    assert read_yaml(good).source == str(good)
