"""The agent zipapp: reproducible, named by its content, and complete on an isolated interpreter."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from plush.launch.bundle import _build, _package_root, agent_bundle, bundle_modules


@pytest.fixture(autouse=True)
def _private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The controller's copy of the bundle goes to the test's cache."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    agent_bundle.cache_clear()
    yield
    agent_bundle.cache_clear()


def test_the_bundle_is_reproducible_and_named_by_its_hash(tmp_path: Path) -> None:
    bundle = agent_bundle()
    assert _build(_package_root()) == bundle.data
    assert bundle.name == f"agent-{bundle.digest}.pyz" and bundle.path.read_bytes() == bundle.data
    assert bundle.path == tmp_path / "plush" / "agents" / bundle.name


def test_the_zipapp_alone_imports_every_module_it_holds_and_runs_the_agent() -> None:
    bundle = agent_bundle()
    modules = sorted(bundle_modules())
    assert "plush.agent.runtime" in modules and not any(m.startswith("plush.controller") for m in modules)
    code = f"import importlib, sys; sys.path.insert(0, {str(bundle.path)!r})\n"
    code += f"for m in {modules!r}: importlib.import_module(m)"
    # -I: no site-packages, no PYTHONPATH, no current directory: only the zipapp and the standard library
    subprocess.run([sys.executable, "-I", "-c", code], check=True, cwd="/")
    out = subprocess.run([sys.executable, "-I", str(bundle.path), "--help"], capture_output=True, text=True, check=True)
    assert "--connect HOST:PORT" in out.stdout and "--stdio SOCKET" in out.stdout
    # the same file is the relay of a later SSH session: with no agent at the socket it says so (exit 3)
    relay = subprocess.run([sys.executable, "-I", str(bundle.path), "--relay", "/nonexistent/agent.sock"], check=False)
    assert relay.returncode == 3
    # and the leftover sweep of an SSH host: nothing of that run and mark here
    swept = subprocess.run(
        [sys.executable, "-I", str(bundle.path), "--sweep", "no-such-run", "PLUSH_SSH_RUN=ssh-x"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert swept.stdout == "\n"
