"""Every example spec loads and validates, and each NAME.xml / NAME.yaml pair describes the same model.

Running the examples end to end is the business of the integration tests; this module keeps them honest
as specs: both forms present, both valid, equal, every referenced package and data file shipped.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from plush.spec.load import load_spec
from plush.spec.model import Project, WorkflowBlock
from plush.spec.validate import validate
from plush.spec.xmlreader import read_xml
from plush.spec.yamlreader import parse_yaml, read_yaml
from plush.spec.yamlwriter import write_yaml

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
NAMES = sorted(p.stem for p in EXAMPLES.glob("*.yaml"))
#: the paper's cases that the examples must cover
EXPECTED = {"tarball", "filedist", "sword", "modelnet", "workflow", "policies", "partial"}


def test_every_case_has_both_forms_and_a_description() -> None:
    assert set(NAMES) >= EXPECTED
    assert sorted(p.stem for p in EXAMPLES.glob("*.xml")) == NAMES
    readme = (EXAMPLES / "README.md").read_text()
    for name in NAMES:
        assert "| `" + name + "` |" in readme, name


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("suffix", [".xml", ".yaml"])
def test_example_loads_and_validates(name: str, suffix: str) -> None:
    project = load_spec(EXAMPLES / (name + suffix))
    assert isinstance(project, Project)
    assert project.name == name
    assert validate(project) == []


@pytest.mark.parametrize("name", NAMES)
def test_xml_and_yaml_forms_are_the_same_model(name: str) -> None:
    assert read_xml(EXAMPLES / (name + ".xml")) == read_yaml(EXAMPLES / (name + ".yaml"))


@pytest.mark.parametrize("name", NAMES)
def test_files_the_examples_name_are_shipped(name: str) -> None:
    project = read_yaml(EXAMPLES / (name + ".yaml"))
    for sw in project.software:
        for package in sw.packages:
            assert (EXAMPLES / package.path).is_file(), package.path
    for cb in project.application.component_blocks:
        for block in cb.blocks:
            if isinstance(block, WorkflowBlock):
                assert block.data_files
                for data in block.data_files:
                    assert (EXAMPLES / data).is_file(), data


@pytest.mark.parametrize("name", NAMES)
def test_examples_survive_the_yaml_writer(name: str) -> None:
    project = read_yaml(EXAMPLES / (name + ".yaml"))
    assert parse_yaml(write_yaml(project)) == project


def test_only_the_service_example_is_a_service() -> None:
    services = {name for name in NAMES if read_yaml(EXAMPLES / (name + ".yaml")).application.service}
    assert services == {"sword"}
