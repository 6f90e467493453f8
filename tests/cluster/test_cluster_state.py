"""The state file of a cluster (plush.cluster.state): what a later ``down`` needs, in the user's state dir."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from plush.cluster.hostfiles import HostDirs
from plush.cluster.plan import ClusterError, ClusterPlan
from plush.cluster.state import ClusterState, clusters_dir, load_state, names


@pytest.fixture(autouse=True)
def _state_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))


def test_the_state_round_trips_and_lives_in_the_user_s_state_directory(tmp_path: Path) -> None:
    state = ClusterState(
        ClusterPlan("lab", 4, "10.9.0.0/24", "10mbit", fs_size="2g"), str(tmp_path / "lab"), ["/srv/x"]
    )
    state.cut, state.frozen, state.phase = ["lab-h2"], ["lab-h3"], "up"
    state.save()
    assert state.path == tmp_path / "state" / "plush" / "clusters" / "lab.json"
    again = load_state("lab")
    assert again == state and (again.plan.fs, again.plan.fs_size) == ("tmpfs", "2g")
    assert again.dirs("lab-h1").tmpfs and again.dirs("lab-h1").home == str(tmp_path / "lab/hosts/lab-h1/fs/home")
    assert names() == ["lab"]
    again.forget()
    assert load_state("lab") is None and names() == []


def test_a_file_that_is_not_a_cluster_s_state_is_named(tmp_path: Path) -> None:
    clusters_dir().mkdir(parents=True)
    (clusters_dir() / "bad.json").write_text("{not json")
    (clusters_dir() / "odd.json").write_text('{"name": "odd"}')
    (clusters_dir() / "Not-A-Name.json").write_text("{}")
    with pytest.raises(ClusterError, match=r"bad.json: not a cluster's state"):
        load_state("bad")
    with pytest.raises(ClusterError, match=r"odd.json: not a cluster's state"):
        load_state("odd")
    assert names() == ["bad", "odd"]  # only names a cluster can have
    with pytest.raises(ClusterError, match="bad cluster name"):
        load_state("../x")


def test_a_state_written_before_the_hosts_had_a_file_system_of_their_own_reads_as_the_machine_s_disk(
    tmp_path: Path,
) -> None:
    clusters_dir().mkdir(parents=True)
    older = {"version": 1, "name": "old", "count": 2, "subnet": "10.9.0.0/24", "bandwidth": None, "root": "/x/old"}
    (clusters_dir() / "old.json").write_text(json.dumps(older))
    state = load_state("old")
    assert state is not None and (state.plan.fs, state.plan.fs_size) == ("machine", None)
    assert (
        state.dirs("old-h1") == HostDirs("/x/old/hosts/old-h1")
        and state.dirs("old-h1").tmp == "/x/old/hosts/old-h1/tmp"
    )
