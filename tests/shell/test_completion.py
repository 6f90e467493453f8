"""Completion: the terminal's (commands, host names and host sets, block paths, barriers, files) through
its prompt_toolkit completer over a real Controller, and the shell completion of the ``plush`` command (the
scripts bash, zsh and fish source, and what they answer), as docs/commands.md says to install it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from prompt_toolkit.completion import CompleteEvent
from prompt_toolkit.document import Document

from plush.config import Settings
from plush.controller.api import Controller
from plush.resources.host import Host
from plush.shell.terminal import make_completer

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
PLUSH = Path(sys.executable).with_name("plush")


def completions(controller: Controller, text: str) -> list[str]:
    completer = make_completer(controller)
    found = completer.get_completions(Document(text, len(text)), CompleteEvent(completion_requested=True))
    return [c.text for c in found]


@pytest.fixture
def controller(tmp_path: Path) -> Controller:
    c = Controller(Settings(runs_dir=str(tmp_path / "runs")))
    c.load(EXAMPLES / "filedist.xml")
    for n in (1, 2, 3):
        c.add_node(Host(name=f"node{n}", address="127.0.0.1"))
    return c


def test_the_terminal_completes_commands_hosts_host_sets_block_paths_and_files(
    controller: Controller, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert completions(controller, "res") == ["restart"]
    assert completions(controller, "fail no") == ["node1", "node2", "node3", "node[1-3]"]
    assert completions(controller, "info nodes node[") == ["node[1-3]"]
    assert completions(controller, "restart /filedist/senders/") == [  # no barrier: nothing to restart there
        "/filedist/senders/prepare",
        "/filedist/senders/prepare/prepare",
        "/filedist/senders/serve",
        "/filedist/senders/serve/serve",
    ]
    assert completions(controller, "restart /filedist/r") == [
        "/filedist/receivers",
        "/filedist/receivers/fetch",
        "/filedist/receivers/fetch/fetch",
    ]
    assert completions(controller, "restart node2") == ["node2"]
    assert completions(controller, "restart /filedist/receivers node") == ["node1", "node2", "node3", "node[1-3]"]
    assert completions(controller, "restart node1 no") == []  # HOSTS only after a block path
    monkeypatch.chdir(EXAMPLES)
    assert "dist.xml" in completions(controller, "load file")
    assert "dist.yaml" in completions(controller, "save file")


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_plush_prints_the_completion_script_each_shell_sources(shell: str) -> None:
    """docs/commands.md, "Shell completion": ``_PLUSH_COMPLETE=<shell>_source plush``."""
    done = subprocess.run(
        [str(PLUSH)],
        env=dict(os.environ, _PLUSH_COMPLETE=f"{shell}_source"),
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0 and done.stderr == ""
    assert "_plush_completion" in done.stdout and "_PLUSH_COMPLETE" in done.stdout


def test_the_completion_answers_subcommands_and_options() -> None:
    def complete(words: str) -> list[str]:
        env = dict(
            os.environ, _PLUSH_COMPLETE="bash_complete", COMP_WORDS=words, COMP_CWORD=str(len(words.split()) - 1)
        )
        done = subprocess.run([str(PLUSH)], env=env, capture_output=True, text=True, timeout=60, check=True)
        return [line.split(",", 1)[1] for line in done.stdout.splitlines()]

    assert complete("plush re") == ["release", "report", "restart"]
    assert "--force" in complete("plush save --")
