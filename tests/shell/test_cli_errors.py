"""No traceback for a user's error, whatever the command (issue 7, item 17).

Every command that ``plush --help`` lists is run (as a real ``python -m plush`` process) with bad inputs: a
``--runs-dir`` naming a file, a directory that cannot be written, a corrupt, truncated or newer journal, a
missing or wrong spec, bad settings, unknown commands and options. Each must print exactly one
``plush: error: …`` line on stderr, no traceback, and exit with the documented status for such errors (2).
"""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from plush.controller.events import Event
from plush.controller.journal import Journal

SPEC = """\
project: ok
components:
  w:
    hosts: 1
application:
  execution:
    w:
      blocks:
        - process: p
          run: [sh, -c, 'exit 0']
"""

#: the exit status docs/commands.md gives to a command line, input or environment Plush cannot work with
USER_ERROR = 2


def plush(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    full = dict(os.environ)
    full.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "plush", *args],
        env=full,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def listed_commands() -> set[str]:
    """Every command of ``plush --help`` (a group's subcommands as ``group sub``)."""

    def commands(*prefix: str) -> list[str]:
        out = plush(*prefix, "--help").stdout
        section = out.split("Commands:", 1)[1] if "Commands:" in out else ""
        return re.findall(r"^  (\S+)", section, flags=re.MULTILINE)

    found = set()
    for name in commands():
        subs = commands(name)
        found |= {f"{name} {sub}" for sub in subs} if subs else {name}
    return found


@pytest.fixture
def read_only_dir(tmp_path: Path) -> Iterator[Path | None]:
    """A read-only file system (a tmpfs mounted ro, as root), or None where none can be had."""
    where = tmp_path / "ro"
    where.mkdir()
    if os.geteuid() != 0:
        yield None
        return
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(where)], check=False, capture_output=True
    )
    if done.returncode != 0:
        yield None
        return
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def journal_run(runs: Path, name: str) -> Path:
    root = runs / name
    root.mkdir(parents=True)
    journal = Journal(root / "journal.sqlite")
    for i in range(500):
        journal(Event(name="run.started" if i == 0 else "e", data={"i": i, "pad": "x" * 200}))
    journal.close()
    return root


def bad_inputs(tmp_path: Path, read_only: Path | None) -> dict[str, list[tuple[list[str], dict[str, str]]]]:
    """Per command: (arguments, environment) that must each give one error line."""
    a_file = tmp_path / "a-file"
    a_file.write_text("not a directory\n")
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC)
    needs_more = tmp_path / "needs-more.yaml"  # no matching: this machine has less memory than required
    needs_more.write_text(SPEC.replace("    hosts: 1\n", '    hosts: 1\n    require: {mem_mb: ">=1000000000"}\n', 1))
    runs = tmp_path / "runs"
    corrupt = journal_run(runs, "20260101-000000-0001")
    (corrupt / "journal.sqlite").write_bytes(b"this is no database\n" * 200)
    truncated = journal_run(runs, "20260101-000000-0002")
    data = (truncated / "journal.sqlite").read_bytes()
    (truncated / "journal.sqlite").write_bytes(data[: len(data) // 3])
    newer = journal_run(runs, "20260101-000000-0003")
    db = sqlite3.connect(newer / "journal.sqlite")
    db.execute("PRAGMA user_version=99")
    db.close()
    bad_toml = tmp_path / "xdg2"
    (bad_toml / "plush").mkdir(parents=True)
    (bad_toml / "plush" / "config.toml").write_text("stop_grace = [unclosed\n")
    unwritable = [str(read_only / "runs")] if read_only is not None else []
    state = {"XDG_STATE_HOME": str(tmp_path / "state")}
    return {
        "check": [
            ([str(tmp_path)], {}),
            ([str(tmp_path / "missing.yaml")], {}),
            ([str(a_file / "spec.yaml")], {}),
            ([], {}),
        ],
        "run": [
            ([str(spec), "--runs-dir", str(a_file)], {}),
            ([str(spec), "--runs-dir", str(a_file / "sub")], {}),
            *[([str(spec), "--runs-dir", d], {}) for d in unwritable],
            ([str(spec), "--hosts", "w=many"], {}),
            ([str(tmp_path / "missing.yaml")], {}),
            ([str(spec), "--no-such-option"], {}),
            ([str(spec), "--detach"], {}),
            (["--runs-dir", str(tmp_path)], {}),
        ],
        "plan": [
            ([str(tmp_path / "missing.yaml")], {}),
            ([str(spec), "--hosts", "w=many"], {}),
            ([str(spec), "--seed", "x"], {}),
            ([str(spec), "--hosts", "w=99999"], {}),
            ([str(needs_more)], {}),
            ([str(a_file / "spec.yaml")], {}),
        ],
        "report": [
            (["--runs-dir", str(a_file)], {}),
            ([str(corrupt)], {}),
            ([str(truncated)], {}),
            ([str(newer)], {}),
            (["nope", "--runs-dir", str(runs)], {}),
            ([str(a_file)], {}),
        ],
        "config show": [
            ([], {"PLUSH_STOP_GRACE": "soon"}),
            ([], {"XDG_CONFIG_HOME": str(bad_toml)}),
        ],
        "": [(["frobnicate"], {}), (["--no-such-flag"], {})],
        # the commands that talk to a controller: usage errors (no controller found is exit 5: test_serve_cli)
        "shell": [(["--bogus"], {})],
        "serve": [
            (["--hosts", "-1"], {}),
            (["--hosts", "2", "-d", str(spec)], {}),
            (["--name", "a b"], {}),
            (["--http", "nope"], {}),
            (["--http", "1:2:x"], {}),
            (["--xmlrpc", "10.1.2.3:0"], {}),  # beyond loopback without --xmlrpc-public
        ],
        "load": [([], {}), ([str(spec), "--no-such-option"], {})],
        "connect": [([], {}), (["node[3-1]"], {})],
        "disconnect": [(["--no-such-option"], {})],
        "create-resources": [(["now"], {})],
        "info": [([], {}), (["weather"], {})],
        "release": [([], {})],
        "fail": [([], {})],
        "restart": [(["local-1", "local-2"], {}), (["a", "b", "c"], {})],  # HOSTS only after a block path
        "save": [([], {}), (["x.xml", "--no-such-option"], {})],
        "abort": [(["now"], {})],
        "quit": [(["now"], {})],
        "web": [(["now"], {}), (["--no-such-option"], {})],
        # the distributed shell: usage errors before any agent starts
        "exec": [
            ([], {}),
            (["true"], {}),  # no host to start and no pool
            (["--hosts", "0", "true"], {}),
            (["--hosts", "2", "-w", "nope", "true"], {}),
            (["--hosts", "2", "-w", "local-[1-", "true"], {}),
            (["--hosts", "2", "-x", "local-[1-2]", "true"], {}),
            (["--hosts", "2", "-b", "-L", "true"], {}),
            (["--hosts", "2", "--timeout", "0", "true"], {}),
        ],
        "copy": [
            ([], {}),
            ([str(spec), "f"], {}),  # no host to start and no pool
            ([str(spec), "../f", "--hosts", "1"], {}),  # a destination out of the exec directory
            ([str(tmp_path / "missing"), "f", "--hosts", "1"], {}),
            ([str(spec), "f", "--hosts", "1", "--controller", "c"], {}),
        ],
        "gather": [
            ([], {}),
            (["/etc/passwd", str(tmp_path / "g"), "--hosts", "1"], {}),  # absolute: refused before sending
            (["f", str(tmp_path / "g"), "--hosts", "1", "--timeout", "-1"], {}),
        ],
        # the emulated cluster: refusals before anything is made (a state directory of the test's own)
        "cluster up": [(["2", "--name", "No-Good"], state), (["2", "--bandwidth", "x"], state), (["0"], state)],
        "cluster status": [(["nope"], state), (["Bad!"], state)],
        "cluster down": [(["Bad!"], state), (["--no-such-option"], state)],
        "cluster cut": [(["h1"], state), ([], state)],
        "cluster restore": [(["h1"], state)],
        "cluster freeze": [(["zz-h1"], state)],
        "cluster thaw": [(["h1"], state)],
    }


def test_every_command_gives_one_error_line_and_no_traceback(tmp_path: Path, read_only_dir: Path | None) -> None:
    table = bad_inputs(tmp_path, read_only_dir)
    assert listed_commands() <= set(table), "add the new command's bad inputs to this test"
    failures = []
    for command, cases in table.items():
        for args, env in cases:
            done = plush(*command.split(), *args, env=env, cwd=tmp_path)
            errors = [line for line in done.stderr.splitlines() if line.startswith("plush: error: ")]
            if "Traceback" in done.stderr or len(errors) != 1 or done.returncode != USER_ERROR:
                failures.append(f"plush {command} {' '.join(args)} {env}: exit {done.returncode}\n{done.stderr}")
    assert not failures, "\n\n".join(failures)
