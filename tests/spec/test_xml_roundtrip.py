"""Round trips: generated valid models survive write_xml → parse_xml, and the JSON form."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from strategies import projects
from xmlspecs import FULL

from plush.spec.model import Project, from_dict, to_dict
from plush.spec.validate import validate
from plush.spec.xmlreader import parse_xml
from plush.spec.xmlwriter import write_xml


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(projects())
def test_generated_projects_are_valid(project: Project) -> None:
    assert validate(project) == []


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(projects())
def test_xml_round_trip(project: Project) -> None:
    text = write_xml(project)
    assert text.startswith('<?xml version="1.0" encoding="utf-8"?>\n<plush>')
    assert parse_xml(text) == project
    assert parse_xml(text.encode("utf-8")) == project


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(projects())
def test_json_round_trip(project: Project) -> None:
    assert from_dict(json.loads(json.dumps(to_dict(project)))) == project


def test_full_spec_round_trips_through_the_writer() -> None:
    model = parse_xml(FULL)
    text = write_xml(model)
    assert parse_xml(text) == model
    assert "<application_block " in text and "<experiment" not in text


def test_writer_escapes_what_xml_would_normalise() -> None:
    model = parse_xml(FULL)
    cb = model.application.component_blocks[0]
    block = cb.blocks[0]
    from dataclasses import replace

    from plush.spec.model import ProcessBlock

    assert isinstance(block, ProcessBlock)
    proc = replace(block.processes[0], args=("a\r\nb", "<&>", ' "q" '), env=(("K", "line1\nline2\r"),))
    new = replace(
        model,
        application=replace(
            model.application,
            component_blocks=(
                replace(cb, blocks=(replace(block, processes=(proc,)), *cb.blocks[1:])),
                *model.application.component_blocks[1:],
            ),
        ),
    )
    assert parse_xml(write_xml(new)) == new
