"""The web UI's static files: a manifest of the package's ``static/`` directory, built once at start.

Role: what ``/static/<file>`` may answer (:mod:`plush.web.pages`). :func:`build_manifest` walks
``plush/web/static/`` (package data: shipped in the wheel) and keeps each regular file's bytes and content type
under its relative POSIX path; :meth:`Assets.get` looks a requested name up in that dict and nothing else.

Invariants: no part of a URL is ever joined to a file system path (a name is only a key of the manifest, so
``..``, encoded or absolute names, NULs and backslashes are simply not found); only regular files with a
known suffix are listed, links are not followed; the files are read once, at start.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

__all__ = ["STATIC", "TYPES", "Asset", "Assets", "build_manifest"]

#: the package's static directory
STATIC = Path(__file__).resolve().parent / "static"
#: suffix -> content type; other files are not served
TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".txt": "text/plain; charset=utf-8",
}


@dataclass(frozen=True)
class Asset:
    name: str
    body: bytes
    content_type: str


def build_manifest(root: Path = STATIC) -> dict[str, Asset]:
    """Every regular file under ``root`` with a suffix of :data:`TYPES`, by its relative POSIX path."""
    found: dict[str, Asset] = {}
    if not root.is_dir():
        return found
    for directory, dirs, files in os.walk(root, followlinks=False):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d != "__pycache__")
        for file in sorted(files):
            path = Path(directory) / file
            kind = TYPES.get(path.suffix)
            if kind is None or file.startswith("."):
                continue
            st = path.lstat()
            if not stat.S_ISREG(st.st_mode):
                continue
            name = path.relative_to(root).as_posix()
            found[name] = Asset(name, path.read_bytes(), kind)
    return found


class Assets:
    """The manifest, and the one way to look into it."""

    def __init__(self, manifest: dict[str, Asset] | None = None) -> None:
        self._manifest = manifest if manifest is not None else build_manifest()

    def get(self, name: str) -> Asset | None:
        """The file listed under exactly ``name``, or None."""
        return self._manifest.get(name)

    def names(self) -> list[str]:
        return sorted(self._manifest)
