"""``plush run`` on the local sandbox of a spec written for other hosts: it runs, with one notice line, unless a
component's requirements are not met by this machine (then exit 2 before anything starts)."""

from __future__ import annotations

from pathlib import Path

from integration_support import run_cli, write_spec

SPEC = """
project: elsewhere
components:
  workers:
    hosts: 2
    resources: [{{type: ssh, group: lab}}]
    require: {require}
application:
  execution:
    workers:
      blocks:
        - {{process: hello, run: [sh, -c, 'echo "hi from $PLUSH_HOST"']}}
"""


def test_a_spec_for_ssh_hosts_runs_here_with_one_notice(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, SPEC.format(require="{cpus: '>=1'}"))
    proc = run_cli(spec, tmp_path / "runs")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stderr.splitlines()
    assert lines[0].startswith("plush: run ") and ": results in " in lines[0]  # scripts parse the first line
    notices = [line for line in lines if line.startswith("plush: notice:")]
    assert notices == [
        "plush: notice: running on local sandbox hosts instead of the resources the spec names: "
        "workers on 2 hosts (spec: ssh:lab)"
    ]


def test_an_unmet_requirement_is_a_clear_error_and_no_run(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, SPEC.format(require="{mem_mb: '>=1000000000'}"))
    proc = run_cli(spec, tmp_path / "runs")
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.splitlines() == [
        f"plush: error: {spec}:7: component 'workers' requires mem_mb >= 1000000000, but the local sandbox hosts "
        f"(this machine) have mem_mb={proc.stderr.split('mem_mb=')[-1].split(';')[0]}; no other hosts can be "
        "used yet"
    ]
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())
