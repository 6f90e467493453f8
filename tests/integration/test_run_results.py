"""A whole run's results directory, walked: every mode is the results mode, nothing leaves the work dir.

Regression tests of issue 7, item 7. The application makes files of its own modes in its working directory
(they keep them), links a directory of ours outside the working directory (a mode-0640 file in it stands
for ``/etc/shadow``) and asks for ``outputs: ["**"]``. Every directory and file Plush wrote must then be
0700/0600 (``private``, the default) or 0755/0644 (``shared``), a collected output never wider than its
source, and nothing of the outside directory collected.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from integration_support import cli_env, events, run_cli, run_root, write_spec

SPEC = """\
project: modes
components:
  c:
    hosts: 1
application:
  execution:
    c:
      blocks:
        - process: make
          run:
            - sh
            - -c
            - |
              mkdir -p out appdir && chmod 0711 appdir
              echo secret-ish > out/r.txt && chmod 0640 out/r.txt
              echo 'echo hi' > out/x.sh && chmod 0755 out/x.sh
              echo app > app.sh && chmod 0751 app.sh
              echo plain > plain
              ln -s {outside} etc
              echo to-stdout; echo to-stderr >&2
          outputs: ["**"]
"""


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


@pytest.mark.parametrize(("results_mode", "dirs", "files"), [("private", 0o700, 0o600), ("shared", 0o755, 0o644)])
def test_every_mode_of_a_whole_run(tmp_path: Path, results_mode: str, dirs: int, files: int) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "shadow").write_bytes(b"SECRET")
    (outside / "shadow").chmod(0o640)
    spec = write_spec(tmp_path, SPEC.format(outside=outside))
    env = cli_env(PLUSH_RESULTS_MODE=results_mode) if results_mode != "private" else cli_env()
    result = run_cli(spec, tmp_path / "runs", "-q", env=env)
    assert result.returncode == 0, result.stderr
    root = run_root(result.stderr)
    umask = os.umask(0)
    os.umask(umask)

    work = root / "hosts" / "local-1" / "work"
    outputs = root / "hosts" / "local-1" / "outputs"
    # the application's own files keep their own modes (Plush changes no umask)
    assert {p: _mode(work / p) for p in ("app.sh", "appdir", "out/r.txt", "out/x.sh", "plain")} == {
        "app.sh": 0o751,
        "appdir": 0o711,
        "out/r.txt": 0o640,
        "out/x.sh": 0o755,
        "plain": 0o666 & ~umask,
    }
    # collected outputs: the source's bits, narrowed to the results mode; no link followed
    collected = {str(p.relative_to(outputs)): _mode(p) for p in outputs.rglob("*") if not p.is_dir()}
    assert collected == {
        "app.sh": 0o751 & dirs,
        "out/r.txt": 0o640 & dirs,
        "out/x.sh": 0o755 & dirs,
        "plain": (0o666 & ~umask) & dirs,
    }
    assert {e.data["name"] for e in events(root, "output.collected")} == set(collected)

    expected_special = {root / ".agent": 0o700, root / ".agent" / "token": 0o600, root / ".agent" / "ca.pem": 0o600}
    expected_special.update({outputs / name: mode for name, mode in collected.items()})
    wrong = {}
    seen = set()
    for top, subdirs, names in os.walk(root):
        here = Path(top)
        if here == work:
            subdirs.clear()  # the application's
            continue
        for name in subdirs + names:
            path = here / name
            seen.add(path.relative_to(root).as_posix())
            want = expected_special.get(path, dirs if stat.S_ISDIR(os.lstat(path).st_mode) else files)
            if _mode(path) != want or stat.S_ISLNK(os.lstat(path).st_mode):
                wrong[str(path.relative_to(root))] = oct(_mode(path))
    assert wrong == {}
    assert _mode(root) == dirs
    assert {
        "journal.sqlite",
        "spec.yaml",
        "spec.json",
        "report.txt",
        "report.json",
        "report.html",
        "shared",
        "hosts/local-1/agent.log",
        "hosts/local-1/logs/c.make.make.1.stdout",
        "hosts/local-1/logs/c.make.make.1.stderr",
        ".agent/zygote.log",
    } <= seen
    assert _mode(outside / "shadow") == 0o640
