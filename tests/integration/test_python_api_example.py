"""The experiment script of docs/python-api.md runs as written (issue 8): ``from plush import Controller``,
connect five local sandbox hosts, run an application twice on the same agents, read the events.

The script is taken from the document (its one block that calls ``asyncio.run``) and run by a fresh
interpreter in an empty directory, with this suite's isolated home and lenient liveness settings
(``PLUSH_*`` variables: the script's ``Controller()`` reads them as ``plush`` does).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from integration_support import RUN_TIMEOUT, cli_env, run_processes

DOC = Path(__file__).resolve().parents[2] / "docs" / "python-api.md"


def example() -> str:
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.DOTALL)
    scripts = [b for b in blocks if "asyncio.run(main())" in b]
    assert len(scripts) == 1, "docs/python-api.md must hold exactly one runnable example"
    return scripts[0]


def test_the_documented_experiment_script_runs_as_written(tmp_path: Path) -> None:
    script = tmp_path / "experiment.py"
    script.write_text(example())
    done = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    runs = [line.split()[0] for line in lines[:2]]
    assert [line.split()[1] for line in lines[:2]] == ["ok", "ok"] and runs[0] != runs[1], done.stdout
    events = lines[2:]
    assert [e.split()[0] for e in events if e.startswith("run.")] == ["run.started", "run.finished"] * 2
    exited = [e for e in events if e.startswith("process.exited")]
    assert len(exited) == 10 and all("code=0" in e for e in exited), done.stdout
    assert sorted({e.split()[1] for e in exited}) == [f"local-{k}" for k in range(1, 6)]
    for run_id in runs:
        root = tmp_path / "plush-runs" / run_id
        assert (root / "journal.sqlite").exists()
        assert run_processes(run_id, root) == []
