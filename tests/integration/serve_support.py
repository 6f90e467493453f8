"""A real ``plush serve`` subprocess with its HTTP and XML-RPC listeners on loopback (ports chosen by the kernel),
for the API tests: where it listens (read from its own lines), its token (``plush serve --show-token``), and its
end (the process must exit 0 once asked to quit)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from integration_support import RUN_TIMEOUT, cli_env, wait_until


@dataclass
class Served:
    process: subprocess.Popen[str]
    cwd: Path
    http: str | None
    xmlrpc: str | None
    token: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def err(self) -> str:
        return (self.cwd / "serve.err").read_text()


def show_token(cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "plush", "serve", "--show-token"],
        cwd=cwd,
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        check=False,
    )


@contextmanager
def served(tmp_path: Path, *args: str, hosts: int = 3) -> Iterator[Served]:
    """``plush serve --hosts N --http 0 --xmlrpc 0 ARGS`` in ``tmp_path/served``, once its hosts are connected.
    Leaving the block kills it if it still runs (a test that quits it checks its exit status itself)."""
    cwd = tmp_path / "served"
    cwd.mkdir(exist_ok=True)
    argv = [sys.executable, "-m", "plush", "serve", "--hosts", str(hosts), "--name", "api", "--runs-dir", str(tmp_path)]
    with open(cwd / "serve.err", "w") as err:
        process = subprocess.Popen(
            [*argv, "--http", "127.0.0.1:0", "--xmlrpc", "0", *args],
            cwd=cwd,
            env=cli_env(),
            stdout=subprocess.DEVNULL,
            stderr=err,
            text=True,
            start_new_session=True,
        )
    try:
        wait_until(lambda: "hosts connected" in (cwd / "serve.err").read_text(), RUN_TIMEOUT, "serving", proc=process)
        text = (cwd / "serve.err").read_text()
        http = re.search(r"HTTP API at (\S+)", text)
        rpc = re.search(r"XML-RPC at (\S+)", text)
        token = show_token(cwd).stdout.strip()
        yield Served(process, cwd, http and http.group(1), rpc and rpc.group(1), token)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
