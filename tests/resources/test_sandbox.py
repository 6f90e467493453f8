"""The local sandbox as a pool: real properties of this machine, requirements checked against them, and the
notice for specs that name other resources."""

from __future__ import annotations

import os
import platform

import pytest

from plush.errors import MatchError
from plush.resources.sandbox import (
    check_requirements,
    describe_requirement,
    local_properties,
    sandbox_notice,
    unmet,
)
from plush.spec.model import AttrRequirement
from plush.spec.yamlreader import parse_yaml

PROPS = {"cpus": 2, "cores": 2, "mem_mb": 24000, "cpu_mhz": 2400, "arch": "x86_64", "os": "linux"}


def test_local_properties_are_this_machines() -> None:
    props = local_properties()
    assert props["arch"] == platform.machine()
    assert props["os"] == platform.system().lower()
    assert props["cpus"] == props["cores"] == len(os.sched_getaffinity(0))
    mem = props["mem_mb"]
    assert isinstance(mem, int) and mem > 0


@pytest.mark.parametrize(
    ("req", "why"),
    [
        (AttrRequirement("mem_mb", min=1000), None),
        (AttrRequirement("mem_mb", min=100000), "mem_mb=24000"),
        (AttrRequirement("cores", max=1), "cores=2"),
        (AttrRequirement("cpu_mhz", min=1000, max=2000), "cpu_mhz=2400"),
        (AttrRequirement("arch", equals="x86_64"), None),
        (AttrRequirement("arch", equals="aarch64"), "arch=x86_64"),
        (AttrRequirement("cpus", equals="2"), None),
        (AttrRequirement("arch", min=1), "arch=x86_64, not a number"),
        (
            AttrRequirement("site", equals="ucsd"),
            "no property 'site' (they have arch, cores, cpu_mhz, cpus, mem_mb, os)",
        ),
    ],
)
def test_unmet_names_the_hosts_value(req: AttrRequirement, why: str | None) -> None:
    assert unmet(req, PROPS) == why


def test_describe_requirement() -> None:
    assert describe_requirement(AttrRequirement("mem_mb", min=1000)) == "mem_mb >= 1000"
    assert describe_requirement(AttrRequirement("cores", max=8)) == "cores <= 8"
    assert describe_requirement(AttrRequirement("cpu_mhz", min=1, max=2.5)) == "cpu_mhz 1..2.5"
    assert describe_requirement(AttrRequirement("arch", equals="x86_64")) == "arch == x86_64"


SPEC = """
project: p
components:
  big:
    hosts: 2
    require: {mem_mb: ">=100000"}
    resources: [ssh]
  small:
    hosts: 1
    require: {arch: x86_64}
    resources: [{type: netns, group: lab}, local]
  here:
    resources: [local]
application:
  execution:
    big: {blocks: [{process: a, run: [true]}]}
    small: {blocks: [{process: a, run: [true]}]}
    here: {blocks: [{process: a, run: [true]}]}
"""


def test_an_unmet_requirement_is_refused_naming_component_requirement_and_value() -> None:
    project = parse_yaml(SPEC, file="spec.yaml")
    with pytest.raises(MatchError) as info:
        check_requirements(project, {"big": 2, "small": 1, "here": 1}, PROPS)
    assert str(info.value) == (
        "spec.yaml:6: component 'big' requires mem_mb >= 100000, but the local sandbox hosts (this machine) have "
        "mem_mb=24000; no other hosts can be used yet"
    )
    assert info.value.exit_code == 2 and info.value.component == "big"
    check_requirements(project, {"small": 1, "here": 1}, PROPS)  # met: nothing raised


def test_the_notice_names_components_whose_resources_are_not_the_sandbox() -> None:
    project = parse_yaml(SPEC, file="spec.yaml")
    assert sandbox_notice(project, {"big": 2, "small": 1, "here": 1}) == (
        "running on local sandbox hosts instead of the resources the spec names: "
        "big on 2 hosts (spec: ssh); small on 1 host (spec: netns:lab, local)"
    )
    assert sandbox_notice(project, {"here": 1}) is None
