from pathlib import Path

import pytest

from plush.controller.rundir import RunDir, new_run_id


def test_layout_and_escape_guard(tmp_path: Path) -> None:
    rd = RunDir.create(tmp_path / "runs", "r1")
    assert rd.shared.is_dir() and rd.root.name == "r1"
    assert rd.log("local-1", "/app/senders/serve/srv", 2, "stdout").name == "senders.serve.srv.2.stdout"
    assert rd.output("local-1", "res/a.csv").is_relative_to(rd.host("local-1"))
    with pytest.raises(ValueError, match="escapes"):
        rd.output("local-1", "../../x")
    with pytest.raises(FileExistsError):
        RunDir.create(tmp_path / "runs", "r1")


def test_run_ids_are_unique_and_sortable() -> None:
    ids = {new_run_id(0.0) for _ in range(50)}
    assert len(ids) > 40
    assert new_run_id(1000.0) < new_run_id(2_000_000_000.0)
