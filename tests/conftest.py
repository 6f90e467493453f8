"""Shared fixtures. Tests never read the user's real settings files."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

# No timing assertions in tests: Hypothesis's per-example deadline and its "too slow" health check are both
# timings, and a loaded machine (CI shares its cores) trips them without any fault in the code under test.
settings.register_profile(
    "plush", deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
settings.load_profile("plush")


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / "config"))
    monkeypatch.setenv("XDG_STATE_HOME", str(home / "state"))
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(home / "run"))
    for var in [v for v in __import__("os").environ if v.startswith("PLUSH_")]:
        monkeypatch.delenv(var)
    yield


@pytest.fixture
def repo_root() -> Path:
    return Path(__file__).resolve().parents[1]
