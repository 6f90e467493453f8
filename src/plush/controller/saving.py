"""``save FILE``: the loaded application written as a Plush XML spec (a facet of :class:`plush.Controller`).

Role: what :meth:`Controller.save <plush.controller.api.Controller.save>` does. The XML is
:func:`plush.spec.xmlwriter.write_xml`'s, whose invariant is ``parse_xml(write_xml(m)) == m``. A spec names
its local files (packages, workflow data files) relative to its own directory: saved into another
directory, those paths are rewritten relative to the new file (:func:`rebase`), so that the saved spec names
the same files; saved beside the spec it was loaded from, nothing changes and the saved file loads back to
the very same model.

Invariants: an existing file is never replaced unless ``overwrite`` is given (the terminal's ``save FILE
--force``); the file appears whole or not at all (written beside it, then renamed); the name must end in
``.xml`` (a ``.yaml`` name would not load back as what was written).
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import replace
from pathlib import Path

from plush.errors import PlushError
from plush.spec.model import Block, Project, WorkflowBlock
from plush.spec.xmlwriter import write_xml

__all__ = ["rebase", "save_spec"]


def _local(path: str) -> bool:
    """Whether a spec path is relative to the spec's directory (not a URL, not absolute)."""
    return "://" not in path and not os.path.isabs(path)


def rebase(project: Project, old_dir: Path, new_dir: Path) -> Project:
    """``project`` with every relative local path (packages, workflow data files) rewritten from ``old_dir`` to
    ``new_dir``: the same files, named from the new directory. Pure (no file is read)."""
    old_dir, new_dir = Path(os.path.abspath(old_dir)), Path(os.path.abspath(new_dir))
    if old_dir == new_dir:
        return project

    def moved(path: str) -> str:
        return os.path.relpath(os.path.normpath(old_dir / path), new_dir) if _local(path) else path

    software = tuple(
        replace(sw, packages=tuple(replace(p, path=moved(p.path)) for p in sw.packages)) for sw in project.software
    )

    def block(b: Block) -> Block:
        if isinstance(b, WorkflowBlock):
            return replace(b, data_files=tuple(moved(f) for f in b.data_files))
        return b

    cblocks = tuple(
        replace(cb, blocks=tuple(block(b) for b in cb.blocks)) for cb in project.application.component_blocks
    )
    return replace(project, software=software, application=replace(project.application, component_blocks=cblocks))


def save_spec(project: Project, path: Path, *, overwrite: bool = False) -> Path:
    """Write ``project`` as Plush XML at ``path`` (see the module); returns the path written."""
    if path.suffix.lower() != ".xml":
        raise PlushError(f"save {path}: save writes Plush XML: name the file *.xml")
    if path.is_dir():
        raise PlushError(f"save {path}: is a directory")
    if path.exists() and not overwrite:
        raise PlushError(f"save {path}: the file exists (save {path} --force replaces it)")
    target = path.resolve()
    old_dir = Path(project.source).resolve().parent if project.source else Path.cwd()
    text = write_xml(rebase(project, old_dir, target.parent))
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text + ("" if text.endswith("\n") else "\n"))
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
