"""The Plush XML reader: every element of PLUSH-FORMAT.md, locations, and its error reporting."""

from __future__ import annotations

from pathlib import Path

import pytest
from xmlspecs import FULL, line_of, spec

from plush.errors import SpecError
from plush.spec.model import BarrierBlock, HostCount, ProcessBlock, WorkflowBlock
from plush.spec.xmlreader import parse_xml, read_xml


def problems_of(text: str | bytes) -> list[str]:
    with pytest.raises(SpecError) as info:
        parse_xml(text, file="s.xml")
    return [str(p) for p in info.value.problems]


def test_full_spec_reads_every_element() -> None:
    p = parse_xml(FULL, file="full.xml")
    assert p.name == "filedist" and p.source == "full.xml"
    sw = p.software_bundle("sw")
    assert sw.type == "tar"
    assert sw.packages[0].path == "http://example.org/b.tar" and sw.packages[0].dest == "b.tar"
    assert sw.packages[0].type == "web"
    senders = p.component("senders")
    assert senders.num_hosts == HostCount(2, 4)
    assert [(r.attr, r.min, r.max, r.equals) for r in senders.requirements] == [
        ("cpu_mhz", 1000.0, 4000.5, None),
        ("site", None, None, "ucsd"),
    ]
    assert senders.max_load == 4.0 and senders.min_free_mem == 512
    assert senders.software == ("sw",)
    assert [(r.type, r.group) for r in senders.resources] == [("local", "lab"), ("ssh", None)]
    assert p.component("receivers").num_hosts == HostCount(3, 3)
    app = p.application
    assert app.service and app.reconnect_interval == 300.0 and app.on_failure == "restart_process"
    serve = app.component_blocks[0].block("serve")
    assert isinstance(serve, ProcessBlock)
    proc = serve.processes[0]
    assert proc.argv == ("python3", "-m", "http.server", " spaced ")
    assert (proc.cwd, proc.env, proc.stdin, proc.stdout, proc.stderr) == (
        "www",
        (("PORT", "8000"),),
        "in.txt",
        "out.log",
        "err.log",
    )
    assert [(e.match, e.action, e.max_restarts) for e in serve.exit_policies] == [
        ("3", "ignore", None),
        ("nonzero", "restart_process", 2),
    ]
    assert serve.liveness is not None
    assert (serve.liveness.path, serve.liveness.args, serve.liveness.interval) == ("curl", ("localhost:8000",), 2.5)
    assert serve.outputs == ("*.log", "results/*")
    ready = app.component_blocks[0].block("ready")
    assert isinstance(ready, BarrierBlock)
    assert (ready.max, ready.threshold, ready.timeout, ready.adaptive, ready.predecessors) == (
        2,
        0.9,
        30.0,
        True,
        ("serve",),
    )
    gate = app.component_blocks[1].block("gate")
    assert isinstance(gate, BarrierBlock)
    assert (gate.kind, gate.capacity, gate.until) == ("semaphore", 4, "download")
    crunch = app.component_blocks[1].block("crunch")
    assert isinstance(crunch, WorkflowBlock)
    assert crunch.data_files == ("chunks/part1.txt", "chunks/part2.txt")
    assert crunch.task.name == "task" and crunch.task.processes[0].argv == ("wc", "-l")
    assert crunch.predecessors == ("download",)


def test_every_object_knows_where_it_was_written() -> None:
    p = parse_xml(FULL, file="full.xml")
    assert p.where is not None and (p.where.file, p.where.line) == ("full.xml", line_of(FULL, "<project"))
    gate = p.application.component_blocks[1].block("gate")
    assert gate.where is not None
    assert gate.where.line == line_of(FULL, 'name="gate"')
    assert gate.where.column == 11  # the '<' of <barrier_block, 1-based
    proc = p.application.component_blocks[0].block("serve")
    assert isinstance(proc, ProcessBlock)
    assert proc.processes[0].where is not None
    assert proc.processes[0].where.line == line_of(FULL, '<process name="server"')


def test_gush_root_and_experiment_are_accepted() -> None:
    text = spec().replace("<plush>", "<gush>").replace("</plush>", "</gush>")
    text = text.replace("<application_block", "<experiment").replace("</application_block>", "</experiment>")
    p = parse_xml(text)
    assert p.application.name == "app"
    assert p.application.component_blocks[0].block("first").name == "first"


def test_bytes_with_encoding_declaration() -> None:
    text = spec(blocks='<process_block name="caf"><process><path>café</path></process></process_block>')
    data = text.replace("<plush>", '<?xml version="1.0" encoding="latin-1"?>\n<plush>', 1).encode("latin-1")
    p = parse_xml(data)
    block = p.application.component_blocks[0].block("caf")
    assert isinstance(block, ProcessBlock)
    assert block.processes[0].path == "café"
    assert block.processes[0].name == "caf"  # a process without a name takes its block's name


def test_unknown_element_suggests_the_closest_name() -> None:
    text = spec(
        blocks='<process_block name="x"><predecesor name="first"/><process><path>a</path></process></process_block>'
    )
    (problem,) = problems_of(text)
    line = line_of(text, "<predecesor")
    assert problem.startswith(f"s.xml:{line}:")
    assert "unknown element <predecesor> in <process_block>" in problem
    assert "[/app/cb/x]" in problem
    assert problem.endswith("did you mean <predecessor>?")


def test_unknown_attribute_suggests_the_closest_name() -> None:
    text = spec(blocks='<barrier_block name="b" treshold="0.5"/>')
    (problem,) = problems_of(text)
    assert "unknown attribute treshold= on <barrier_block>" in problem
    assert "did you mean threshold=?" in problem
    assert f"s.xml:{line_of(text, 'treshold')}:" in problem


def test_element_in_the_wrong_place() -> None:
    text = spec(blocks="<process><path>x</path></process>")
    (problem,) = problems_of(text)
    assert "<process> does not belong in <component_block>" in problem
    assert "<process_block>" in problem  # the hint lists what is allowed there


@pytest.mark.parametrize(
    ("blocks", "message"),
    [
        ('<process_block name="x"><process name="p"/></process_block>', "<process> needs a <path>"),
        ("<process_block><process><path>a</path></process></process_block>", "<process_block> needs a name="),
        ('<barrier_block name="b" max="two"/>', "bad number max='two': expected a whole number"),
        ('<barrier_block name="b" timeout="nan"/>', "bad number timeout='nan'"),
        ('<barrier_block name="b" adaptive="maybe"/>', "bad value adaptive='maybe'"),
        ('<workflow_block name="w"><data_file>a</data_file></workflow_block>', "needs one <process_block>"),
        (
            '<process_block name="x"><process><path>a</path><cmdline>-v x</cmdline></process></process_block>',
            "unexpected text '-v x' in <cmdline>",
        ),
        ('<process_block name="x"><process><path>a<b/></path></process></process_block>', "holds text only"),
    ],
)
def test_reader_problems(blocks: str, message: str) -> None:
    problems = problems_of(spec(blocks=blocks))
    assert any(message in p for p in problems), problems


def test_project_without_name_and_application() -> None:
    problems = problems_of('<plush><project><component name="c"/></project></plush>')
    assert any("<project> needs a name=" in p for p in problems)
    assert any("has no <application_block>" in p for p in problems)


def test_wrong_root_element() -> None:
    (problem,) = problems_of("<spec/>")
    assert "the root element is <spec>, not <plush>" in problem


def test_all_problems_are_reported_in_file_order() -> None:
    text = spec(
        components='<component name="c2" colour="red"/>',
        blocks='<barrier_block name="b" threshold="2"/>\n<process_block name="x"><process name="p"/></process_block>',
    )
    with pytest.raises(SpecError) as info:
        parse_xml(text, file="s.xml")
    lines = [p.line for p in info.value.problems]
    assert len(lines) == 3
    assert lines == sorted(lines)
    assert "and 2 more problems" in str(info.value)


def test_malformed_xml_gives_line_and_column() -> None:
    text = "<plush>\n  <project name='x'>\n    <oops>\n</plush>\n"
    with pytest.raises(SpecError) as info:
        parse_xml(text, file="bad.xml")
    (problem,) = info.value.problems
    assert problem.message.startswith("malformed XML: mismatched tag")
    assert (problem.line, problem.column) == (4, 3)


def test_read_xml_names_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SpecError) as info:
        read_xml(tmp_path / "nope.xml")
    assert info.value.file == str(tmp_path / "nope.xml")
    assert "cannot read the spec" in str(info.value)


def test_read_xml_sets_the_source(tmp_path: Path) -> None:
    path = tmp_path / "s.xml"
    path.write_text(spec())
    p = read_xml(path)
    assert p.source == str(path)
    assert p.application.where is not None and p.application.where.file == str(path)


def test_unknown_attribute_does_not_hide_validation_problems() -> None:
    text = spec(blocks='<barrier_block name="b" colour="red" threshold="2"/>')
    problems = problems_of(text)
    assert len(problems) == 2
    assert any("unknown attribute colour=" in p for p in problems)
    assert any("threshold 2.0 is outside (0, 1]" in p for p in problems)


def test_missing_value_is_reported_once() -> None:
    text = spec(blocks='<process_block name="x"><process name="p"><cwd>d</cwd></process></process_block>')
    problems = problems_of(text)
    assert len(problems) == 1 and "<process> needs a <path>" in problems[0]  # not also "empty path"
