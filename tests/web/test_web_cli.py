"""How a user gets to the web UI: ``plush serve --http`` says where it is without the token; ``plush web``
prints the sign-in address (with the token) asked of the serve over its control socket, or opens it through a
0600 page so that the token is on no command line."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import urllib.request
from pathlib import Path

from integration_support import RUN_TIMEOUT, cli_env
from serve_support import served


def _web(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "plush", "web", *args],
        cwd=cwd,
        env=cli_env(**env),
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        check=False,
    )


def test_plush_web_prints_the_sign_in_address_which_the_serve_never_logs(tmp_path: Path) -> None:
    with served(tmp_path, hosts=0) as serve:
        assert f"plush: web UI at {serve.http}/ (sign in: plush web)" in serve.err()
        done = _web(serve.cwd)
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == f"{serve.http}/?token={serve.token}"
        with urllib.request.urlopen(done.stdout.strip(), timeout=30) as page:  # follows the 303 to /login
            assert page.url == f"{serve.http}/login"
        assert serve.token not in serve.err()


def test_plush_web_open_hands_the_browser_a_private_page_not_the_token(tmp_path: Path) -> None:
    argv = tmp_path / "browser-argv"
    browser = tmp_path / "browser"
    browser.write_text(f'#!/bin/sh\necho "$@" > {argv}\n')
    browser.chmod(0o755)
    with served(tmp_path, hosts=0) as serve:
        done = _web(serve.cwd, "--open", BROWSER=str(browser))
        assert done.returncode == 0, done.stderr
        assert serve.token not in done.stdout + done.stderr
        opened = argv.read_text().strip()
        assert serve.token not in opened and opened.startswith("file://")
        page = Path(opened.removeprefix("file://"))
        assert stat.S_IMODE(os.stat(page).st_mode) == 0o600
        assert f"{serve.http}/?token={serve.token}" in page.read_text()


def test_plush_web_of_a_controller_without_http_says_so(tmp_path: Path) -> None:
    cwd = tmp_path / "plain"
    cwd.mkdir()
    process = subprocess.Popen(
        [sys.executable, "-m", "plush", "serve", "--hosts", "0", "--name", "plain"],
        cwd=cwd,
        env=cli_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        assert process.stderr is not None
        for line in process.stderr:
            if "hosts connected" in line:
                break
        done = _web(cwd, "--controller", "plain")
        assert done.returncode == 1
        said = "plush: error: plain serves no web UI: start it with plush serve --http [ADDR:]PORT"
        assert done.stderr.strip() == said
    finally:
        process.terminate()
        process.wait(RUN_TIMEOUT)
        if process.stderr is not None:
            process.stderr.close()
