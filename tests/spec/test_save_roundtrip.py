"""``save FILE`` (:meth:`plush.Controller.save`): the loaded application written as Plush XML loads back to the
same model -- for generated specs (Hypothesis) and for every example of ``examples/`` (XML and YAML), saved
beside their spec or elsewhere (relative paths rewritten, naming the same files); an existing file is
replaced only when asked."""

from __future__ import annotations

import os
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from strategies import projects

from plush.config import Settings
from plush.controller.api import Controller
from plush.controller.saving import rebase, save_spec
from plush.errors import PlushError
from plush.spec.load import load_spec
from plush.spec.model import Project, WorkflowBlock

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
SPECS = sorted(p for p in EXAMPLES.iterdir() if p.suffix in (".xml", ".yaml"))


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
)
@given(projects())
def test_a_saved_generated_spec_loads_back_to_the_same_model(tmp_path: Path, project: Project) -> None:
    project = replace(project, source=str(tmp_path / "loaded.xml"))  # loaded from the directory it is saved to
    path = save_spec(project, tmp_path / "saved.xml", overwrite=True)
    assert load_spec(path) == project


def _files(project: Project, base: Path) -> list[str]:
    """Every local file the spec names, as absolute paths from ``base`` (its directory)."""
    named = [p.path for sw in project.software for p in sw.packages]
    named += [f for _, b in project.walk() if isinstance(b, WorkflowBlock) for f in b.data_files]
    return [os.path.normpath(base / f) for f in named if "://" not in f]


@pytest.mark.parametrize("spec", SPECS, ids=[p.name for p in SPECS])
def test_every_example_saved_loads_back_to_the_same_model(tmp_path: Path, spec: Path) -> None:
    beside = tmp_path / "examples"
    shutil.copytree(EXAMPLES, beside)
    controller = Controller(Settings(runs_dir=str(tmp_path / "runs")))
    loaded = controller.load(beside / spec.name)
    same_dir = controller.save(beside / "saved.xml")
    assert load_spec(same_dir) == loaded  # beside its spec: the very same model

    elsewhere = tmp_path / "other" / "deeper"
    elsewhere.mkdir(parents=True)
    moved = load_spec(controller.save(elsewhere / "saved.xml"))
    assert moved == rebase(loaded, beside, elsewhere)
    assert _files(moved, elsewhere) == _files(loaded, beside)  # the same files, named from the new place
    for name in _files(moved, elsewhere):
        assert Path(name).is_file()


def test_an_existing_file_is_replaced_only_when_asked(tmp_path: Path) -> None:
    controller = Controller(Settings(runs_dir=str(tmp_path / "runs")))
    with pytest.raises(PlushError, match="no application is loaded"):
        controller.save(tmp_path / "none.xml")
    controller.load(EXAMPLES / "filedist.xml")
    target = tmp_path / "app.xml"
    target.write_text("mine")
    with pytest.raises(PlushError, match=r"the file exists \(save .*app.xml --force replaces it\)"):
        controller.save(target)
    assert target.read_text() == "mine"
    with pytest.raises(PlushError, match=r"name the file \*\.xml"):
        controller.save(tmp_path / "app.yaml")
    controller.save(target, overwrite=True)
    assert load_spec(target) == controller.project
    assert [p.name for p in tmp_path.iterdir()] == ["app.xml"]  # no temporary file left
