"""The package's own metadata: dependencies match the imports, the licence is declared the current way, and
building the wheel prints no warning about our configuration."""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "plush"


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _pyproject() -> dict[str, object]:
    with (ROOT / "pyproject.toml").open("rb") as fh:
        return tomllib.load(fh)


def declared_dependencies() -> set[str]:
    project = _pyproject()["project"]
    assert isinstance(project, dict)
    names = set()
    for req in project.get("dependencies", []):
        m = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", req)
        assert m, req
        names.add(_norm(m.group(0)))
    return names


def third_party_imports() -> dict[str, set[str]]:
    """Top-level module names imported anywhere in src/plush that are neither stdlib nor plush, with where."""
    found: dict[str, set[str]] = {}
    for path in sorted(SRC.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top == "plush" or top in sys.stdlib_module_names:
                    continue
                found.setdefault(top, set()).add(str(path.relative_to(ROOT)))
    return found


def test_every_third_party_import_is_declared_and_every_dependency_is_imported() -> None:
    declared = declared_dependencies()
    dists = packages_distributions()
    imported: dict[str, str] = {}  # distribution -> one module that imports it
    for module, where in third_party_imports().items():
        owners = dists.get(module)
        assert owners, f"{module} is imported by {sorted(where)} but no installed distribution provides it"
        for dist in owners:
            imported.setdefault(_norm(dist), sorted(where)[0])
    undeclared = {d: w for d, w in imported.items() if d not in declared}
    assert not undeclared, f"imported by src/ but not in [project] dependencies: {undeclared}"
    unused = declared - set(imported)
    assert not unused, f"declared in [project] dependencies but imported nowhere in src/: {sorted(unused)}"


def test_license_is_an_spdx_expression_with_its_file() -> None:
    project = _pyproject()["project"]
    assert isinstance(project, dict)
    assert project["license"] == "MIT"
    assert project["license-files"] == ["LICENSE"]
    text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert text.startswith("MIT License") and "the Plush authors" in text
    build = _pyproject()["build-system"]
    assert isinstance(build, dict)
    setuptools_req = next(r for r in build["requires"] if r.startswith("setuptools"))
    m = re.search(r">=\s*(\d+)", setuptools_req)
    assert m and int(m.group(1)) >= 77, "SPDX license strings and license-files need setuptools >= 77"


@pytest.mark.slow
def test_wheel_builds_without_warnings_from_our_configuration(tmp_path: Path) -> None:
    project = tmp_path / "project"  # a copy: the build leaves nothing in the work tree
    project.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy2(ROOT / name, project / name)
    shutil.copytree(ROOT / "src", project / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", str(tmp_path / "w"), str(project)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    out = proc.stdout + proc.stderr
    if proc.returncode != 0 and ("No matching distribution" in out or "Could not find a version" in out):
        pytest.skip("no package index reachable to get the build backend")
    assert proc.returncode == 0, out
    warnings = [line for line in out.splitlines() if re.search(r"warning|deprecat", line, re.IGNORECASE)]
    assert not warnings, "\n".join(warnings)
    wheels = list((tmp_path / "w").glob("plush-*.whl"))
    assert wheels
    # the web UI's static files are package data: they ship in the wheel
    with zipfile.ZipFile(wheels[0]) as wheel:
        shipped = set(wheel.namelist())
    static = ROOT / "src" / "plush" / "web" / "static"
    wanted = {f"plush/web/static/{p.relative_to(static).as_posix()}" for p in static.rglob("*") if p.is_file()}
    assert {"plush/web/static/index.html", "plush/web/static/js/main.js"} <= wanted
    assert wanted <= shipped, sorted(wanted - shipped)
