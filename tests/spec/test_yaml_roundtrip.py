"""Round trips through the YAML form: ``parse_yaml(write_yaml(m)) == m``, and the XML form agrees."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from strategies import projects

from plush.spec.model import (
    Application,
    AttrRequirement,
    Component,
    ComponentBlock,
    ExitPolicy,
    HostCount,
    Package,
    Process,
    ProcessBlock,
    Project,
    Software,
    WorkflowBlock,
)
from plush.spec.xmlreader import parse_xml
from plush.spec.xmlwriter import write_xml
from plush.spec.yamlreader import parse_yaml
from plush.spec.yamlwriter import write_yaml


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(projects())
def test_yaml_round_trip(project: Project) -> None:
    assert parse_yaml(write_yaml(project)) == project


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(projects())
def test_yaml_and_xml_forms_read_to_the_same_model(project: Project) -> None:
    assert parse_yaml(write_yaml(parse_xml(write_xml(project)))) == parse_xml(write_xml(project))


SCRIPT = 'import os\nfor i in range(3):\n    print("line", i)\n'
TRICKY = Project(
    name="tricky",
    software=(
        Software(
            name="bundle",
            type="tar",
            packages=(
                Package(name="a.tar.gz", path="files/a.tar.gz"),
                Package(name="other", path="https://example.org/x/", type="web", dest="x"),
            ),
        ),
    ),
    components=(
        Component(
            name="on",  # a YAML 1.1 boolean, as a name
            num_hosts=HostCount(0, 7),
            requirements=(
                AttrRequirement("cpu", min=1.5, max=1e20),
                AttrRequirement("cpu", equals=">=3"),
                AttrRequirement("mem", min=0.1, max=2.0, equals="x"),
            ),
            software=("bundle",),
        ),
    ),
    application=Application(
        name="app",
        component_blocks=(
            ComponentBlock(
                name="cb",
                component="on",
                blocks=(
                    ProcessBlock(
                        name="p",
                        processes=(
                            Process(
                                name="p",
                                path="python3",
                                args=(
                                    "-c",
                                    SCRIPT,
                                    "",
                                    " lead",
                                    "yes",
                                    "010",
                                    "null",
                                    "a: b",
                                    "- x",
                                    "#",
                                    "\u2028",
                                    "trailing  spaces  \n",
                                ),
                                env=(("A", "1"), ("A", "two words"), ("B", "")),
                            ),
                        ),
                        exit_policies=(ExitPolicy("*", "ignore"), ExitPolicy("007", "abort")),
                        outputs=("*.log",),
                    ),
                    WorkflowBlock(
                        name="wf",
                        task=ProcessBlock(name="task", processes=(Process(name="other", path="wc"),)),
                        data_files=("d/1", "d/2"),
                        predecessors=("p",),
                    ),
                ),
            ),
        ),
    ),
)


def test_tricky_strings_and_forms_survive() -> None:
    text = write_yaml(TRICKY)
    back = parse_yaml(text)
    assert back == TRICKY
    assert "'on':" in text  # quoted, so that it stays a name
    assert "- |" in text  # the script prints as a block


def test_compact_forms_are_written() -> None:
    text = write_yaml(TRICKY)
    assert "- files/a.tar.gz\n" in text
    assert "hosts: 0..7\n" in text
    assert "code: any" in text
    assert "task:\n" in text and "process: task" not in text
