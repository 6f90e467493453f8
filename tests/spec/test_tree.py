"""The block tree and DAG of an application as plain data (plush.spec.tree), what GET /v1/application/tree
answers: every block with its path in walk order, barriers with the component blocks sharing them, the
predecessor edges and levels of each component block, every path one of a listed block."""

from __future__ import annotations

from pathlib import Path

import pytest

from plush.spec.load import load_spec
from plush.spec.tree import block_tree

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_filedist_shares_its_barriers_between_senders_and_receivers() -> None:
    tree = block_tree(load_spec(EXAMPLES / "filedist.xml"))
    assert tree["application"] == "/filedist" and [c["name"] for c in tree["components"]] == ["senders", "receivers"]
    shared = {b["name"]: b["shared_by"] for b in tree["barriers"]}
    assert shared == {"bootstrap": ["/filedist/senders", "/filedist/receivers"]} | {
        "done": ["/filedist/senders", "/filedist/receivers"]
    }
    assert {"from": "/filedist/senders/prepare", "to": "/filedist/senders/bootstrap"} in tree["edges"]
    assert tree["order"]["/filedist/senders"][0] == ["/filedist/senders/prepare"]


@pytest.mark.parametrize("spec", sorted(p.name for p in EXAMPLES.glob("*.xml")))
def test_every_path_of_the_edges_order_and_barriers_is_a_listed_block(spec: str) -> None:
    tree = block_tree(load_spec(EXAMPLES / spec))
    paths = [b["path"] for b in tree["blocks"]]
    assert len(paths) == len(set(paths))
    named = {p for e in tree["edges"] for p in (e["from"], e["to"])}
    named |= {p for levels in tree["order"].values() for level in levels for p in level}
    named |= {p for b in tree["barriers"] for p in (*b["paths"], *b["shared_by"])}
    assert named <= set(paths)
    for block in tree["blocks"]:
        assert block["path"] == block["parent"] + "/" + block["name"]
