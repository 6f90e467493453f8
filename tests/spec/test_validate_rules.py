"""One test per validation rule: the message, the line of the object at fault and its block path."""

from __future__ import annotations

import pytest
from xmlspecs import line_of, spec

from plush.errors import SpecError, SpecProblem
from plush.spec.model import Application, BarrierBlock, ComponentBlock, Project, WorkflowBlock
from plush.spec.validate import describe_rule, validate
from plush.spec.xmlreader import parse_xml

P = '<process name="p"><path>x</path></process>'
OTHER_CB = '<component_block name="cb2"><component name="c1"/>{}</component_block>'

# (id, template holes, expected message fragment, marker on the reported line, block path or None)
CASES = [
    ("bad block name", {"blocks": f'<process_block name="bad name">{P}</process_block>'},
     "invalid block name 'bad name'", "bad name", "/app/cb"),
    ("bad component name", {"components": '<component name="a/b"/>'},
     "invalid component name 'a/b'", "a/b", None),
    ("bad software name", {"software": '<software name=".sw"/>'},
     "invalid software name '.sw'", ".sw", None),
    ("duplicate block", {"blocks": '<process_block name="first"><process name="dup"><path>x</path></process>'
                                   '</process_block>'},
     "duplicate block name 'first'", "dup", "/app/cb/first"),
    ("duplicate component", {"components": '<component name="c1"/>'},
     "duplicate component name 'c1'", '<component name="c1"/>', None),
    ("duplicate software", {"software": '<software name="sw"/>'},
     "duplicate software name 'sw'", '<software name="sw"/>', None),
    ("duplicate component block", {"cbs": '<component_block name="cb"><component name="c1"/></component_block>'},
     "duplicate component block name 'cb'", '<component_block name="cb"><component', "/app/cb"),
    ("unknown predecessor", {"blocks": f'<process_block name="x"><predecessor name="frist"/>{P}</process_block>'},
     "predecessor 'frist' names no block", "frist", "/app/cb/x"),
    ("non-sibling predecessor", {
        "blocks": f'<process_block name="x"><predecessor name="other"/>{P}</process_block>',
        "cbs": OTHER_CB.format(f'<process_block name="other">{P}</process_block>')},
     "predecessor 'other' is not a sibling: it is in component block 'cb2'", '"x"', "/app/cb/x"),
    ("cycle", {"blocks": f'<process_block name="a"><predecessor name="b"/>{P}</process_block>\n'
                         f'<process_block name="b"><predecessor name="a"/>{P}</process_block>'},
     "predecessor cycle: a → b → a", '"a"', "/app/cb/a"),
    ("undefined component", {"cbs": '<component_block name="cb2"><component name="c2"/></component_block>'},
     "component block 'cb2' names undefined component 'c2'", "cb2", "/app/cb2"),
    ("undefined software", {"components": '<component name="c2"><software name="sx"/></component>'},
     "component 'c2' names undefined software 'sx'", "c2", None),
    ("min > max", {"components": '<component name="c2"><rspec><num_hosts min="5" max="2"/></rspec></component>'},
     "num_hosts min 5 > max 2", "c2", None),
    ("min < 0", {"components": '<component name="c2"><rspec><num_hosts min="-1" max="2"/></rspec></component>'},
     "num_hosts min is -1", "c2", None),
    ("threshold", {"blocks": '<barrier_block name="b" threshold="1.5"/>'},
     "barrier threshold 1.5 is outside (0, 1]", '"b"', "/app/cb/b"),
    ("threshold zero", {"blocks": '<barrier_block name="b" threshold="0"/>'},
     "barrier threshold 0.0 is outside (0, 1]", '"b"', "/app/cb/b"),
    ("max", {"blocks": '<barrier_block name="b" max="0"/>'}, "barrier max must be >= 1", '"b"', "/app/cb/b"),
    ("timeout", {"blocks": '<barrier_block name="b" timeout="0"/>'},
     "barrier timeout must be > 0", '"b"', "/app/cb/b"),
    ("semaphore capacity", {"blocks": '<barrier_block name="s" type="semaphore"/>'},
     "semaphore needs a capacity >= 1", '"s"', "/app/cb/s"),
    ("semaphore until", {"blocks": '<barrier_block name="s" type="semaphore" capacity="2" until="first"/>'},
     "semaphore until='first' is not a block that follows it", '"s"', "/app/cb/s"),
    ("semaphore attrs", {"blocks": '<barrier_block name="s" type="semaphore" capacity="2" max="3"/>'},
     "max does not apply to a semaphore", '"s"', "/app/cb/s"),
    ("capacity on barrier", {"blocks": '<barrier_block name="b" capacity="2"/>'},
     "capacity and until apply to semaphores only", '"b"', "/app/cb/b"),
    ("barrier kind", {"blocks": '<barrier_block name="b" type="mutex"/>'},
     "unknown barrier type 'mutex'", '"b"', "/app/cb/b"),
    ("inconsistent barrier", {
        "blocks": '<barrier_block name="sync" max="2"/>',
        "cbs": OTHER_CB.format('<barrier_block name="sync" max="3"/>')},
     "barrier 'sync' is used with rule 'max=3' here but 'max=2' at /app/cb/sync", 'name="sync" max="3"',
     "/app/cb2/sync"),
    ("exit action", {"blocks": f'<process_block name="x">{P}<exit_policy code="1" action="explode"/>'
                               '</process_block>'},
     "unknown exit action 'explode'", "explode", "/app/cb/x"),
    ("exit code", {"blocks": f'<process_block name="x">{P}<exit_policy code="sometimes" action="abort"/>'
                             '</process_block>'},
     "bad exit_policy code 'sometimes'", "sometimes", "/app/cb/x"),
    ("max_restarts", {"blocks": f'<process_block name="x">{P}<exit_policy code="1" action="abort" max_restarts="-1"/>'
                                '</process_block>'},
     "max_restarts must be >= 0", "max_restarts", "/app/cb/x"),
    ("no process", {"blocks": '<process_block name="x"/>'}, "process block has no <process>", '"x"', "/app/cb/x"),
    ("workflow task predecessor", {"blocks": '<workflow_block name="w"><process_block name="t">'
                                   f'<predecessor name="first"/>{P}</process_block></workflow_block>'},
     "a workflow task has no siblings, so no predecessors", '"t"', "/app/cb/w/t"),
    ("service-only attr", {"app": ' reconnect_interval="30"'},
     "reconnect_interval applies to services only", "reconnect_interval", None),
    ("on_failure", {"app": ' on_failure="panic"'}, "unknown on_failure action 'panic'", "panic", None),
    ("liveness interval", {"blocks": f'<process_block name="x">{P}<liveness_monitor interval="0"><path>c</path>'
                                     '</liveness_monitor></process_block>'},
     "liveness_monitor interval must be > 0", "liveness_monitor", "/app/cb/x"),
    ("resource type", {"components": '<component name="c2"><resources><resource type="cloud"/></resources>'
                                     '</component>'},
     "unknown resource type 'cloud'", "cloud", None),
    ("package type", {"software": '<software name="s2"><package name="p" type="ftp"><path>x</path></package>'
                                  '</software>'},
     "unknown package type 'ftp'", "ftp", None),
    ("software type", {"software": '<software name="s2" type="zip"/>'}, "unknown software type 'zip'", "zip", None),
]  # fmt: skip


@pytest.mark.parametrize(("holes", "message", "marker", "block"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_rule(holes: dict[str, str], message: str, marker: str, block: str | None) -> None:
    text = spec(**holes)
    with pytest.raises(SpecError) as info:
        parse_xml(text, file="s.xml")
    found = [p for p in info.value.problems if message in p.message]
    assert found, [str(p) for p in info.value.problems]
    problem = found[0]
    assert problem.file == "s.xml"
    assert problem.line == line_of(text, marker)
    assert problem.block == block


def test_duplicate_names_the_first_line() -> None:
    text = spec(components='<component name="c1"/>')
    with pytest.raises(SpecError) as info:
        parse_xml(text)
    first = line_of(text, '<component name="c1">')
    assert f"(first at line {first})" in str(info.value)


def test_hints_suggest_defined_names() -> None:
    text = spec(cbs='<component_block name="cb2"><component name="c"/></component_block>')
    with pytest.raises(SpecError) as info:
        parse_xml(text)
    assert info.value.problems[0].hint == "did you mean component 'c1'?"


def test_problem_line_format() -> None:
    text = spec(blocks='<barrier_block name="b" threshold="2"/>')
    with pytest.raises(SpecError) as info:
        parse_xml(text, file="s.xml")
    line = line_of(text, '"b"')
    assert str(info.value.problems[0]) == f"s.xml:{line}:1: barrier threshold 2.0 is outside (0, 1] [/app/cb/b]"


def test_valid_template_has_no_problem() -> None:
    assert validate(parse_xml(spec())) == []


def test_validate_works_on_models_without_locations() -> None:
    wf = WorkflowBlock(name="w", task=None)  # type: ignore[arg-type]
    cb = ComponentBlock(name="cb", component="nope", blocks=(wf, BarrierBlock(name="w")))
    problems = validate(Project(name="p", application=Application(name="app", component_blocks=(cb,))))
    messages = [p.message for p in problems]
    assert messages == [
        "component block 'cb' names undefined component 'nope'",
        "workflow block has no task (one <process_block>)",
        "duplicate block name 'w'",
    ]
    assert all(isinstance(p, SpecProblem) and p.line is None for p in problems)


def test_describe_rule() -> None:
    assert describe_rule(BarrierBlock(name="b")) == "all hosts"
    assert describe_rule(BarrierBlock(name="b", max=2, threshold=0.5, timeout=3, adaptive=True)) == (
        "max=2 threshold=0.5 timeout=3s adaptive"
    )
    assert describe_rule(BarrierBlock(name="b", kind="semaphore", capacity=4)) == "semaphore capacity=4"
