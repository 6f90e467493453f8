from plush.controller.failures import FailureLadder


def ladder(**kw: int) -> FailureLadder:
    hosts = {"a1": "a", "a2": "a", "a3": "a", "b1": "b"}
    return FailureLadder(hosts, {"a": 2, "b": 1}, **kw)


def test_restart_then_rematch_then_continue_then_abort() -> None:
    lad = ladder(host_restarts=1)
    assert lad.host_failed("a1", "killed", spares=5).kind == "restart"
    step = lad.host_failed("a1", "killed", spares=5)
    assert step.kind == "rematch" and step.component == "a"
    lad.add_host("a4", "a")
    assert lad.live("a") == ["a2", "a3", "a4"]
    assert lad.host_failed("a2", "x", spares=0).kind == "restart"
    step = lad.host_failed("a2", "x", spares=0)
    assert step.kind == "continue" and "2 live" in step.message
    lad.host_failed("a3", "x", spares=0)
    step = lad.host_failed("a3", "x", spares=0)
    assert step.kind == "abort" and "1 live" in step.message  # only a4 is left of a's min 2


def test_abort_names_component_and_numbers() -> None:
    lad = ladder(host_restarts=0)
    lad.host_failed("a1", "gone", spares=0)
    step = lad.host_failed("a2", "gone", spares=0)
    assert step.kind == "abort"
    assert "'a'" in step.message and "1 live" in step.message and "min of 2" in step.message


def test_dead_host_is_ignored_and_revive_clears() -> None:
    lad = ladder(host_restarts=0)
    assert lad.host_failed("b1", "gone", spares=0).kind == "abort"
    assert lad.host_failed("b1", "gone", spares=0).kind == "ignore"
    lad.revive("b1")
    assert lad.live("b") == ["b1"]
    assert lad.host_failed("zz", "?", spares=1).kind == "ignore"


def test_restart_false_skips_the_restart_rung() -> None:
    lad = ladder(host_restarts=1)
    step = lad.host_failed("a1", "over limits", spares=1, restart=False)
    assert step.kind == "rematch" and "again" not in step.message
    assert lad.restarts == {}  # the restart budget of a1 was not spent
    assert lad.host_failed("b1", "marked failed", spares=0, restart=False).kind == "abort"
    assert lad.component_names() == ["a", "b"]
