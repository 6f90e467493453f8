"""A run's results directory: ``<runs_dir>/<run-id>/``.

Layout (documented in docs/operations.md)::

    spec.xml | spec.yaml        the spec as run (a copy of the file given)
    spec.json                   the model as run (plush.spec.model.to_dict)
    journal.sqlite              every event with timestamps
    shared/                     a directory shared by the run's local sandbox hosts (PLUSH_RUN_DIR)
    hosts/<host>/work/          a local sandbox host's working directory
    hosts/<host>/logs/<block>.<process>.<instance>.stdout|stderr
    hosts/<host>/outputs/...    output files collected back from the host
    report.txt, report.json     the failure report (when the run ends)

Run ids sort by start time and are unique: ``YYYYmmdd-HHMMSS-xxxx``.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from plush.spec.model import Project, to_dict
from plush.spec.paths import BlockPath

__all__ = ["RunDir", "new_run_id"]


def new_run_id(now: float | None = None) -> str:
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(time.time() if now is None else now))
    return f"{stamp}-{secrets.token_hex(2)}"


def _flat(block: str) -> str:
    """A block path as one file-name segment: ``/app/cb/p`` → ``cb.p`` (the application name dropped)."""
    parts = BlockPath.parse(block).parts[1:] if block.startswith("/") else (block,)
    return ".".join(parts) or "app"


@dataclass(frozen=True, slots=True)
class RunDir:
    """Paths inside one run's results directory. ``create()`` makes it on disk."""

    root: Path
    run_id: str

    @classmethod
    def create(cls, runs_dir: str | Path, run_id: str | None = None) -> RunDir:
        run_id = run_id or new_run_id()
        root = Path(runs_dir).resolve() / run_id
        root.mkdir(parents=True, exist_ok=False)
        (root / "shared").mkdir()
        (root / "hosts").mkdir()
        return cls(root=root, run_id=run_id)

    @property
    def journal(self) -> Path:
        return self.root / "journal.sqlite"

    @property
    def shared(self) -> Path:
        return self.root / "shared"

    def host(self, host: str) -> Path:
        return self.root / "hosts" / host

    def workdir(self, host: str) -> Path:
        return self.host(host) / "work"

    def log(self, host: str, process_path: str, instance: int, stream: str) -> Path:
        return self.host(host) / "logs" / f"{_flat(process_path)}.{instance}.{stream}"

    def output(self, host: str, name: str) -> Path:
        """Where a collected output file lands; refuses names that would escape the host's directory."""
        base = (self.host(host) / "outputs").resolve()
        target = (base / name).resolve()
        if os.path.commonpath([base, target]) != str(base):
            raise ValueError(f"output name {name!r} escapes the host's output directory")
        return target

    def save_spec(self, project: Project) -> None:
        if project.source and Path(project.source).is_file():
            suffix = Path(project.source).suffix or ".xml"
            shutil.copyfile(project.source, self.root / f"spec{suffix}")
        self.write_json("spec.json", to_dict(project))

    def write_json(self, name: str, data: Any) -> None:
        (self.root / name).write_text(json.dumps(data, indent=2, default=str) + "\n")
