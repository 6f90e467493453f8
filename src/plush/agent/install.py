"""Software installation on a host: packages into the working directory, through a content-hash cache.

For every software bundle its component names, each package lands in the host's working directory under
``dest`` (default: the base name of its path), and a ``tar`` bundle is then unpacked there. Where a package
comes from:

- a package the controller serves (a path relative to the spec, or ``file://``) is known by a key
  ``pkg:<software>/<package>`` and its sha256, sent in ``prepare``; the agent looks in its content cache
  (``$PLUSH_CACHE_DIR``, default ``~/.cache/plush/content/<sha256>``, shared by every agent of a machine) and
  asks the controller only on a miss. Data are verified against the sha256 before entering the cache;
- an ``http(s)://`` package is downloaded by the agent itself (urllib), into the cache by its sha256 too.

Archives are unpacked by :mod:`plush.agent.unpack`, which refuses members that would land outside the working
directory by any route. Standard library only, Python 3.8.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import tarfile
import tempfile
from typing import Any, Awaitable, Callable, Dict, List, Mapping, Optional

from plush.agent.unpack import safe_extract
from plush.errors import PlushError
from plush.protocol.messages import package_key
from plush.spec.model import Package, Project

__all__ = ["InstallError", "cache_dir", "install_component"]

#: ``await fetch(key, dest)`` brings the file the controller knows as ``key`` to ``dest``
Fetch = Callable[[str, str], Awaitable[None]]


class InstallError(PlushError):
    """A software bundle could not be installed; ``software`` names it."""

    def __init__(self, software: str, reason: str) -> None:
        super().__init__("cannot install software {!r}: {}".format(software, reason))
        self.software = software
        self.reason = reason


def cache_dir() -> str:
    base = os.environ.get("PLUSH_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "plush", "content"
    )
    os.makedirs(base, exist_ok=True)
    return base


def sha256_of(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _link_or_copy(source: str, dest: str) -> None:
    tmp = dest + ".plush-tmp"
    if os.path.lexists(tmp):
        os.unlink(tmp)
    try:
        os.link(source, tmp)
    except OSError:
        shutil.copyfile(source, tmp)
    os.replace(tmp, dest)


def _is_web(path: str) -> bool:
    return path.startswith("http://") or path.startswith("https://")


def _download(url: str, dest: str, timeout: float) -> None:
    import urllib.request  # only agents that download pay for importing it (~20 ms)

    with urllib.request.urlopen(url, timeout=timeout) as response, open(dest, "wb") as out:  # noqa: S310
        shutil.copyfileobj(response, out, 1 << 20)


async def _install_package(
    software: str, pkg: Package, info: Mapping[str, Any], workdir: str, fetch: Fetch, timeout: float
) -> str:
    dest = os.path.join(workdir, pkg.dest or os.path.basename(pkg.path.rstrip("/")))
    cache = cache_dir()
    sha = info.get("sha256")
    if sha and os.path.isfile(os.path.join(cache, sha)):
        _link_or_copy(os.path.join(cache, sha), dest)
        return dest
    fd, tmp = tempfile.mkstemp(dir=cache, prefix=".incoming-")
    os.close(fd)
    try:
        if _is_web(pkg.path) and not info.get("served"):
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(None, _download, pkg.path, tmp, timeout)
        else:
            await fetch(package_key(software, pkg.name), tmp)
        got = sha256_of(tmp)
        if sha and got != sha:
            raise InstallError(software, "package {!r} arrived corrupted (sha256 {} != {})".format(pkg.name, got, sha))
        os.replace(tmp, os.path.join(cache, got))
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    _link_or_copy(os.path.join(cache, got), dest)
    return dest


async def install_component(
    project: Project,
    component: str,
    workdir: str,
    fetch: Fetch,
    packages: Optional[Mapping[str, Mapping[str, Any]]] = None,
    timeout: float = 300.0,
) -> List[str]:
    """Install every software bundle of ``component`` into ``workdir``; the names installed, in order.

    ``packages`` maps package keys to what the controller knows of them (``sha256``, ``size``, ``served``).
    Raises :class:`InstallError` naming the bundle on any failure.
    """
    done = []
    known: Dict[str, Mapping[str, Any]] = dict(packages or {})
    for name in project.component(component).software:
        software = project.software_bundle(name)
        try:
            for pkg in software.packages:
                dest = await _install_package(
                    software.name, pkg, known.get(package_key(software.name, pkg.name), {}), workdir, fetch, timeout
                )
                if software.type == "tar":
                    loop = asyncio.get_running_loop()
                    await loop.run_in_executor(None, safe_extract, dest, workdir)
        except InstallError:
            raise
        except (OSError, ValueError, tarfile.TarError, PlushError) as exc:
            raise InstallError(software.name, str(exc)) from exc
        done.append(software.name)
    return done
