"""Software installation in whole runs: packages from a spec-relative path, ``file://`` and ``http://``.

A tar bundle is unpacked in each host's working directory. The agents' content cache (sha256-keyed, under
``$XDG_CACHE_HOME``, private to each test) makes a second run of the same spec transfer nothing from the
controller: the journal of the first run has ``file.sent`` events, the second none.
"""

from __future__ import annotations

import functools
import http.server
import io
import tarfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from integration_support import events, run_cli, write_spec


def _tarball(path: Path, files: dict[str, bytes]) -> None:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


class _Server:
    """A static HTTP server on 127.0.0.1 in a thread; counts the GET requests per path."""

    def __init__(self, directory: Path) -> None:
        self.requests: list[str] = []
        server = self

        class Handler(http.server.SimpleHTTPRequestHandler):
            def do_GET(self) -> None:
                server.requests.append(self.path)
                super().do_GET()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=directory))
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/{name}"


@pytest.fixture
def web(tmp_path: Path) -> Iterator[_Server]:
    served = tmp_path / "www"
    served.mkdir()
    server = _Server(served)
    server.thread.start()
    try:
        yield server
    finally:
        server.httpd.shutdown()
        server.httpd.server_close()
        server.thread.join()


SPEC = """\
project: install
software:
  app:
    type: tar
    packages: [pkgs/app.tar.gz]
  conf:
    packages:
      - {{name: settings, path: "file://{conf}", dest: settings.ini}}
  tool:
    packages:
      - {{name: tool, path: "{url}", type: web, dest: tool.txt}}
components:
  workers:
    hosts: 2
    software: [app, conf, tool]
application:
  execution:
    workers:
      blocks:
        - process: show
          run: [sh, -c, 'cat app/VERSION settings.ini tool.txt']
"""


@pytest.mark.slow
def test_packages_from_path_file_url_and_http_install_and_are_cached(tmp_path: Path, web: _Server) -> None:
    (tmp_path / "pkgs").mkdir()
    _tarball(tmp_path / "pkgs" / "app.tar.gz", {"app/VERSION": b"app 1.2\n", "app/bin/run": b"#!/bin/sh\n"})
    conf = tmp_path / "elsewhere" / "settings.conf"
    conf.parent.mkdir()
    conf.write_bytes(b"[settings]\nmode = fast\n")
    (tmp_path / "www" / "tool-v3.txt").write_bytes(b"tool v3\n")
    spec = write_spec(tmp_path, SPEC.format(conf=conf, url=web.url("tool-v3.txt")))

    runs = tmp_path / "runs"
    first = run_cli(spec, runs, "-q")
    assert first.returncode == 0, first.stderr
    second = run_cli(spec, runs, "-q")
    assert second.returncode == 0, second.stderr
    roots = sorted(p for p in runs.iterdir() if p.is_dir())
    assert len(roots) == 2

    for root in roots:
        for host in ("local-1", "local-2"):
            work = root / "hosts" / host / "work"
            assert (work / "app" / "VERSION").read_bytes() == b"app 1.2\n"  # unpacked
            assert (work / "app" / "bin" / "run").is_file()
            assert (work / "app.tar.gz").is_file()  # the package itself stays, as copied
            assert (work / "settings.ini").read_bytes() == conf.read_bytes()
            assert (work / "tool.txt").read_bytes() == b"tool v3\n"
            out = (root / "hosts" / host / "logs" / "workers.show.show.1.stdout").read_text()
            assert out == "app 1.2\n[settings]\nmode = fast\ntool v3\n"
        installed = events(root, "host.installed")
        assert sorted(e.host or "" for e in installed) == ["local-1", "local-2"]
        assert all(e.data["software"] == ["app", "conf", "tool"] for e in installed)

    sent_first = events(roots[0], "file.sent")
    assert {e.data["key"] for e in sent_first} == {"pkg:app/app.tar.gz", "pkg:conf/settings"}
    assert {e.data["size"] for e in sent_first if e.data["key"] == "pkg:conf/settings"} == {conf.stat().st_size}
    assert events(roots[1], "file.sent") == []  # the cache served every controller package
    # web packages are fetched by the agents themselves, never through the controller
    assert web.requests and set(web.requests) == {"/tool-v3.txt"}


def test_missing_http_package_fails_the_install_naming_the_software(tmp_path: Path, web: _Server) -> None:
    (tmp_path / "pkgs").mkdir()
    _tarball(tmp_path / "pkgs" / "app.tar.gz", {"app/VERSION": b"x\n"})
    conf = tmp_path / "settings.conf"
    conf.write_bytes(b"x\n")
    spec = write_spec(tmp_path, SPEC.format(conf=conf, url=web.url("absent.txt")))
    result = run_cli(spec, tmp_path / "runs", "-q")
    assert result.returncode == 1
    assert "installing software 'tool' failed" in result.stderr
    root = next((tmp_path / "runs").iterdir())
    failed = events(root, "host.install_failed")
    assert failed and failed[0].data["software"] == "tool"
    assert events(root, "process.started") == []  # the start barrier never released
