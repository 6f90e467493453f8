"""Software installation on a host: packages into the working directory, through a content-hash cache.

For every software bundle its component names, each package lands in the host's working directory under
``dest`` (default: the base name of its path), and a ``tar`` bundle is then unpacked there. Where a package
comes from:

- a package the controller serves (a path relative to the spec, or ``file://``) is known by a key
  ``pkg:<software>/<package>``, its sha256 and mode, sent in ``prepare``; the agent looks in its content
  cache (:mod:`plush.agent.cache`, shared by every agent of a machine) and asks the controller only on a
  miss. Data are verified against the sha256 before entering the cache;
- an ``http(s)://`` package is downloaded by the agent itself (urllib), into the cache by its sha256 too.

Invariants: ``dest`` is a plain relative path inside the working directory (:func:`~plush.agent.paths.dest_parts`;
checked here too, whatever the controller validated); an installed file is the host's own copy of the
cache entry, never a link to it, with the source's mode (``mode`` from ``prepare``; 0644 for downloads)
without setuid/setgid/sticky; it is placed without following any link (:class:`~plush.agent.tree.Tree`),
and archives are unpacked by :mod:`plush.agent.unpack`. Standard library only, Python 3.8.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tarfile
from typing import IO, Any, Awaitable, Callable, Dict, List, Mapping, Optional, Tuple

from plush.agent.cache import ContentCache, cache_dir, copy_into
from plush.agent.paths import Parts, dest_parts
from plush.agent.tree import Tree
from plush.agent.unpack import commit_staged, extract_tar, extract_tar_stream
from plush.errors import PlushError
from plush.protocol.messages import package_key
from plush.spec.model import Package, Project

__all__ = ["DEFAULT_MODE", "STAGING", "InstallError", "cache_dir", "install_component", "remove_staging"]

#: ``await fetch(key, dest)`` brings the file the controller knows as ``key`` to ``dest``
Fetch = Callable[[str, str], Awaitable[None]]
#: ``sink(stream)`` reads a package as its bytes arrive (a tar bundle unpacked into a staging directory)
Sink = Callable[[IO[bytes]], Any]
#: ``await fetch_package(key, info, cache, sink)`` brings the package ``key`` (``info`` from ``prepare``: its
#: ``sha256`` and ``size``) into ``cache`` itself, checked, and returns its sha256 and what ``sink`` returned
#: when it read the very bytes that entered the cache (else None) -- the fetch of :mod:`plush.agent.pkgrelay`
#: (relayed, or streamed by the controller); ``None`` in its place: :data:`Fetch` to an incoming file, then
#: stored here
FetchPackage = Callable[[str, Mapping[str, Any], ContentCache, Optional[Sink]], Awaitable[Tuple[str, Any]]]
#: the name of a staging directory in the working directory (then random hex)
STAGING = ".plush-unpack-"

#: mode of an installed package whose source mode is unknown (downloaded from a URL)
DEFAULT_MODE = 0o644


class InstallError(PlushError):
    """A software bundle could not be installed; ``software`` names it."""

    def __init__(self, software: str, reason: str) -> None:
        super().__init__("cannot install software {!r}: {}".format(software, reason))
        self.software = software
        self.reason = reason


def _is_web(path: str) -> bool:
    return path.startswith("http://") or path.startswith("https://")


def _download(url: str, dest: str, timeout: float) -> None:
    import urllib.request  # only agents that download pay for importing it (~20 ms)

    with urllib.request.urlopen(url, timeout=timeout) as response, open(dest, "wb") as out:  # noqa: S310
        shutil.copyfileobj(response, out, 1 << 20)


def _mode(info: Mapping[str, Any]) -> int:
    mode = info.get("mode")
    return mode & 0o777 if isinstance(mode, int) and not isinstance(mode, bool) else DEFAULT_MODE


def _place(tree: Tree, parts: Parts, source: str, mode: int) -> None:
    def fill(fd: int) -> None:
        copy_into(source, fd)

    tree.write_file(parts, fill, mode)


def _unpack(tree: Tree, parts: Parts, workdir: str) -> List[str]:
    fd = tree.open_file(parts)
    with open(fd, "rb") as fh:
        return extract_tar(fh, workdir)


async def _install_package(
    software: str,
    pkg: Package,
    info: Mapping[str, Any],
    tree: Tree,
    cache: ContentCache,
    fetch: Fetch,
    timeout: float,
    fetch_package: Optional[FetchPackage] = None,
    unpack_into: Optional[str] = None,
) -> None:
    """Bring the package into the cache (unless there), place it, and unpack it into ``unpack_into`` (a tar
    bundle's): as its bytes arrive when ``fetch_package`` fetches it (into a staging directory, committed only
    once the package's sha256 matched: :func:`~plush.agent.unpack.commit_staged`), else from the placed file."""
    parts = dest_parts(pkg.dest or os.path.basename(pkg.path.rstrip("/")))
    sha = info.get("sha256")
    loop = asyncio.get_running_loop()
    source = await loop.run_in_executor(None, cache.lookup, sha) if isinstance(sha, str) and sha else None
    served = not _is_web(pkg.path) or info.get("served")
    staging = None
    staged = None
    try:
        if source is None and fetch_package is not None and served and sha and isinstance(info.get("size"), int):
            sink = None
            if unpack_into is not None:
                staging = STAGING + os.urandom(6).hex()
                tree.make_dir((staging,))
                sink = _stream_sink(os.path.join(unpack_into, staging))
            got, staged = await fetch_package(package_key(software, pkg.name), info, cache, sink)
            source = cache.entry(got)
        if source is None:
            got = await _fetch_into_cache(software, pkg, sha, not served, cache, fetch, timeout)
            source = cache.entry(got)
        await loop.run_in_executor(None, _place, tree, parts, source, _mode(info))
        if unpack_into is not None:
            committed = False
            if staging is not None and staged is not None:
                committed = await loop.run_in_executor(None, commit_staged, unpack_into, staging, list(staged))
            if not committed:
                await loop.run_in_executor(None, _unpack, tree, parts, unpack_into)
    finally:
        if staging is not None and unpack_into is not None:
            await loop.run_in_executor(None, remove_staging, os.path.join(unpack_into, staging))


async def _fetch_into_cache(
    software: str, pkg: Package, sha: Any, download: bool, cache: ContentCache, fetch: Fetch, timeout: float
) -> str:
    loop = asyncio.get_running_loop()
    tmp = cache.incoming()
    try:
        if download:
            await loop.run_in_executor(None, _download, pkg.path, tmp, timeout)
        else:
            await fetch(package_key(software, pkg.name), tmp)
        try:
            return await loop.run_in_executor(None, cache.store, tmp, sha)
        except ValueError as exc:
            raise InstallError(software, "package {!r} arrived corrupted ({})".format(pkg.name, exc)) from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _stream_sink(staging: str) -> Callable[[IO[bytes]], List[Parts]]:
    def sink(stream: IO[bytes]) -> List[Parts]:
        return extract_tar_stream(stream, staging)

    return sink


def remove_staging(path: str) -> None:
    """Remove the staging directory ``path`` (what is left of it), never following a link out of it."""
    if os.path.lexists(path):
        for dirpath, dirnames, _ in os.walk(path):  # read-only directories an archive made
            for d in dirnames:
                p = os.path.join(dirpath, d)
                if not os.path.islink(p):
                    os.chmod(p, 0o700)
        shutil.rmtree(path, ignore_errors=True)


async def install_component(
    project: Project,
    component: str,
    workdir: str,
    fetch: Fetch,
    packages: Optional[Mapping[str, Mapping[str, Any]]] = None,
    timeout: float = 300.0,
    fetch_package: Optional[FetchPackage] = None,
) -> List[str]:
    """Install every software bundle of ``component`` into ``workdir``; the names installed, in order.

    ``packages`` maps package keys to what the controller knows of them (``sha256``, ``size``, ``mode``,
    ``served``); ``fetch_package``, when given, brings each package the controller serves into the cache
    (a relayed fetch) instead of ``fetch``.
    Raises :class:`InstallError` naming the bundle on any failure.
    """
    done = []
    known: Dict[str, Mapping[str, Any]] = dict(packages or {})
    software = None
    try:
        cache = ContentCache()
        with Tree(workdir) as tree:
            for name in project.component(component).software:
                software = project.software_bundle(name)
                for pkg in software.packages:
                    key = package_key(software.name, pkg.name)
                    info = known.get(key, {})
                    into = workdir if software.type == "tar" else None
                    await _install_package(software.name, pkg, info, tree, cache, fetch, timeout, fetch_package, into)
                done.append(software.name)
    except InstallError:
        raise
    except (OSError, ValueError, EOFError, tarfile.TarError, PlushError) as exc:
        raise InstallError(software.name if software else component, str(exc)) from exc
    return done
