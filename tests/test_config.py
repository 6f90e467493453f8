import dataclasses
import math
import re
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

import plush.shell.commands  # noqa: F401  (registers the subcommands)
from plush.config import NOT_GIVEN, Settings, check_setting, is_plush_variable, load_settings
from plush.errors import ConfigError
from plush.shell.cli import cli


def test_precedence_flag_env_user_system_default(tmp_path: Path) -> None:
    user = tmp_path / "user.toml"
    system = tmp_path / "system.toml"
    user.write_text("heartbeat_interval = 3.0\nping_timeout = 4.0\n")
    system.write_text("heartbeat_interval = 9.0\nping_timeout = 9.0\nstop_grace = 7\n")
    env = {"PLUSH_PING_TIMEOUT": "5.5"}
    settings, sources = load_settings(
        {"runs_dir": "out", "stop_grace": NOT_GIVEN}, env=env, user_file=user, system_file=system
    )
    assert settings.runs_dir == "out" and sources["runs_dir"] == "flag --runs-dir"
    assert settings.ping_timeout == 5.5 and sources["ping_timeout"] == "env PLUSH_PING_TIMEOUT"
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


# --- validation (issue 7, item 16) ----------------------------------------------------------------------------

ALL = [f.name for f in dataclasses.fields(Settings)]
POSITIVE_DURATIONS = ["heartbeat_interval", "ping_timeout", "join_timeout", "hostmon_interval"]


def _toml_value(value: float) -> str:
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return repr(value)


def _load(source: str, name: str, text: str, where: Path) -> tuple[Settings, dict[str, str]]:
    """Load with one setting given as ``text`` through ``source``; the other layers are empty."""
    none = where / "absent.toml"
    if source == "env":
        return load_settings(env={f"PLUSH_{name.upper()}": text}, user_file=none, system_file=none)
    if source == "flag":
        return load_settings({name: text}, env={}, user_file=none, system_file=none)
    path = where / f"{source}.toml"
    path.write_text(f"{name} = {text}\n")
    if source == "user":
        return load_settings(env={}, user_file=path, system_file=none)
    return load_settings(env={}, user_file=none, system_file=path)


def _source_named(source: str, name: str, where: Path) -> str:
    return {
        "env": f"PLUSH_{name.upper()}",
        "flag": "--" + name.replace("_", "-"),
        "user": str(where / "user.toml"),
        "system": str(where / "system.toml"),
    }[source]


@hsettings(max_examples=300, deadline=None)
@given(
    name=st.sampled_from(POSITIVE_DURATIONS),
    value=st.floats(allow_nan=True, allow_infinity=True),
    source=st.sampled_from(["env", "flag", "user", "system"]),
)
def test_a_positive_duration_is_any_float_only_when_finite_and_positive(
    tmp_path_factory: pytest.TempPathFactory, name: str, value: float, source: str
) -> None:
    where = tmp_path_factory.mktemp("cfg")
    text = _toml_value(value) if source in ("user", "system") else repr(value)
    try:
        loaded, sources = _load(source, name, text, where)
    except ConfigError as exc:
        assert not (math.isfinite(value) and 0 < value <= 365 * 86400), f"{value!r} was refused: {exc}"
        message = str(exc)
        assert repr(name) in message and _source_named(source, name, where) in message, message
        assert "\n" not in message
        return
    assert math.isfinite(value) and value > 0, f"{value!r} was accepted for {name}"
    assert getattr(loaded, name) == value and isinstance(getattr(loaded, name), float)
    assert sources[name] != "default"


@hsettings(max_examples=300, deadline=None)
@given(name=st.sampled_from(ALL), text=st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\0")))
def test_any_environment_text_is_a_valid_value_or_one_clear_error(name: str, text: str) -> None:
    env = {f"PLUSH_{name.upper()}": text}
    try:
        loaded, _ = load_settings(env=env, user_file=Path("/nonexistent/u"), system_file=Path("/nonexistent/s"))
    except ConfigError as exc:
        assert repr(name) in str(exc) and f"PLUSH_{name.upper()}" in str(exc) and "\n" not in str(exc)
        assert exc.setting == name
        return
    value = getattr(loaded, name)
    default = getattr(Settings(), name)
    assert default is None or type(value) is type(default)  # an optional setting (seed): checked below
    assert check_setting(name, value) is None  # what was accepted obeys the setting's constraint


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ('heartbeat_interval = "fast"', "heartbeat_interval"),
        ("heartbeat_interval = true", "heartbeat_interval"),
        ("heartbeat_interval = [1]", "heartbeat_interval"),
        ('stop_grace = "5"', "stop_grace"),
        ("max_local_hosts = 2.5", "max_local_hosts"),
        ("max_local_hosts = 0", "max_local_hosts"),
        ("host_restarts = -1", "host_restarts"),
        ("limit_samples = 0", "limit_samples"),
        ("stop_grace = -0.5", "stop_grace"),
        ("output_buffer_bytes = -1", "output_buffer_bytes"),
        ("runs_dir = 5", "runs_dir"),
        ('runs_dir = ""', "runs_dir"),
        ('runs_dir = "a\\u0000b"', "runs_dir"),
        ('listen_host = "127.0.0.1 evil"', "listen_host"),
        ("reconnect_window = nan", "reconnect_window"),
        ("agent_grace = inf", "agent_grace"),
    ],
)
def test_a_bad_value_in_a_file_names_the_setting_and_the_file(tmp_path: Path, line: str, expected: str) -> None:
    user = tmp_path / "config.toml"
    user.write_text(line + "\n")
    with pytest.raises(ConfigError) as info:
        load_settings(env={}, user_file=user, system_file=tmp_path / "none")
    assert f"setting {expected!r}" in str(info.value) and str(user) in str(info.value)
    assert info.value.setting == expected and info.value.source == f"user file {user}"


def test_zero_is_allowed_where_it_means_off_or_at_once(tmp_path: Path) -> None:
    names = ("stop_grace", "reconnect_window", "silence_timeout", "host_restarts", "agent_grace")
    env = {f"PLUSH_{n.upper()}": "0" for n in names}
    loaded, _ = load_settings(env=env, user_file=tmp_path / "n", system_file=tmp_path / "n")
    assert all(getattr(loaded, n) == 0 for n in names)


def test_every_setting_declares_its_constraint_and_its_default_obeys_it() -> None:
    for f in dataclasses.fields(Settings):
        assert "check" in f.metadata, f"setting {f.name} declares no constraint"
        assert check_setting(f.name, f.default) is None, f.name


def test_a_misspelt_plush_variable_is_warned_about_with_the_closest_name(tmp_path: Path) -> None:
    env = {
        "PLUSH_STOP_GRCE": "2",  # misspelt setting
        "PLUSH_HOST": "local-1",  # set by Plush for processes: not a setting, not a mistake
        "PLUSH_RUN_ID": "x",
        "PLUSH_HOSTS_SENDERS": "local-1,local-2",
        "PLUSH_ZZZZZZ": "1",  # nothing close
        "HOME": "/root",
    }
    warned: list[str] = []
    loaded, _ = load_settings(env=env, user_file=tmp_path / "n", system_file=tmp_path / "n", warn=warned.append)
    assert loaded.stop_grace == Settings().stop_grace
    assert warned == [
        "PLUSH_STOP_GRCE is not a Plush setting (ignored); did you mean PLUSH_STOP_GRACE?",
        "PLUSH_ZZZZZZ is not a Plush setting (ignored); `plush config show` lists them",
    ]


def test_an_unknown_key_in_a_file_suggests_the_closest_setting(tmp_path: Path) -> None:
    user = tmp_path / "c.toml"
    user.write_text("stop_grce = 1\n")
    with pytest.raises(ConfigError, match="did you mean 'stop_grace'"):
        load_settings(env={}, user_file=user, system_file=tmp_path / "none")


def test_every_plush_variable_in_the_code_is_a_setting_or_one_plush_sets(repo_root: Path) -> None:
    """The list of variables that are not misspellings stays true to the code."""
    settings_vars = {f"PLUSH_{n.upper()}" for n in ALL}
    for path in (repo_root / "src" / "plush").rglob("*.py"):
        for var in re.findall(r"PLUSH_[A-Z0-9_]+", path.read_text()):
            assert var in settings_vars or is_plush_variable(var), f"{path}: {var} unknown to plush.config"


def test_config_show_rejects_a_bad_value_in_one_line_with_exit_2() -> None:
    result = CliRunner().invoke(cli, ["config", "show"], env={"PLUSH_HEARTBEAT_INTERVAL": "nan"})
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        "plush: error: setting 'heartbeat_interval' from env PLUSH_HEARTBEAT_INTERVAL: 'nan' is not valid: "
        "expected a finite number > 0 and <= 31536000 (seconds)"
    ]


def test_config_show_warns_about_a_misspelt_variable_and_names_sources() -> None:
    result = CliRunner().invoke(cli, ["config", "show"], env={"PLUSH_STOP_GRCE": "2", "PLUSH_PING_TIMEOUT": "0.75"})
    assert result.exit_code == 0
    assert result.stderr.splitlines() == [
        "plush: warning: PLUSH_STOP_GRCE is not a Plush setting (ignored); did you mean PLUSH_STOP_GRACE?"
    ]
    line = next(x for x in result.stdout.splitlines() if x.startswith("ping_timeout "))
    assert "0.75" in line and "(env PLUSH_PING_TIMEOUT)" in line


def test_settings_made_in_code_are_checked_too() -> None:
    with pytest.raises(ConfigError, match="setting 'ping_timeout'"):
        Settings(ping_timeout=math.nan)
    with pytest.raises(ConfigError, match="setting 'max_local_hosts'"):
        Settings(max_local_hosts=True)
    assert Settings(stop_grace=2).stop_grace == 2


def test_a_path_flag_is_taken_as_its_text(tmp_path: Path) -> None:
    loaded, _ = load_settings(
        {"runs_dir": tmp_path / "runs"}, env={}, user_file=tmp_path / "n", system_file=tmp_path / "n"
    )
    assert loaded.runs_dir == str(tmp_path / "runs")


def test_results_mode_is_private_by_default_and_only_private_or_shared(tmp_path: Path) -> None:
    none = tmp_path / "none"
    settings, sources = load_settings(env={}, user_file=none, system_file=none)
    assert settings.results_mode == "private" and sources["results_mode"] == "default"
    shared, _ = load_settings(env={"PLUSH_RESULTS_MODE": "shared"}, user_file=none, system_file=none)
    assert shared.results_mode == "shared"
    with pytest.raises(ConfigError, match=r"results_mode.*env.*one of private, shared"):
        load_settings(env={"PLUSH_RESULTS_MODE": "public"}, user_file=none, system_file=none)


def test_the_pool_setting_is_a_path_or_empty_for_the_sandbox(tmp_path: Path) -> None:
    none = tmp_path / "none"
    settings, sources = load_settings(env={}, user_file=none, system_file=none)
    assert settings.pool == "" and sources["pool"] == "default"
    from_env, _ = load_settings(env={"PLUSH_POOL": "lab.xml"}, user_file=none, system_file=none)
    assert from_env.pool == "lab.xml"
    flag, _ = load_settings({"pool": "x.yaml"}, env={"PLUSH_POOL": "lab.xml"}, user_file=none, system_file=none)
    assert flag.pool == "x.yaml"
    with pytest.raises(ConfigError, match=r"pool.*PLUSH_POOL.*pool file's path"):
        load_settings(env={"PLUSH_POOL": "a\nb"}, user_file=none, system_file=none)
    assert is_plush_variable("PLUSH_PROP_SITE") and is_plush_variable("PLUSH_VIP") and is_plush_variable("PLUSH_VN")


def test_the_seed_setting_is_a_whole_number_or_not_set(tmp_path: Path) -> None:
    none = tmp_path / "none"
    settings, sources = load_settings(env={}, user_file=none, system_file=none)
    assert settings.seed is None and sources["seed"] == "default"
    from_env, sources = load_settings(env={"PLUSH_SEED": "42"}, user_file=none, system_file=none)
    assert from_env.seed == 42 and sources["seed"] == "env PLUSH_SEED"
    flag, _ = load_settings({"seed": "-7"}, env={"PLUSH_SEED": "42"}, user_file=none, system_file=none)
    assert flag.seed == -7
    empty, _ = load_settings(env={"PLUSH_SEED": " "}, user_file=none, system_file=none)
    assert empty.seed is None  # an empty variable: not set (pool order)
    user = tmp_path / "user.toml"
    user.write_text("seed = 5\n")
    assert load_settings(env={}, user_file=user, system_file=none)[0].seed == 5
    with pytest.raises(ConfigError, match=r"seed.*PLUSH_SEED.*'x'.*whole number or empty"):
        load_settings(env={"PLUSH_SEED": "x"}, user_file=none, system_file=none)
    user.write_text('seed = "5"\n')
    with pytest.raises(ConfigError, match=r"seed.*whole number"):
        load_settings(env={}, user_file=user, system_file=none)
    with pytest.raises(ConfigError, match=r"seed"):
        Settings(seed=1.5)  # type: ignore[arg-type]


def test_the_discover_setting_is_a_command_line_or_empty(tmp_path: Path) -> None:
    none = tmp_path / "none"
    settings, _ = load_settings(env={}, user_file=none, system_file=none)
    assert settings.discover == ""
    from_env, _ = load_settings(env={"PLUSH_DISCOVER": "./find.py --site ucsd"}, user_file=none, system_file=none)
    assert from_env.discover == "./find.py --site ucsd"
    with pytest.raises(ConfigError, match=r"discover.*PLUSH_DISCOVER.*command line"):
        load_settings(env={"PLUSH_DISCOVER": "a\nb"}, user_file=none, system_file=none)
