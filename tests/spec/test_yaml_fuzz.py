"""Broken and mutated YAML never raises anything but SpecError, and each problem has a location."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from plush.errors import SpecError
from plush.spec.yamlreader import parse_yaml

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
SEEDS = [p.read_text() for p in sorted(EXAMPLES.glob("*.yaml"))]

#: characters that matter to YAML's grammar, to mutate with
_SYNTAX = st.sampled_from([*":-[]{},#&*!|>'\"%@`?\n\t ~0123456789.", "<<: ", "\n  - ", ": [", "null", "yes"])


def _check(text: str) -> None:
    try:
        parse_yaml(text, file="fuzz.yaml")
    except SpecError as exc:
        assert exc.problems
        for problem in exc.problems:
            assert problem.message
            assert problem.file == "fuzz.yaml"


@st.composite
def mutated(draw: st.DrawFn) -> str:
    text = draw(st.sampled_from(SEEDS))
    for _ in range(draw(st.integers(min_value=1, max_value=6))):
        at = draw(st.integers(min_value=0, max_value=len(text)))
        op = draw(st.sampled_from(["insert", "delete", "replace", "cut"]))
        if op == "insert":
            text = text[:at] + draw(_SYNTAX) + text[at:]
        elif op == "delete":
            text = text[:at] + text[at + draw(st.integers(min_value=1, max_value=20)) :]
        elif op == "replace":
            text = text[:at] + draw(_SYNTAX) + text[at + 1 :]
        else:
            text = text[:at]
    return text


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_mutated_specs_raise_only_spec_errors(text: str) -> None:
    _check(text)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_arbitrary_text_raises_only_spec_errors(text: str) -> None:
    _check(text)


@settings(max_examples=200, deadline=None)
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=5),
        lambda kids: (
            st.lists(kids, max_size=3)
            | st.dictionaries(
                st.sampled_from(
                    [
                        "project",
                        "application",
                        "execution",
                        "blocks",
                        "process",
                        "run",
                        "components",
                        "hosts",
                        "software",
                        "barrier",
                        "workflow",
                        "task",
                        "env",
                        "exit",
                    ]
                ),
                kids,
                max_size=4,
            )
        ),
        max_leaves=20,
    )
)
def test_well_formed_but_wrongly_shaped_documents(data: object) -> None:
    import yaml

    _check(yaml.safe_dump(data))


@pytest.mark.parametrize(
    "text",
    [
        "\x00",
        "project: [",
        "&a [*a]",
        "a: &x [*x, *x]\n",
        "[" * 5000,
        "project: x\napplication: {execution: {c: {blocks: [&b {process: p, run: [*b]}]}}}\n",
        "--- a\n--- b\n",
        "project: !!python/object:os.system x\napplication: {}\n",
        "project: demo\napplication: {execution: {c: {blocks: [{<<: {process: p}, run: [x]}]}}}\n",
    ],
)
def test_nasty_inputs(text: str) -> None:
    with pytest.raises(SpecError):
        parse_yaml(text, file="fuzz.yaml")
