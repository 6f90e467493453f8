"""The SSH launcher's remote scripts and how their answers are read (pure: plush.launch.remote)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from plush.launch.remote import (
    ProbeFailed,
    StartAnswer,
    host_dir,
    probe_script,
    read_probe,
    read_start,
    relay_script,
    start_script,
    stdio_start_script,
    sweep_script,
)


def test_the_first_python_of_3_8_or_newer_is_taken() -> None:
    probe = read_probe("python python3 3.6\npython python3.9 3.9\ncached yes\nhome /home/a\n")
    assert (probe.python, probe.version, probe.cached, probe.home) == ("python3.9", (3, 9), True, "/home/a")


def test_no_python_and_a_too_old_one_are_said_in_words() -> None:
    with pytest.raises(ProbeFailed, match=r"^no python3 \(looked for python3, python3.14 ... python3.8"):
        read_probe("cached no\nhome /h\n")
    with pytest.raises(ProbeFailed, match=r"^python3 too old \(python3 is 3.6, the agent needs Python >= 3.8\)"):
        read_probe("python python3 3.6\ncached no\n")
    with pytest.raises(ProbeFailed, match="looked for /opt/py on its PATH"):
        read_probe("cached no\n", python="/opt/py")


def test_the_probe_runs_under_sh_and_finds_a_python() -> None:
    out = subprocess.run(["sh", "-c", probe_script("agent-x.pyz")], capture_output=True, text=True, check=True)
    probe = read_probe(out.stdout)
    assert probe.version >= (3, 8) and probe.cached is False


def test_the_token_is_never_on_the_command_line_and_names_are_plain() -> None:
    script = start_script("python3", "agent-x.pyz", host_dir("run-1", "n1"), ["--host", "n1; rm -rf /"])
    assert "'n1; rm -rf /'" in script  # quoted
    assert "--token-file" in script and "read -r tok" in script
    with pytest.raises(ValueError, match="not a plain file name"):
        host_dir("run-1", "../etc")


def test_one_command_starts_the_stdio_agent_or_says_what_the_host_lacks(tmp_path: Path) -> None:
    """The start command under sh: ``nopython`` when no candidate is on the PATH; ``missing PYTHON`` while the
    unpacked agent is not in the cache (a link there does not count); else the token line is read from stdin
    into a 0600 file and the shell ``exec``s the agent (a stand-in printing its pid, arguments and the rest
    of stdin) with the Python it found: the agent's pid is the shell's, the preamble its own."""
    fake = tmp_path / "bin" / "fake-python"
    fake.parent.mkdir()
    fake.write_text('#!/bin/sh\necho "pid $$ agent $*"; cat\n')
    fake.chmod(0o755)
    env = {"HOME": str(tmp_path), "PATH": f"{fake.parent}:/usr/bin:/bin"}

    def start(*pythons: str) -> str:
        script = stdio_start_script(pythons, "agent-x.pyz", host_dir("run-1", "n1"), ["--host", "n1"])
        assert "s3cret" not in script
        done = subprocess.run(
            ["sh", "-c", script], input="s3cret\nframes", capture_output=True, text=True, env=env, check=True
        )
        return done.stdout

    assert read_start(start("no-such-python", "nor-this")) == StartAnswer("nopython")
    cache = tmp_path / ".cache" / "plush"
    cache.mkdir(parents=True)
    (cache / "agent-x").symlink_to(tmp_path)
    assert read_start(start("no-such-python", "fake-python")) == StartAnswer("missing", python="fake-python")
    (cache / "agent-x").unlink()
    (cache / "agent-x").mkdir()
    first, rest = start("no-such-python", "fake-python").split("\n", 1)
    answer = read_start(first)
    assert answer.word == "pid" and answer.python.startswith("agent ")  # the stand-in's preamble
    assert f"{cache}/agent-x --stdio agent.sock --preamble fake-python --host n1 --token-file" in first
    assert rest == "frames"
    token = tmp_path / ".plush" / "run-1" / "hosts" / "n1" / ".token"
    assert token.read_text() == "s3cret\n" and token.stat().st_mode & 0o777 == 0o600


def test_the_start_preamble_is_read() -> None:
    assert read_start("pid 42 python3.12") == StartAnswer("pid", 42, "python3.12")
    assert read_start("missing /opt/py 3") == StartAnswer("missing", python="/opt/py 3")
    assert read_start("nopython") == StartAnswer("nopython")
    for other in ("oldpython 3.6", "3.6", "pid x python3", "pid 42", ""):
        assert read_start(other) == StartAnswer("other", text=other)


def test_a_relay_to_a_host_directory_that_is_gone_says_no_agent(tmp_path: Path) -> None:
    script = relay_script("python3", "agent-x.pyz", host_dir("run-1", "gone"))
    done = subprocess.run(["sh", "-c", script], env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}, check=False)
    assert done.returncode == 3


def test_the_sweep_names_the_run_the_mark_and_the_hosts_quoted() -> None:
    script = sweep_script("python3", "agent-x.pyz", "run 1", "ssh-ab", ["n1", "n;2"])
    assert script.endswith("--sweep 'run 1' PLUSH_SSH_RUN=ssh-ab n1 'n;2'")
    assert sweep_script("python3", "agent-x.pyz", "r", "ssh-ab", None).endswith("--sweep r PLUSH_SSH_RUN=ssh-ab")
