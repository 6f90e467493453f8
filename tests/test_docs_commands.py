"""The docs promise only commands and flags that exist: every ``plush <command>`` named in README.md, docs/*.md
and examples/README.md is listed by ``plush --help`` (or its group's ``--help``), and every ``--flag`` used
with it is listed by ``plush <command> --help``.

Where a command is named: code (fenced or indented lines, and inline code spans). A flag belongs to the
``plush`` command before it in the same line or span; a span that is only a flag (``--json``) belongs to the
command of the section whose heading names one (``## `plush check SPEC...` ``). ``python -m plush.agent``
and its flags are checked against the agent's own ``--help``.
"""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest
from click.testing import CliRunner

import plush.shell.commands  # noqa: F401  (registers the subcommands)
from plush.shell.cli import cli

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), ROOT / "examples" / "README.md"]

#: ``plush WORD...``, but not Python's ``from plush import ...`` / ``import plush``
COMMAND = re.compile(r"(?<![\w./-])(?<!from )(?<!import )plush((?:[ \t]+[a-z][a-z0-9-]*)+)")
AGENT = re.compile(r"python3? -m plush\.agent")
FLAG = re.compile(r"(?<![\w-])(--?[a-zA-Z][a-zA-Z0-9-]*)")
SPAN = re.compile(r"`([^`]+)`")
AGENT_PATH = ("<agent>",)


@dataclass(frozen=True)
class Mention:
    where: str  # file:line
    command: tuple[str, ...]  # ("run",), ("config", "show"), AGENT_PATH
    flag: str | None = None


@cache
def help_text(path: tuple[str, ...]) -> str:
    if path == AGENT_PATH:
        proc = subprocess.run(
            [sys.executable, "-m", "plush.agent", "--help"], capture_output=True, text=True, check=True, timeout=60
        )
        return proc.stdout
    result = CliRunner().invoke(cli, [*path, "--help"])
    assert result.exit_code == 0, f"plush {' '.join(path)} --help: {result.output}"
    return result.output


def _section(text: str, title: str) -> list[str]:
    lines = text.splitlines()
    out: list[str] = []
    inside = False
    for line in lines:
        if re.match(r"^\S.*:$", line):
            inside = line.strip().lower() == title
            continue
        if inside and line.strip():
            out.append(line)
    return out


def subcommands(path: tuple[str, ...]) -> set[str]:
    """The commands that ``plush PATH --help`` lists (empty for a command that is not a group)."""
    return {line.split()[0] for line in _section(help_text(path), "commands:") if line.startswith("  ")}


def flags(path: tuple[str, ...]) -> set[str]:
    """Every flag that ``plush PATH --help`` lists (click's ``Options:``, argparse's ``options:``)."""
    found: set[str] = set()
    for line in _section(help_text(path), "options:"):
        if line.lstrip().startswith("-"):
            found.update(FLAG.findall(re.split(r"\s{2,}", line.strip())[0]))
    return found


def resolve(words: list[str]) -> tuple[tuple[str, ...], str | None]:
    """The command path the words name, or an error naming the first word that is not a command."""
    path: tuple[str, ...] = ()
    for word in words:
        known = subcommands(path)
        if word in known:
            path = (*path, word)
            continue
        if not path:
            return path, f"'plush {word}' is not a command (plush --help lists {sorted(known)})"
        break
    return path, None


def contexts(text: str) -> list[tuple[int, str, bool, tuple[str, ...] | None]]:
    """(line, code text, is an inline span, command of the section) for every piece of code in a document."""
    out: list[tuple[int, str, bool, tuple[str, ...] | None]] = []
    fenced = False
    section: tuple[str, ...] | None = None
    for n, line in enumerate(text.splitlines(), 1):
        if line.startswith("```"):
            fenced = not fenced
            continue
        if fenced or line.startswith("    "):
            out.append((n, line, False, section))
            continue
        if line.startswith("#"):
            m = COMMAND.search(line)
            section = resolve(m.group(1).split())[0] if m else None
            section = section or None
        for span in SPAN.findall(line):
            out.append((n, span, True, section))
    return out


def mentions() -> tuple[list[Mention], list[str]]:
    """Every command and flag the docs name, and the names that are not commands."""
    found: list[Mention] = []
    problems: list[str] = []
    for doc in DOCS:
        name = str(doc.relative_to(ROOT))
        for n, code, is_span, section in contexts(doc.read_text(encoding="utf-8")):
            where = f"{name}:{n}"
            # (position, command path) of each command named in this piece of code
            owners: list[tuple[int, tuple[str, ...]]] = []
            for m in COMMAND.finditer(code):
                path, error = resolve(m.group(1).split())
                if error is not None:
                    problems.append(f"{where}: {error}")
                    continue
                owners.append((m.end(), path))
                found.append(Mention(where, path))
            for m in AGENT.finditer(code):
                owners.append((m.end(), AGENT_PATH))
            for m in FLAG.finditer(code):
                before = [path for pos, path in owners if pos < m.start()]
                if before:
                    found.append(Mention(where, before[-1], m.group(1)))
                elif is_span and section and code.startswith(m.group(1)):
                    found.append(Mention(where, section, m.group(1)))
    return found, problems


MENTIONS, PROBLEMS = mentions()


def test_every_command_named_in_the_docs_exists() -> None:
    assert not PROBLEMS, "\n".join(PROBLEMS)


def test_the_docs_name_the_commands_people_use() -> None:
    named = {m.command for m in MENTIONS if m.flag is None}
    assert {("run",), ("check",), ("report",), ("config", "show")} <= named
    assert any(m.flag == "--hosts" and m.command == ("run",) for m in MENTIONS)


@pytest.mark.parametrize("mention", [m for m in MENTIONS if m.flag], ids=lambda m: f"{m.where} {m.flag}")
def test_every_flag_named_in_the_docs_exists(mention: Mention) -> None:
    assert mention.flag in flags(mention.command), (
        f"{mention.where}: {mention.flag} is not an option of "
        f"{'python -m plush.agent' if mention.command == AGENT_PATH else 'plush ' + ' '.join(mention.command)}"
    )
