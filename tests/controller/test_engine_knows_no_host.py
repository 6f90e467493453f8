"""Nothing above the launchers knows where a host is (issue 8): the run engine names hosts, the launcher
reaches them.

The controller's modules invent no ``local-N`` name, hard-code no address, read no ``/proc`` and ask no
``socket.gethostname()``; every member they use of a launcher is declared by the
:class:`~plush.launch.base.Launcher` interface (today's code called ``agents``, ``signal_group``, ``alive()``
and ``stop_all()`` of :class:`~plush.launch.local.LocalLauncher`, which the interface lacked).
"""

from __future__ import annotations

import ast
from pathlib import Path

import plush.controller
from plush.launch.base import CAPABILITIES, Launcher
from plush.launch.local import LocalLauncher

CONTROLLER = Path(plush.controller.__file__).parent
#: the face that chooses the local sandbox (until pools choose launchers) may name the local launcher
FACES = {"api.py"}


def _modules() -> dict[str, ast.Module]:
    return {p.name: ast.parse(p.read_text(), filename=str(p)) for p in sorted(CONTROLLER.glob("*.py"))}


def test_the_controller_invents_no_host_name_address_or_process_lookup() -> None:
    bad = []
    for name, tree in _modules().items():
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                text = node.value
                if "127.0.0.1" in text or text.startswith("/proc") or text == "local-":
                    bad.append(f"{name}:{node.lineno}: {text!r}")
            elif isinstance(node, ast.JoinedStr):
                head = node.values[0] if node.values else None
                if isinstance(head, ast.Constant) and str(head.value).startswith(("local-", "/proc")):
                    bad.append(f"{name}:{node.lineno}: {ast.unparse(node)}")
            elif isinstance(node, ast.Attribute) and node.attr == "gethostname":
                bad.append(f"{name}:{node.lineno}: gethostname")
            elif isinstance(node, ast.ImportFrom) and node.module == "plush.launch.local" and name not in FACES:
                bad.append(f"{name}:{node.lineno}: imports the local launcher")
    assert bad == []


def _launcher_members_used(tree: ast.Module) -> set[str]:
    """``self._launcher.X``, ``launcher.X``, ``self.launcher.X``: the X's."""
    used = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.Attribute):
            continue
        owner = node.value
        if (isinstance(owner, ast.Name) and owner.id == "launcher") or (
            isinstance(owner, ast.Attribute) and owner.attr in ("_launcher", "launcher")
        ):
            used.add(node.attr)
    return used


def test_every_launcher_member_the_controller_uses_is_declared_by_the_interface() -> None:
    used = set().union(*(_launcher_members_used(tree) for tree in _modules().values()))
    assert {"agent", "agent_state", "signal_agent", "kill_leftovers", "stop_all", "alive"} & used
    assert sorted(m for m in used if not hasattr(Launcher, m)) == []


def test_what_a_launcher_may_do_is_declared_and_the_local_launcher_does_it() -> None:
    assert {"signal", "kill_leftovers"} <= CAPABILITIES
    for member in ("agent", "alive", "address", "agent_state", "signal_agent", "kill_leftovers", "stop_all"):
        assert callable(getattr(Launcher, member)), member
        assert getattr(LocalLauncher, member) is not getattr(Launcher, member), member
    assert {"agent", "alive", "stop_all"} <= Launcher.__abstractmethods__
