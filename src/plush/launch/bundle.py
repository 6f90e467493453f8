"""The agent zipapp: what an SSH host gets of Plush, as ONE file named by its content hash.

Role: :func:`agent_bundle` builds ``agent-<hash>.pyz``, a zipapp of the modules that ship to agents -- the rooms
``plush.agent``, ``plush.protocol``, ``plush.processes``, ``plush.hostmon`` and the closure of their ``plush``
imports (``plush.errors``, ``plush.spec.model``, ``plush.spec.paths``, the packages' ``__init__``), the same
closure ``tests/test_layering.py::shipped_modules`` computes -- runnable as ``python3 agent-<hash>.pyz
--connect ...`` or ``--stdio ...`` (the arguments of ``python -m plush.agent``) on a bare Python 3.8, or as
``python3 agent-<hash>.pyz --relay agent.sock`` (:mod:`plush.agent.relay`) or ``--sweep RUN_ID MARK HOST...``
(:mod:`plush.processes.sweep`), or ``--unpack``: it unpacks itself beside itself with its bytecode
(:mod:`plush.agent.selfunpack`), which is what SSH hosts run (the same arguments, ``python3 agent-<hash>``).

Invariants: the bundle is reproducible (sorted entries, fixed timestamps and modes), so its name is the hash
of what it holds: the same sources give the same file on every controller, and a host that has
``agent-<hash>.pyz`` has exactly this agent (the SSH launcher copies it only to hosts that lack that name). It
is built once per controller process and kept in ``$XDG_CACHE_HOME/plush/agents/`` (written under a temporary
name, then renamed: concurrent builders never see half a file). The local launcher does not need it: local
agents run from the source tree (``PYTHONPATH``).
"""

from __future__ import annotations

import ast
import functools
import hashlib
import io
import os
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import plush

__all__ = ["SHIPPED_ROOMS", "AgentBundle", "agent_bundle", "bundle_modules"]

#: the rooms that ship whole; their ``plush`` imports are followed from there
SHIPPED_ROOMS = ("agent", "protocol", "processes", "hostmon")

#: the zipapp's entry (also of the directory it unpacks to), in a syntax any Python parses: first the version
#: (an older Python says ``oldpython X.Y`` on stdout and exits 3: the launcher then probes for another); then the
#: agent; with ``--relay`` the relay of a later SSH session (no asyncio imported); with ``--sweep`` the leftover
#: sweep of an SSH host; with ``--unpack`` the zipapp unpacks itself with bytecode (:mod:`plush.agent.selfunpack`)
_MAIN = b"""import sys
if sys.version_info[:2] < (3, 8):
    sys.stdout.write("oldpython %d.%d\\n" % sys.version_info[:2])
    sys.exit(3)
if sys.argv[1:2] == ["--relay"]:
    from plush.agent.relay import main
elif sys.argv[1:2] == ["--sweep"]:
    from plush.processes.sweep import main
elif sys.argv[1:2] == ["--unpack"]:
    from plush.agent.selfunpack import main
else:
    from plush.agent.__main__ import main
sys.exit(main())
"""
_EPOCH = (1980, 1, 1, 0, 0, 0)


@dataclass(frozen=True)
class AgentBundle:
    """A built agent zipapp: its content hash, its bytes, and where the controller keeps it."""

    digest: str
    data: bytes
    path: Path

    @property
    def name(self) -> str:
        """``agent-<hash>.pyz``: the file name on every host (the hash says which agent it is)."""
        return f"agent-{self.digest}.pyz"


def _package_root() -> Path:
    return Path(plush.__file__).resolve().parent


def _module_file(root: Path, module: str) -> Path | None:
    parts = module.split(".")[1:]
    base = root.joinpath(*parts)
    if (base / "__init__.py").is_file():
        return base / "__init__.py"
    file = base.with_suffix(".py")
    return file if file.is_file() else None


def _plush_imports(source: str) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("plush"))
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("plush"):
            assert node.module is not None
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
    return found


def bundle_modules(root: Path | None = None) -> dict[str, Path]:
    """Module name -> source file of everything the zipapp holds: the shipped rooms and the closure of their
    ``plush`` imports, with every parent package."""
    root = root or _package_root()
    todo = ["plush"]
    for room in SHIPPED_ROOMS:
        todo += [f"plush.{room}.{p.stem}" for p in (root / room).glob("*.py") if p.stem != "__init__"]
        todo.append(f"plush.{room}")
    found: dict[str, Path] = {}
    while todo:
        module = todo.pop()
        if module in found:
            continue
        file = _module_file(root, module)
        if file is None:  # ``from plush.x import name``: a name, not a module
            continue
        found[module] = file
        todo += _plush_imports(file.read_text(encoding="utf-8"))
        todo += [module.rsplit(".", 1)[0]] if "." in module else []
    return found


def _build(root: Path) -> bytes:
    modules = bundle_modules(root)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        entries = {str(f.relative_to(root.parent)): f.read_bytes() for f in modules.values()}
        entries["__main__.py"] = _MAIN
        for name in sorted(entries):
            info = zipfile.ZipInfo(name, _EPOCH)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, entries[name])
    return buffer.getvalue()


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "plush" / "agents"


@functools.cache
def agent_bundle() -> AgentBundle:
    """The agent zipapp of this Plush (built once per process; kept in the controller's cache)."""
    data = _build(_package_root())
    digest = hashlib.sha256(data).hexdigest()[:20]
    cache = _cache_dir()
    path = cache / f"agent-{digest}.pyz"
    if not path.is_file():
        cache.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=cache, prefix=".agent-")
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    return AgentBundle(digest, data, path)
