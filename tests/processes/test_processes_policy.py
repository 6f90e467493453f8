"""Exit policies: the decision table of PLUSH-FORMAT.md "Exit policies", and Backoff."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from plush.processes.policy import (
    SUCCESS,
    Backoff,
    Decision,
    ExitStatus,
    decide,
    policy_matches,
)
from plush.spec.model import ACTIONS, ExitPolicy

CODE3 = ExitStatus(code=3)
CODE1 = ExitStatus(code=1)
KILLED = ExitStatus(signal=9)


def test_exit_status_from_returncode() -> None:
    assert ExitStatus.from_returncode(0) == ExitStatus(code=0)
    assert ExitStatus.from_returncode(7) == ExitStatus(code=7)
    assert ExitStatus.from_returncode(-15) == ExitStatus(signal=15)
    assert ExitStatus(signal=15).signal_name == "SIGTERM"
    assert str(ExitStatus(signal=9)) == "killed by signal 9 (SIGKILL)"
    assert str(CODE3) == "exit code 3"
    assert ExitStatus.from_dict(KILLED.to_dict()) == KILLED
    assert ExitStatus.from_dict(CODE3.to_dict()) == CODE3
    with pytest.raises(ValueError):
        ExitStatus()
    with pytest.raises(ValueError):
        ExitStatus(code=1, signal=2)


@pytest.mark.parametrize(
    ("match", "status", "expected"),
    [
        ("3", CODE3, True),
        ("3", CODE1, False),
        ("3", KILLED, False),
        ("nonzero", CODE1, True),
        ("nonzero", KILLED, False),
        ("signal", KILLED, True),
        ("signal", CODE3, False),
        ("*", CODE3, True),
        ("*", KILLED, True),
        ("*", ExitStatus(code=0), False),
    ],
)
def test_policy_matches(match: str, status: ExitStatus, expected: bool) -> None:
    assert policy_matches(match, status) is expected


@pytest.mark.parametrize("bad", ["", "three", "-1", "sig"])
def test_bad_match_is_rejected(bad: str) -> None:
    with pytest.raises(ValueError, match="bad exit_policy match"):
        policy_matches(bad, CODE1)


def test_exit_zero_is_always_success_even_with_a_policy_for_zero() -> None:
    d = decide([ExitPolicy(match="0", action="abort")], ExitStatus(code=0), 0, "abort")
    assert d == Decision(SUCCESS, "exit code 0 is success")
    assert d.completes_block


def test_no_policy_takes_the_application_default() -> None:
    assert decide([], CODE1, 0, "abort") == Decision("abort", "application on_failure")
    d = decide([ExitPolicy(match="3", action="ignore")], KILLED, 5, "restart_process")
    assert d.action == "restart_process"
    assert d.rule == "application on_failure"
    assert d.restarts_left is None  # a service default restart is unbounded here


def test_first_match_wins() -> None:
    policies = [
        ExitPolicy(match="3", action="ignore"),
        ExitPolicy(match="nonzero", action="restart_process"),
        ExitPolicy(match="*", action="abort"),
    ]
    d3 = decide(policies, CODE3, 0, "abort")
    assert (d3.action, d3.rule) == ("ignore", "exit_policy #1 match=3")
    assert d3.completes_block
    assert decide(policies, CODE1, 0, "abort").action == "restart_process"
    ds = decide(policies, KILLED, 0, "restart_application")
    assert (ds.action, ds.rule) == ("abort", "exit_policy #3 match=*")


def test_restarts_are_bounded_then_the_default_applies() -> None:
    policies = [ExitPolicy(match="nonzero", action="restart_process", max_restarts=2)]
    first = decide(policies, CODE1, 0, "ignore")
    second = decide(policies, CODE1, 1, "ignore")
    assert (first.action, first.restarts_left) == ("restart_process", 1)
    assert (second.action, second.restarts_left) == ("restart_process", 0)
    spent = decide(policies, CODE1, 2, "ignore")
    assert spent.action == "ignore"
    assert "spent max_restarts=2" in spent.rule
    assert "application on_failure" in spent.rule


@pytest.mark.parametrize(
    ("policy_action", "default", "expected"),
    [
        ("restart_process", "restart_process", "abort"),  # the default would loop: abort
        ("restart_application", "restart_application", "abort"),
        ("restart_application", "restart_process", "abort"),
        ("restart_process", "restart_application", "restart_application"),
        ("restart_process", "abort", "abort"),
    ],
)
def test_spent_restarts_never_loop(policy_action: str, default: str, expected: str) -> None:
    policies = [ExitPolicy(match="*", action=policy_action, max_restarts=0)]
    assert decide(policies, CODE1, 0, default).action == expected


def test_bad_actions_and_counts_are_rejected() -> None:
    with pytest.raises(ValueError, match="default action"):
        decide([], CODE1, 0, "explode")
    with pytest.raises(ValueError, match="exit_policy action"):
        decide([ExitPolicy(match="*", action="explode")], CODE1, 0, "abort")
    with pytest.raises(ValueError, match="restarts_so_far"):
        decide([], CODE1, -1, "abort")


statuses = st.one_of(
    st.builds(ExitStatus, code=st.integers(0, 255)),
    st.builds(ExitStatus, signal=st.integers(1, 64)),
)
matches = st.one_of(st.sampled_from(["*", "nonzero", "signal"]), st.integers(0, 5).map(str))
actions = st.sampled_from(sorted(ACTIONS))
policy_lists = st.lists(
    st.builds(ExitPolicy, match=matches, action=actions, max_restarts=st.none() | st.integers(0, 5)),
    max_size=5,
)


@given(policy_lists, statuses, st.integers(0, 20), actions)
def test_decision_properties(policies: list[ExitPolicy], status: ExitStatus, restarts: int, default: str) -> None:
    d = decide(policies, status, restarts, default)
    assert d.action in ACTIONS | {SUCCESS}
    if status.success:
        assert d.action == SUCCESS
        return
    first = next((p for p in policies if policy_matches(p.match, status)), None)
    if first is None:
        assert (d.action, d.rule) == (default, "application on_failure")
        return
    assert d.rule.startswith(f"exit_policy #{policies.index(first) + 1} ")
    if first.max_restarts is not None and d.action == first.action and first.action.startswith("restart"):
        # a bounded restart is only granted while restarts remain
        assert restarts < first.max_restarts
        assert d.restarts_left == first.max_restarts - restarts - 1


@given(policy_lists, statuses, actions)
def test_bounded_restart_loops_end(policies: list[ExitPolicy], status: ExitStatus, default: str) -> None:
    """Feeding each restart back in, a process restarted by bounded policies is not restarted forever."""
    if any(p.max_restarts is None for p in policies) or default == "restart_process":
        return
    restarts = 0
    while decide(policies, status, restarts, default).action == "restart_process":
        restarts += 1
        assert restarts <= 6


def test_backoff_grows_and_caps() -> None:
    b = Backoff(initial=0.5, maximum=8.0, factor=2.0, jitter=0.0)
    assert [b.delay(n) for n in range(6)] == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0]
    assert b.delay(10_000) == 8.0  # no overflow for silly attempt numbers


def test_backoff_jitter_stays_within_bounds_and_is_reproducible() -> None:
    b = Backoff(initial=1.0, maximum=10.0, jitter=0.5)
    delays = [b.delay(n, random.Random(n)) for n in range(12)]
    assert delays == [b.delay(n, random.Random(n)) for n in range(12)]
    for n, d in enumerate(delays):
        assert b.cap(n) * 0.5 <= d <= b.cap(n) <= 10.0
    assert len({b.delay(3, random.Random(s)) for s in range(20)}) > 1  # jitter spreads hosts


@pytest.mark.parametrize(
    "kwargs", [{"initial": -1.0}, {"initial": 5.0, "maximum": 1.0}, {"factor": 0.5}, {"jitter": 1.5}]
)
def test_backoff_rejects_bad_parameters(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        Backoff(**kwargs)
