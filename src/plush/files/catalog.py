"""The controller's file catalog: which files a run's agents may fetch, where they are, and their hashes.

Keys are the ones agents ask for in ``fetch``:

- ``pkg:<software>/<package>``: a software package whose ``path`` is relative to the spec's directory or a
  ``file://`` URL. ``http(s)://`` packages are not served: agents download them themselves (``served`` false).
- ``data:<item>``: a workflow data file, relative to the spec's directory.

Nothing outside these keys can be fetched: an agent cannot read arbitrary controller files. Hashes
(sha256) and sizes are computed once, off the event loop, and sent to agents in ``prepare`` so that an
agent whose content cache already holds a file never asks for it (a second run transfers nothing); so are
packages' permission bits (``mode``, without setuid/setgid/sticky), which installed copies keep.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from plush.errors import SpecError, SpecProblem
from plush.protocol.messages import data_key, package_key
from plush.spec.model import Project, Where, WorkflowBlock

__all__ = ["CatalogEntry", "FileCatalog"]

CHUNK = 1024 * 1024


@dataclass(frozen=True, slots=True)
class CatalogEntry:
    key: str
    path: Path | None  # None: fetched by agents themselves (web)
    url: str | None = None
    sha256: str | None = None
    size: int | None = None
    mode: int | None = None  # permission bits (0o777 at most): agents give them to the installed file

    def info(self) -> dict[str, Any]:
        out: dict[str, Any] = {"served": self.path is not None}
        if self.sha256 is not None:
            out.update(sha256=self.sha256, size=self.size)
        if self.mode is not None:
            out["mode"] = self.mode
        return out


def _sha256(path: Path) -> tuple[str, int, int]:
    """sha256, size and permission bits (without setuid/setgid/sticky) of the file at ``path``."""
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as fh:
        mode = stat.S_IMODE(os.fstat(fh.fileno()).st_mode) & 0o777
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size, mode


def _missing(project: Project, where: Where | None, message: str, element: str) -> SpecProblem:
    """A spec problem for a file the spec names but that is not there."""
    return SpecProblem(
        message,
        file=where.file if where else project.source,
        line=where.line if where else None,
        element=element,
        hint="paths are relative to the spec file's directory",
    )


class FileCatalog:
    """Every file of a project that agents may fetch. Build with :meth:`for_project`, then :meth:`hash_all`."""

    def __init__(self, entries: dict[str, CatalogEntry]) -> None:
        self.entries = entries

    @classmethod
    def for_project(cls, project: Project) -> FileCatalog:
        base = Path(project.source).resolve().parent if project.source else Path.cwd()
        entries: dict[str, CatalogEntry] = {}
        problems: list[SpecProblem] = []
        for software in project.software:
            for pkg in software.packages:
                key = package_key(software.name, pkg.name)
                if pkg.path.startswith(("http://", "https://")):
                    entries[key] = CatalogEntry(key, None, url=pkg.path)
                    continue
                path = Path(unquote(urlparse(pkg.path).path)) if pkg.path.startswith("file://") else base / pkg.path
                if not path.is_file():
                    problems.append(
                        _missing(
                            project,
                            pkg.where,
                            f"package {pkg.name!r} of software {software.name!r}: no file at {path}",
                            "package",
                        )
                    )
                    continue
                entries[key] = CatalogEntry(key, path)
        for _, block in project.walk():
            if isinstance(block, WorkflowBlock):
                for item in block.data_files:
                    path = base / item
                    if not path.is_file():
                        message = f"workflow {block.name!r}: data file {item!r} not found at {path}"
                        problems.append(_missing(project, block.where, message, "data_file"))
                        continue
                    entries[data_key(item)] = CatalogEntry(data_key(item), path)
        if problems:
            raise SpecError(problems)
        return cls(entries)

    async def hash_all(self) -> None:
        """Compute every served file's sha256 and size (in a thread)."""
        for key, entry in list(self.entries.items()):
            if entry.path is not None and entry.sha256 is None:
                sha, size, mode = await asyncio.to_thread(_sha256, entry.path)
                self.entries[key] = CatalogEntry(key, entry.path, entry.url, sha, size, mode)

    def packages_info(self) -> dict[str, dict[str, Any]]:
        """What agents learn in ``prepare``: for each package key, served?, sha256, size, mode."""
        return {k: e.info() for k, e in self.entries.items() if k.startswith("pkg:")}

    def open_chunks(self, key: str, offset: int = 0) -> Iterator[bytes]:
        """The file's content in chunks, from ``offset``; KeyError for an unknown key, OSError when unreadable."""
        entry = self.entries[key]
        if entry.path is None:
            raise KeyError(key)
        with entry.path.open("rb") as fh:
            fh.seek(offset)
            while chunk := fh.read(CHUNK):
                yield chunk

    def statistics(self) -> dict[str, Any]:
        return {"files": len(self.entries), "bytes": sum(e.size or 0 for e in self.entries.values())}
