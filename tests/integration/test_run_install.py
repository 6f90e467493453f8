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
from integration_support import events, run_cli, run_root, write_spec


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
    roots = [run_root(first.stderr), run_root(second.stderr)]  # never the directory's order: ids say which
    assert sorted(p for p in runs.iterdir() if p.is_dir()) == roots  # ... though it is creation order too

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
    root = run_root(result.stderr)
    failed = events(root, "host.install_failed")
    assert failed and failed[0].data["software"] == "tool"
    assert events(root, "process.started") == []  # the start barrier never released


MODES_SPEC = """\
project: modes
software:
  tools:
    packages: [pkgs/tool.sh]
  app:
    type: tar
    packages: [pkgs/app.tar.gz]
components:
  c:
    hosts: 1
    software: [tools, app]
application:
  execution:
    c:
      blocks:
        - process: tool
          run: [./tool.sh]
"""


def test_a_shipped_executable_keeps_its_mode_and_runs_directly(tmp_path: Path) -> None:
    """A package with mode 0755 and an archive member with mode 0755 are executed as commands (they
    arrived 0600 once, and the process failed with exit status 126)."""
    (tmp_path / "pkgs").mkdir()
    tool = tmp_path / "pkgs" / "tool.sh"
    tool.write_text("#!/bin/sh\necho tool ok\nexec app/bin/run\n")
    tool.chmod(0o755)
    with tarfile.open(tmp_path / "pkgs" / "app.tar.gz", "w:gz") as tar:
        info = tarfile.TarInfo("app/bin/run")
        data = b"#!/bin/sh\necho run ok\n"
        info.size, info.mode = len(data), 0o755
        tar.addfile(info, io.BytesIO(data))
    spec = write_spec(tmp_path, MODES_SPEC)
    result = run_cli(spec, tmp_path / "runs", "-q")
    assert result.returncode == 0, result.stderr
    root = run_root(result.stderr)
    work = root / "hosts" / "local-1" / "work"
    assert (work / "tool.sh").stat().st_mode & 0o777 == 0o755
    assert (work / "app" / "bin" / "run").stat().st_mode & 0o777 == 0o755
    assert (root / "hosts" / "local-1" / "logs" / "c.tool.tool.1.stdout").read_text() == "tool ok\nrun ok\n"


APPEND_SPEC = """\
project: poison
software:
  data:
    packages: [pkgs/data.txt]
components:
  c:
    hosts: 1
    software: [data]
application:
  execution:
    c:
      blocks:
        - process: append
          run: [sh, -c, 'cat data.txt; echo poison >> data.txt']
"""


def test_a_process_appending_to_its_installed_package_leaves_the_next_run_pristine(tmp_path: Path) -> None:
    """Installed files were hard links to the agents' content cache: what a process appended reached the
    cache, hence the next run and every other host of the machine."""
    (tmp_path / "pkgs").mkdir()
    (tmp_path / "pkgs" / "data.txt").write_text("pristine\n")
    spec = write_spec(tmp_path, APPEND_SPEC)
    runs = tmp_path / "runs"
    roots = []
    for _ in range(2):
        result = run_cli(spec, runs, "-q")
        assert result.returncode == 0, result.stderr
        roots.append(run_root(result.stderr))
    for root in roots:
        assert (root / "hosts" / "local-1" / "logs" / "c.append.append.1.stdout").read_text() == "pristine\n"
        assert (root / "hosts" / "local-1" / "work" / "data.txt").read_text() == "pristine\npoison\n"
    assert sorted(bool(events(root, "file.sent")) for root in roots) == [False, True]  # one came from the cache
