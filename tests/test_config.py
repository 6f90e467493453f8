from pathlib import Path

import pytest

from plush.config import NOT_GIVEN, Settings, load_settings
from plush.errors import ConfigError


def test_precedence_flag_env_user_system_default(tmp_path: Path) -> None:
    user = tmp_path / "user.toml"
    system = tmp_path / "system.toml"
    user.write_text("heartbeat_interval = 3.0\nping_timeout = 4.0\n")
    system.write_text("heartbeat_interval = 9.0\nping_timeout = 9.0\nstop_grace = 7\n")
    env = {"PLUSH_PING_TIMEOUT": "5.5"}
    settings, sources = load_settings(
        {"runs_dir": "out", "stop_grace": NOT_GIVEN}, env=env, user_file=user, system_file=system
    )
    assert settings.runs_dir == "out" and sources["runs_dir"] == "flag"
    assert settings.ping_timeout == 5.5 and sources["ping_timeout"] == "env"
    assert settings.heartbeat_interval == 3.0 and sources["heartbeat_interval"].startswith("user file")
    assert settings.stop_grace == 7.0 and sources["stop_grace"].startswith("system file")
    assert settings.join_timeout == Settings().join_timeout and sources["join_timeout"] == "default"


def test_bad_value_names_its_source(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"PLUSH|env"):
        load_settings(env={"PLUSH_MAX_LOCAL_HOSTS": "many"}, user_file=tmp_path / "no", system_file=tmp_path / "no")


def test_unknown_key_in_file_is_rejected(tmp_path: Path) -> None:
    user = tmp_path / "c.toml"
    user.write_text("heartbeat = 1\n")
    with pytest.raises(ConfigError, match="unknown setting"):
        load_settings(env={}, user_file=user, system_file=tmp_path / "none")
