"""``<resource type="netns">`` and ``create resources`` without root: one error line, exit 2, nothing made.

As root (CI), the hosts are made: tests/integration/test_cluster.py. Here the controller is told it is not root
(:func:`plush.controller.resourcing.is_root`): the one failure a root test run cannot produce otherwise.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from plush import Controller
from plush.cluster.plan import ClusterError
from plush.config import Settings
from plush.controller import resourcing
from plush.shell.commands import main

SPEC = """\
project: leased
components:
  workers:
    hosts: 2
    resources: [netns]
  helpers:
    hosts: 1
application:
  execution:
    workers:
      blocks:
        - process: p
          run: ["true"]
"""


@pytest.fixture
def spec(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(resourcing, "is_root", lambda: False)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    path = tmp_path / "leased.yaml"
    path.write_text(SPEC)
    return path


def test_plush_run_of_a_netns_spec_as_another_user_is_one_error_line_exit_2(
    spec: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as done:
        main(["run", str(spec), "--runs-dir", str(tmp_path / "runs")])
    err = capsys.readouterr().err.splitlines()
    assert done.value.code == 2
    assert err == [
        'plush: error: component(s) workers ask for <resource type="netns"> hosts, made on this machine as network '
        "namespaces: that needs root (run as root, or give a pool with -d POOLFILE to run elsewhere)"
    ]
    assert not (tmp_path / "state" / "plush" / "clusters").exists()  # nothing recorded, nothing made


async def test_create_resources_as_another_user_is_refused_and_without_netns_connects_the_pool(
    spec: Path, tmp_path: Path
) -> None:
    controller = Controller(Settings(runs_dir=str(tmp_path / "runs")))
    try:
        controller.load(spec)
        with pytest.raises(ClusterError, match="that needs root") as refused:
            await controller.create_resources()
        assert refused.value.exit_code == 2 and controller.info("nodes") == []
        controller.project = None  # no application: only the pool's hosts not connected are connected
        assert (await controller.create_resources()).to_dict() == {"created": [], "cluster": None, "connected": []}
    finally:
        await controller.quit()
