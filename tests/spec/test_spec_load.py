"""load_spec: dispatch by extension and file errors that name the file."""

from __future__ import annotations

from pathlib import Path

import pytest
from xmlspecs import spec

from plush.errors import SpecError
from plush.spec.load import load_spec


def test_xml_by_extension(tmp_path: Path) -> None:
    path = tmp_path / "app.XML"
    path.write_text(spec())
    project = load_spec(path)
    assert project.name == "demo" and project.source == str(path)


def test_missing_file_names_it(tmp_path: Path) -> None:
    with pytest.raises(SpecError) as info:
        load_spec(tmp_path / "gone.xml")
    assert info.value.file == str(tmp_path / "gone.xml")
    assert "does not exist" in str(info.value)


def test_directory_is_not_a_spec(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="is a directory"):
        load_spec(tmp_path)


def test_unknown_extension(tmp_path: Path) -> None:
    path = tmp_path / "app.json"
    path.write_text("{}")
    with pytest.raises(SpecError) as info:
        load_spec(path)
    assert "unknown spec file type '.json'" in str(info.value)
    assert info.value.problems[0].hint is not None


def test_invalid_xml_spec_raises_with_location(tmp_path: Path) -> None:
    path = tmp_path / "bad.xml"
    path.write_text(spec(blocks='<barrier_block name="b" max="0"/>'))
    with pytest.raises(SpecError) as info:
        load_spec(path)
    assert info.value.file == str(path)
    assert info.value.path == "/app/cb/b"
