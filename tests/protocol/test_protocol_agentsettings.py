"""AgentSettings: the settings that travel to agents, their defaults defined once for both sides.

Regression: the agent assumed ``silence_timeout`` 2.0 and ``ping_timeout`` 1.0 when ``prepare`` did not say,
the controller's defaults were 1.25 and 0.5, and the sans-IO connection had 2.0 and 1.0 of its own.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from plush.config import Settings, _check
from plush.errors import ProtocolError
from plush.protocol.agentsettings import _POSITIVE, DEFAULTS, NAMES, AgentSettings, settings_problem
from plush.protocol.connection import AGENT, CONTROLLER, Connection
from plush.protocol.secret import Secret


def test_both_sides_take_the_same_defaults() -> None:
    controller = Settings()
    assert controller.agent_settings() == DEFAULTS == AgentSettings()
    assert AgentSettings.from_dict({}) == DEFAULTS  # the agent's fallback when prepare does not say
    fields = {f.name: f for f in dataclasses.fields(Settings)}
    for name in NAMES:
        assert fields[name].default is getattr(DEFAULTS, name), f"Settings.{name} has a default of its own"
        assert type(fields[name].default) is type(getattr(DEFAULTS, name))
    assert (DEFAULTS.silence_timeout, DEFAULTS.ping_timeout) == (controller.silence_timeout, controller.ping_timeout)


def test_the_connection_takes_its_liveness_defaults_from_there_too() -> None:
    ctl = Connection(CONTROLLER, Secret("t"), 0.0)
    agent = Connection(AGENT, Secret("t"), 0.0)
    assert ctl.silence_timeout == DEFAULTS.silence_timeout and ctl.ping_timeout == DEFAULTS.ping_timeout
    assert agent.heartbeat_interval == DEFAULTS.heartbeat_interval and agent.silence_timeout is None


def test_the_controller_checks_agree_with_the_wire_checks() -> None:
    """A value the controller accepts for a setting is one the agent accepts (positive where it must be)."""
    for name in NAMES:
        check = _check(name)
        assert check.min == 0, name
        assert check.min_open == (name in _POSITIVE), name


def test_a_controller_setting_travels_as_is() -> None:
    settings = Settings(stop_grace=0.0, hostmon_interval=0.25, output_buffer_bytes=4096, silence_timeout=0)
    sent = settings.agent_settings().to_dict()
    assert sent["stop_grace"] == 0.0 and sent["hostmon_interval"] == 0.25 and sent["silence_timeout"] == 0
    assert AgentSettings.from_dict(sent) == settings.agent_settings()
    assert set(sent) == set(NAMES)


def test_the_agent_refuses_wrong_settings() -> None:
    with pytest.raises(ProtocolError, match="prepare: unknown setting 'heartbeat'"):
        AgentSettings.from_dict({"heartbeat": 1.0})
    with pytest.raises(ProtocolError, match="setting 'stop_grace' must be a number, got '5'"):
        AgentSettings.from_dict({"stop_grace": "5"})
    with pytest.raises(ValueError, match="setting 'hostmon_interval' must be over 0"):
        AgentSettings(hostmon_interval=0.0)
    assert AgentSettings.from_dict({"stop_grace": 2}).stop_grace == 2.0
    assert isinstance(AgentSettings.from_dict({"stop_grace": 2}).stop_grace, float)


_VALUE = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=5),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)


@given(st.dictionaries(st.sampled_from([*NAMES, "x", "", "silence"]), _VALUE, max_size=6))
def test_any_settings_object_is_accepted_whole_or_refused_naming_it(data: dict[str, Any]) -> None:
    problem = settings_problem(data)
    if problem is None:
        made = AgentSettings.from_dict(data)
        for name in NAMES:
            value = getattr(made, name)
            assert value == data.get(name, getattr(DEFAULTS, name))
            assert not isinstance(value, bool) and math.isfinite(value) and value >= 0
    else:
        assert any(repr(name) in problem for name in data)
        with pytest.raises(ProtocolError):
            AgentSettings.from_dict(data)
