"""``plush copy`` and ``plush gather`` on real agents (issue 11): :meth:`Controller.copy` and
:meth:`Controller.gather` on three connected local agents, then the CLI's cold path.

A file copied to every host lands in each exec directory byte for byte (sha256 checked), the second time from
the hosts' content cache (no data sent); gathered back, it is ``DIR/NAME.HOST`` for each host, byte for byte;
a host without the file fails with its reason (exit status 1). Escapes are refused: a destination or remote
path with ``..`` or absolute is refused before anything is sent (exit 2), and a symbolic link a command made
in the exec directory is never followed, for writing or for reading (the file outside stays as it was, is not
read).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
from integration_support import LENIENT, RUN_TIMEOUT, cli_env

from plush.config import Settings
from plush.controller.api import Controller
from plush.controller.execs import ExecError


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _exec_dir(controller: Controller, name: str) -> Path:
    assert controller.mesh is not None
    workdir = controller.mesh.members[name].workdir
    assert workdir is not None
    return Path(workdir).parent / "exec"


async def test_copy_then_gather_round_trip_through_the_cache_with_checksums(tmp_path: Path) -> None:
    source = tmp_path / "data.bin"
    source.write_bytes(os.urandom(600_000))  # several chunks
    source.chmod(0o750)
    controller = Controller(Settings(runs_dir=str(tmp_path / "runs"), **LENIENT))  # type: ignore[arg-type]
    try:
        await controller.connect(3)
        hosts = ["local-1", "local-2", "local-3"]

        first = await controller.copy(source, "in/data.bin", "local-[1-3]")
        assert first.ok and sorted(first.results) == hosts, first
        for name in hosts:
            placed = _exec_dir(controller, name) / "in" / "data.bin"
            assert _sha(placed) == _sha(source) and placed.stat().st_mode & 0o777 == 0o750
        again = await controller.copy(source, "again.bin")  # every connected host; the cache has it now
        assert again.ok and all(r.cached for r in again.results.values()), again

        out = tmp_path / "gathered"
        back = await controller.gather("in/data.bin", out, "local-[1-2]")
        assert back.ok and sorted(p.name for p in out.iterdir()) == ["data.bin.local-1", "data.bin.local-2"]
        assert all(_sha(out / f"data.bin.{n}") == _sha(source) for n in ("local-1", "local-2"))
        assert back.results["local-1"].path == str(out / "data.bin.local-1")

        (_exec_dir(controller, "local-3") / "only-here.txt").write_text("3\n")
        some = await controller.gather("only-here.txt", out)
        assert (some.status, some.results["local-3"].ok) == (1, True)
        assert "only-here.txt: No such file or directory" in some.results["local-1"].reason
        assert not list(out.glob(".*.part")) and (out / "only-here.txt.local-3").read_text() == "3\n"
    finally:
        await controller.quit()


async def test_a_path_that_would_leave_the_exec_directory_is_refused(tmp_path: Path) -> None:
    source = tmp_path / "f.txt"
    source.write_text("payload\n")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("not yours\n")
    controller = Controller(Settings(runs_dir=str(tmp_path / "runs"), **LENIENT))  # type: ignore[arg-type]
    try:
        await controller.connect(1)
        for bad in ("../f.txt", "/tmp/f.txt", "a/../../f.txt", "~/f.txt", ""):
            with pytest.raises(ExecError):
                await controller.copy(source, bad)
            with pytest.raises(ExecError):
                await controller.gather(bad, tmp_path / "g")
        (_exec_dir(controller, "local-1")).mkdir(exist_ok=True)
        (_exec_dir(controller, "local-1") / "link").symlink_to(outside)  # what a command could make

        through = await controller.copy(source, "link/secret.txt")
        assert through.status == 1 and "symbolic link" in through.results["local-1"].reason
        assert (outside / "secret.txt").read_text() == "not yours\n" and sorted(os.listdir(outside)) == ["secret.txt"]
        read = await controller.gather("link/secret.txt", tmp_path / "g")
        assert read.status == 1 and "symbolic link" in read.results["local-1"].reason
        assert list((tmp_path / "g").iterdir()) == []
    finally:
        await controller.quit()


def test_the_cold_path_copies_and_gathers_with_agents_of_its_own(tmp_path: Path) -> None:
    source = tmp_path / "f.txt"
    source.write_text("cold\n")
    base = [sys.executable, "-m", "plush"]
    cold = ["--hosts", "2", "--runs-dir", str(tmp_path / "runs")]

    def plush(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*base, *args],
            check=False,
            cwd=tmp_path,
            env=cli_env(),
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT,
        )

    done = plush("copy", str(source), "-w", "local-[1-2]", "f.txt", *cold)
    assert done.returncode == 0 and done.stderr.startswith("plush: copied: local-[1-2] (2")  # (one may find the
    # file in the machine's content cache that the other just filled)
    placed = sorted((tmp_path / "runs").glob("mesh-*/hosts/*/exec/f.txt"))
    assert [p.parts[-3] for p in placed] == ["local-1", "local-2"] and {p.read_text() for p in placed} == {"cold\n"}
    # each cold command has agents of its own: a new exec directory, the file is not there
    missing = plush("gather", "f.txt", "-w", "local-1", "out", *cold)
    assert missing.returncode == 1 and missing.stderr.startswith("plush: failed: local-1 (1): f.txt: No such file")
    refused = plush("copy", str(source), "../f.txt", *cold)
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1 and "goes up with '..'" in refused.stderr
