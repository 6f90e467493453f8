"""plan(project, pool, wanted, seed): pure; the same matching a run would use, with order and installs."""

from __future__ import annotations

import pytest

from plush.controller.plan import plan
from plush.errors import MatchError
from plush.resources.host import Host, Pool
from plush.spec.yamlreader import parse_yaml

SPEC = """\
project: p
software:
  tools: {packages: [a.txt]}
  data: {packages: [b.txt]}
components:
  servers: {hosts: 1..10, software: [tools, data], resources: [{type: ssh, group: lab}]}
  clients: {hosts: 2, software: [tools], require: {site: ucsd}}
application:
  execution:
    servers:
      blocks:
        - process: serve
          run: ["true"]
    clients:
      blocks:
        - process: warm
          run: ["true"]
        - process: fetch
          run: ["true"]
          after: [warm]
        - process: log
          run: ["true"]
"""


def pool() -> Pool:
    return Pool(
        [
            *(Host(f"lab{i}", "x", group="lab") for i in range(1, 4)),
            *(Host(f"ucsd{i}", "x", group="edge", properties={"site": "ucsd"}) for i in range(1, 4)),
        ]
    )


def test_a_plan_matches_the_pool_and_lists_order_and_installs() -> None:
    p = plan(parse_yaml(SPEC), pool())
    assert p.matching.hosts == {"servers": ("lab1", "lab2", "lab3"), "clients": ("ucsd1", "ucsd2")}
    assert p.matching.spares == {"servers": (), "clients": ("ucsd3",)}
    assert p.order == {"/p/servers": ("servers", [["serve"]]), "/p/clients": ("clients", [["warm", "log"], ["fetch"]])}
    assert p.installs["lab1"] == ("tools", "data") and p.installs["ucsd1"] == ("tools",)
    assert p.hosts_of_software("data") == ["lab1", "lab2", "lab3"]
    data = p.to_dict()
    assert data["components"]["clients"] == {"hosts": ["ucsd1", "ucsd2"], "spares": ["ucsd3"], "software": ["tools"]}
    assert data["pool"] == {"hosts": 6}


def test_wanted_counts_every_component_with_a_star_and_one_by_name() -> None:
    project = parse_yaml(SPEC)
    assert len(plan(project, pool(), {"servers": 2}).matching.hosts["servers"]) == 2
    assert plan(project, pool(), {"*": 2}).matching.hosts == {
        "servers": ("lab1", "lab2"),
        "clients": ("ucsd1", "ucsd2"),
    }
    assert plan(project, pool(), seed=5) == plan(project, pool(), seed=5)


def test_no_matching_raises_the_matchers_error() -> None:
    small = Pool([Host("lab1", "x", group="lab"), Host("ucsd1", "x", group="edge", properties={"site": "ucsd"})])
    with pytest.raises(
        MatchError, match=r"^clients: need 2, 1 candidate: 1 host lacks site==ucsd \(lab1 has no site\)$"
    ):
        plan(parse_yaml(SPEC), small)
