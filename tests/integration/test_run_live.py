"""``plush run``'s faces (issue 12, "Live progress in plush run"): the live view on a terminal, ``--json``,
``--fold``, ``NO_COLOR``.

The live view is driven through a real pseudo-terminal (pexpect): its table of components and phase line
appear while the run goes, and the summary table (per component: hosts, done, failed, restarts, wall) and
the results path at the end. Synchronisation is on the terminal's own output (generous timeouts); no sleep.
Off a terminal the output is unchanged (the other integration tests read it).
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pexpect
from integration_support import cli_env, only_run, run_cli, write_spec

SPEC = """\
project: live
components:
  echo:
    hosts: 3
  other:
    hosts: 1
application:
  execution:
    echo:
      blocks:
        - process: say
          run: [sh, -c, 'echo same words; echo a warning >&2']
        - barrier: gate
          after: [say]
    other:
      blocks:
        - process: nap
          run: [sh, -c, 'echo other words']
        - barrier: gate
          after: [nap]
"""

#: an SGR sequence that sets a colour (foreground, background, 256 or true colour); bold or dim are not colours
COLOUR = re.compile(r"\x1b\[(?:[0-9;]*;)?(?:3[0-9]|4[0-9]|9[0-7]|10[0-7])(?:;[0-9;]*)?m")


def _transcript(tmp_path: Path, **env: str) -> tuple[int, str]:
    log = tmp_path / "pty.log"
    spec = write_spec(tmp_path, SPEC)
    child = pexpect.spawn(
        sys.executable,
        ["-m", "plush", "run", str(spec), "--runs-dir", str(tmp_path / "runs")],
        env=cli_env(TERM="xterm-256color", **env),
        cwd=str(tmp_path),
        encoding="utf-8",
        timeout=90,
        dimensions=(40, 150),
    )
    with log.open("w") as fh:
        child.logfile_read = fh
        try:
            child.expect(pexpect.EOF)
        finally:
            if child.isalive():
                child.terminate(force=True)
        child.close()
    return child.exitstatus if child.exitstatus is not None else -1, log.read_text()


def test_on_a_terminal_the_run_shows_its_live_view_then_a_summary_table(tmp_path: Path) -> None:
    code, text = _transcript(tmp_path, NO_COLOR="")
    assert code == 0, text
    assert "phase: " in text and "component" in text and "joining" in text  # the live view was drawn
    assert "[local-1 /live/echo/say/say] same words" in text  # the output above it
    assert "\x1b[1A" in text  # it was redrawn in place
    root = only_run(tmp_path / "runs")
    tail = text[text.rindex(f"run {root.name}: completed") :]  # the summary table, then the results path
    for column in ("component", "hosts", "done", "failed", "restarts", "wall"):
        assert column in tail
    assert re.search(r"echo\W+3\W+(\x1b\[[0-9;]*m)?3", tail), tail  # echo: 3 hosts, 3 done
    assert f"results: {root}" in tail.replace("\r\n", "\n").replace("\n", "")
    assert COLOUR.search(text)  # colours on a terminal ...


def test_no_color_draws_the_live_view_without_colour(tmp_path: Path) -> None:
    code, text = _transcript(tmp_path, NO_COLOR="1")
    assert code == 0, text
    assert "phase: " in text and "results: " in text
    assert not COLOUR.search(text), COLOUR.search(text)  # ... and none with NO_COLOR


def test_json_prints_one_event_per_line_through_run_finished(tmp_path: Path) -> None:
    result = run_cli(write_spec(tmp_path, SPEC), tmp_path / "runs", "--json")
    assert result.returncode == 0, result.stderr
    events = [json.loads(line) for line in result.stdout.splitlines()]
    names = [e["name"] for e in events]
    assert names[0] == "run.started" and names[-1] == "run.finished"
    assert events[-1]["data"]["ok"] is True
    outputs = [e for e in events if e["name"] == "process.output" and e["data"]["stream"] == "stdout"]
    assert sorted(e["data"]["data"] for e in outputs) == ["other words\n"] + ["same words\n"] * 3


def test_fold_gathers_identical_lines_of_three_hosts(tmp_path: Path) -> None:
    result = run_cli(write_spec(tmp_path, SPEC), tmp_path / "runs", "--fold")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    head = lines.index("local-[1-3] (3) /live/echo/say/say")
    assert lines[head + 2 : head + 3] == ["same words"]
    assert result.stdout.count("same words") == 1
    assert "local-4 (1) /live/other/nap/nap" in lines
    assert "local-[1-3] (3) /live/echo/say/say" in result.stderr.splitlines()  # stderr folded on stderr
    assert result.stderr.count("a warning") == 1


def test_a_client_run_against_plush_serve_has_the_same_faces(tmp_path: Path) -> None:
    """``plush run`` without SPEC (a client of ``plush serve``): the live view and its summary table on a
    terminal, fed by the streamed events; ``--json`` and ``--fold`` as for a batch run; plain lines off a
    terminal."""
    import os
    import signal
    import subprocess

    from integration_support import RUN_TIMEOUT, wait_until

    write_spec(tmp_path, SPEC)
    env = cli_env()
    with open(tmp_path / "serve.err", "w") as err:
        serve = subprocess.Popen(
            [sys.executable, "-m", "plush", "serve", "--hosts", "4", "--runs-dir", str(tmp_path / "runs")],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=err,
            start_new_session=True,
        )

    def plush(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "plush", *args], cwd=tmp_path, env=env, capture_output=True, text=True, check=False
        )

    try:
        wait_until(
            lambda: "hosts connected" in (tmp_path / "serve.err").read_text(), RUN_TIMEOUT, "serving", proc=serve
        )
        assert plush("load", "spec.yaml").returncode == 0
        child = pexpect.spawn(
            sys.executable,
            ["-m", "plush", "run"],
            env=cli_env(TERM="xterm-256color", NO_COLOR="1"),
            cwd=str(tmp_path),
            encoding="utf-8",
            timeout=90,
            dimensions=(40, 150),
        )
        with (tmp_path / "pty.log").open("w") as fh:
            child.logfile_read = fh
            child.expect(pexpect.EOF)
            child.close()
        text = (tmp_path / "pty.log").read_text()
        assert child.exitstatus == 0, text
        assert "phase: " in text and "joining" in text and "\x1b[1A" in text  # the live view, redrawn in place
        assert re.search(r"\[local-\d /live/echo/say/say\] same words", text)  # the output above it
        run_id = re.search(r"plush: run (\S+): results in (\S+)", text)
        assert run_id is not None
        tail = text[text.rindex(f"run {run_id.group(1)}: completed") :]
        assert re.search(r"echo\W+3\W+3", tail) and "results: " in tail  # the summary table

        as_json = plush("run", "--json")
        assert as_json.returncode == 0, as_json.stderr
        events = [json.loads(line) for line in as_json.stdout.splitlines()]
        assert events[0]["name"] == "run.started" and events[-1]["name"] == "run.finished"
        outputs = [e for e in events if e["name"] == "process.output" and e["data"]["stream"] == "stdout"]
        assert sorted(e["data"]["data"] for e in outputs) == ["other words\n"] + ["same words\n"] * 3

        folded = plush("run", "--fold")
        assert folded.returncode == 0, folded.stderr
        assert folded.stdout.count("same words") == 1 and re.search(r"\(3\) /live/echo/say/say", folded.stdout)

        plain = plush("run", "--plain")  # off a terminal anyway: the plain lines
        assert plain.returncode == 0 and plain.stdout.count("same words") == 3
        assert plush("quit").returncode == 0
        assert serve.wait(timeout=RUN_TIMEOUT) == 0
    finally:
        if serve.poll() is None:
            os.killpg(serve.pid, signal.SIGKILL)
            serve.wait()
