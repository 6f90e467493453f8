"""The HTTP JSON API on a real ``plush serve --http`` (issue 13).

- Auth: the token is made once (0600) and ``--show-token`` prints only it; every request without it (any
  operation of ``/openapi.json``, any path, any method, a wrong or truncated token, another scheme) gets 401,
  the same JSON error, and no CORS header (Hypothesis over the routes).
- Operations: schemathesis, in tests/integration/test_api_schema.py.
- Event stream: a subscriber sees every journaled event of two runs in order (ids unique and increasing across
  the runs), each host's blocks started before completed; a subscriber that leaves after a few events and comes
  back with ``Last-Event-ID`` gets exactly the rest; process output comes live, without an id, and is never
  replayed.
"""

from __future__ import annotations

import asyncio
import json
import os
import stat
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import aiohttp
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from integration_support import RUN_TIMEOUT
from serve_support import Served, served, show_token

REPO = Path(__file__).resolve().parents[2]
#: the characters a header value may carry (latin-1, no controls)
WEB_DOORS = {(m, p) for m in ("GET", "HEAD", "POST") for p in ("/", "/login", "/static/plush.css")}
HEADER_CHARS = st.characters(min_codepoint=33, max_codepoint=255, exclude_characters="\x7f")
_FUZZ = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def call(
    serve: Served, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
) -> tuple[int, Any, Any]:
    """(status, JSON answer, headers) of one request."""
    assert serve.http is not None
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(serve.http + path, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=RUN_TIMEOUT) as reply:
            return reply.status, json.loads(reply.read()), reply.headers
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, json.loads(exc.read()), exc.headers


def test_the_token_is_made_once_0600_and_every_request_without_it_is_401(tmp_path: Path) -> None:
    with served(tmp_path, hosts=0) as serve:
        again = show_token(tmp_path)
        assert again.returncode == 0 and again.stdout == serve.token + "\n" and again.stderr == ""
        token_file = Path(os.environ["XDG_STATE_HOME"]) / "plush" / "api-token"
        assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
        status, document, _ = call(serve, "GET", "/openapi.json", headers=serve.auth)
        assert status == 200
        routes = [(m.upper(), p) for p, ops in document["paths"].items() for m in ops]
        assert len(routes) >= 14 and ("GET", "/v1/events") in routes

        bad_headers = st.one_of(
            st.just({}),
            st.just({"Authorization": f"Bearer {serve.token[:-1]}"}),
            st.just({"Authorization": serve.token}),
            st.just({"Authorization": f"Basic {serve.token}"}),
            st.text(
                st.characters(min_codepoint=33, max_codepoint=255, exclude_characters="\x7f"), min_size=1, max_size=60
            )
            .filter(lambda t: t != serve.token)
            .map(lambda t: {"Authorization": f"Bearer {t}"}),
        )
        paths = st.one_of(
            st.sampled_from([*routes, ("GET", "/openapi.json")]),
            st.tuples(
                st.sampled_from(["GET", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"]),
                st.from_regex(r"\A/[a-z0-9/._-]{0,30}\Z"),
            ),
        )

        @_FUZZ
        @given(route=paths, headers=bad_headers, origin=st.booleans())
        def unauthorized(route: tuple[str, str], headers: dict[str, str], origin: bool) -> None:
            method, path = route
            # the web UI's login page (and its style) is served to anyone; its shell sends to it (tests/web)
            assume((method, path) not in WEB_DOORS)
            path = path.replace("{name}", "local-1").replace("{run}", "20260101-000000-0001")
            sent = {**headers, **({"Origin": "http://evil.example"} if origin else {})}
            status, answer, got = call(serve, method, path, {} if method in ("POST", "PUT") else None, sent)
            assert status == 401, (method, path, status, answer)
            assert answer["error"]["code"] == "unauthorized"
            assert not any(h.lower().startswith("access-control-") for h in got)

        unauthorized()
        assert call(serve, "POST", "/v1/quit", {}, serve.auth)[0] == 200
        assert serve.process.wait(timeout=RUN_TIMEOUT) == 0
        assert serve.token not in serve.err()


async def _events(
    session: aiohttp.ClientSession,
    serve: Served,
    query: str,
    last: int | None = None,
    most: int | None = None,
    ready: asyncio.Event | None = None,
) -> list[dict[str, Any]]:
    """The events of one SSE connection: each with its ``id`` and ``event``, until run.finished or ``most`` events.
    ``ready`` is set once the answer's headers came (the server subscribed before it sent them)."""
    headers = {**serve.auth, **({"Last-Event-ID": str(last)} if last is not None else {})}
    seen: list[dict[str, Any]] = []
    async with session.get(f"{serve.http}/v1/events?{query}", headers=headers) as reply:
        assert reply.status == 200 and reply.headers["Content-Type"].startswith("text/event-stream")
        if ready is not None:
            ready.set()
        frame: dict[str, Any] = {}
        async for raw in reply.content:
            line = raw.decode().rstrip("\n")
            if line.startswith(":"):
                continue
            if line:
                key, _, value = line.partition(": ")
                frame[key] = value
                continue
            if frame:
                ident = int(frame["id"]) if "id" in frame else None
                seen.append({"id": ident, "event": frame["event"], **json.loads(frame["data"])})
                frame = {}
                if seen[-1]["event"] == "run.finished" or (most is not None and len(seen) >= most):
                    return seen
    return seen


OUTPUT = "kind=process.output,run.finished"


async def test_a_subscriber_sees_two_runs_in_order_and_a_resumed_one_misses_none(tmp_path: Path) -> None:
    with served(tmp_path, hosts=3) as serve:
        async with aiohttp.ClientSession() as session:
            status, _, _ = call(
                serve, "PUT", "/v1/application", {"path": str(REPO / "examples" / "tarball.xml")}, serve.auth
            )
            assert status == 200
            query = "kind=run,block,process.exited&kind=host.prepared"
            runs = []
            for _ in range(2):
                subscribed = asyncio.Event(), asyncio.Event(), asyncio.Event()
                everything = asyncio.create_task(_events(session, serve, query, ready=subscribed[0]))
                first_few = asyncio.create_task(_events(session, serve, query, most=3, ready=subscribed[1]))
                output = asyncio.create_task(_events(session, serve, OUTPUT, ready=subscribed[2]))
                for each in subscribed:
                    await each.wait()
                status, started, _ = call(serve, "POST", "/v1/runs", {}, serve.auth)
                assert status == 200
                seen, few, printed = await everything, await first_few, await output
                rest = await _events(session, serve, query, last=few[-1]["id"])
                assert few + rest == seen
                # process output is live only: no id, and a resumed stream does not replay it
                lines = [e for e in printed if e["event"] == "process.output"]
                assert lines and all(e["id"] is None and e["stream"] in ("stdout", "stderr") for e in lines)
                assert "hello" in "".join(e["data"] for e in lines).lower()
                replayed = await _events(session, serve, OUTPUT, last=seen[0]["id"])
                assert [e["event"] for e in replayed] == ["run.finished"]
                runs.append((started["run"], seen))
            ids = [e["id"] for _, seen in runs for e in seen]
            assert ids == sorted(set(ids))  # unique and increasing across the runs
            for run_id, seen in runs:
                assert seen[0]["event"] == "run.started" and seen[0]["data"]["run"] == run_id
                assert seen[-1]["event"] == "run.finished" and seen[-1]["data"]["ok"] is True
                blocks = [(e["host"], e["event"]) for e in seen if e["event"].startswith("block.")]
                hosts = {h for h, _ in blocks}
                assert len(hosts) == 2
                for host in hosts:
                    assert [ev for h, ev in blocks if h == host] == ["block.started", "block.completed"]
            status, answer, _ = call(serve, "GET", "/v1/runs/current", headers=serve.auth)
            assert status == 200 and answer["running"] is False and answer["last"]["ok"] is True
            assert answer["last"]["failures"]["outcome"] == "ok"
        assert call(serve, "POST", "/v1/quit", {}, serve.auth)[0] == 200
        assert serve.process.wait(timeout=RUN_TIMEOUT) == 0


def test_beyond_loopback_it_is_https_with_the_controllers_ca_and_xmlrpc_is_refused(tmp_path: Path) -> None:
    import ssl
    import subprocess
    import sys

    from integration_support import cli_env

    refused = subprocess.run(
        [sys.executable, "-m", "plush", "serve", "--xmlrpc", "0.0.0.0:0"],
        cwd=tmp_path,
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        check=False,
    )
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1 and "--xmlrpc-public" in refused.stderr
    with served(tmp_path, "--http", "0.0.0.0:0", hosts=0) as serve:
        assert serve.http is not None and serve.http.startswith("https://0.0.0.0:")
        port = serve.http.rsplit(":", 1)[1]
        ca = Path(os.environ["XDG_STATE_HOME"]) / "plush" / "ca" / "ca.pem"
        context = ssl.create_default_context(cafile=str(ca))
        request = urllib.request.Request(f"https://127.0.0.1:{port}/v1/hosts", headers=serve.auth)
        with urllib.request.urlopen(request, timeout=RUN_TIMEOUT, context=context) as reply:
            assert reply.status == 200 and json.loads(reply.read()) == []
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/hosts", timeout=RUN_TIMEOUT)
        except (urllib.error.URLError, ConnectionError) as exc:
            assert not isinstance(exc, urllib.error.HTTPError)  # no plain HTTP answer at all
        else:
            raise AssertionError("plain HTTP was served beyond loopback")
