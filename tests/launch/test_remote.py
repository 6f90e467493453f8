"""The SSH launcher's remote scripts and how their answers are read (pure: plush.launch.remote)."""

from __future__ import annotations

import subprocess

import pytest

from plush.launch.remote import ProbeFailed, host_dir, probe_script, read_probe, start_script


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
