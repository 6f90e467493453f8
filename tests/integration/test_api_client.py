"""``plush.client`` against a real ``plush serve --http``: the complete example of docs/api.md runs as written
(its first ``python`` block, a subprocess in the repository), and the async client's calls, refusals and event
stream (issue 13)."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
from pathlib import Path

import pytest
from integration_support import RUN_TIMEOUT, cli_env
from serve_support import served

from plush.client import ApiError, AsyncClient

REPO = Path(__file__).resolve().parents[2]


def docs_example() -> str:
    text = (REPO / "docs" / "api.md").read_text()
    match = re.search(r"```python\n(.*?)```", text, re.S)
    assert match is not None
    return match.group(1)


async def test_the_docs_example_runs_and_the_async_client_does_what_the_api_does(tmp_path: Path) -> None:
    with served(tmp_path, hosts=2) as serve:
        assert serve.http is not None
        shown = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-c", docs_example()],
            cwd=REPO,
            env=cli_env(PLUSH_API=serve.http),
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT,
            check=False,
        )
        assert shown.returncode == 0, shown.stderr
        lines = shown.stdout.splitlines()
        assert lines[0] == "loaded tarball"
        names = [line.split()[1] for line in lines[1:6]]  # "ID NAME HOST BLOCK": each host's block, then the end
        assert sorted(names[:4]) == ["block.completed"] * 2 + ["block.started"] * 2 and names[4] == "run.finished"
        assert any(line.endswith("ok: True") for line in lines)
        assert "again: True ok" in lines
        shown_tree = lines.index("blocks: ['/tarball/workers', '/tarball/workers/show']")
        assert lines[shown_tree + 1] == "outcome: ok" and "hello" in lines[shown_tree + 2].lower()
        assert lines[-1] == "['local-1', 'local-2'] status 0"

        async with AsyncClient(serve.http) as plush:
            assert [h["name"] for h in await plush.hosts()] == ["local-1", "local-2"]
            assert await plush.add_host("spare", group="extra", properties={"site": "lab"}) == "spare"
            with pytest.raises(ApiError) as refused:
                await plush.abort()
            assert (refused.value.status, refused.value.code, str(refused.value)) == (
                409,
                "plush_error",
                "no application is running",
            )
            cursor = (await plush.status())["event"]
            started = await plush.run()
            seen = []
            async for event in plush.events(kinds=["run"], last_event_id=cursor):
                seen.append(event)
                if event["name"] == "run.finished":
                    break
            assert [e["name"] for e in seen] == ["run.started", "run.finished"]
            assert seen[0]["data"]["run"] == started["run"] and seen[0]["id"] < seen[1]["id"]
            assert await plush.barriers() == []  # tarball has none
            await plush.remove_host("spare")
            await plush.quit()
        assert serve.process.wait(timeout=RUN_TIMEOUT) == 0


#: two hosts print a line and leave an output file; a barrier between two blocks
RESULTS = """\
project: results
components:
  pair:
    hosts: 2
application:
  execution:
    pair:
      blocks:
        - process: make
          run: [sh, -c, 'echo "made on $PLUSH_HOST"; mkdir -p out; echo "$PLUSH_HOST" > out/mine.txt']
          outputs: [out/mine.txt]
        - barrier: made
          after: [make]
        - process: tell
          after: [made]
          run: [sh, -c, 'echo told >&2']
"""


async def test_the_application_tree_and_a_runs_results_over_http(tmp_path: Path) -> None:
    spec = tmp_path / "results.yaml"
    spec.write_text(RESULTS)
    with served(tmp_path, hosts=2) as serve:
        assert serve.http is not None
        async with AsyncClient(serve.http) as plush:
            with pytest.raises(ApiError) as refused:
                await plush.tree()
            assert refused.value.status == 409 and "no application is loaded" in str(refused.value)
            await plush.load(spec)
            tree = await plush.tree()
            assert [(b["path"], b["kind"]) for b in tree["blocks"]] == [
                ("/results/pair", "component"),
                ("/results/pair/make", "process"),
                ("/results/pair/made", "barrier"),
                ("/results/pair/tell", "process"),
            ]
            assert tree["edges"] == [
                {"from": "/results/pair/make", "to": "/results/pair/made"},
                {"from": "/results/pair/made", "to": "/results/pair/tell"},
            ]
            assert tree["order"] == {
                "/results/pair": [["/results/pair/make"], ["/results/pair/made"], ["/results/pair/tell"]]
            }
            assert tree["barriers"][0]["name"] == "made" and tree["barriers"][0]["shared_by"] == ["/results/pair"]
            assert tree["components"] == [
                {"name": "pair", "min": 2, "max": 2, "software": [], "blocks": ["/results/pair"]}
            ]

            summary = await plush.run_to_end()
            assert summary["ok"] is True
            run = summary["run"]
            assert [(r["run"], r["state"]) for r in await plush.runs()] == [(run, "completed")]
            status = await plush.run_status(run)
            assert (status["outcome"], status["hosts"], status["failures"]) == ("ok", ["local-1", "local-2"], 0)
            report = await plush.report(run)
            assert report["outcome"] == "ok" and report["entries"] == [] and report["run"] == run
            timeline = await plush.timeline(run)
            assert (timeline["run"], timeline["finished"], timeline["hosts"]) == (run, True, 2)
            waits = [s for g in timeline["groups"] for r in g["rows"] for s in r["spans"] if s[0] == "wait"]
            assert {s[4] for s in waits} == {"made"}
            files = {f["path"]: f for f in await plush.files(run)}
            mine = "hosts/local-1/outputs/out/mine.txt"
            assert files[mine]["kind"] == "output" and files[mine]["size"] == len("local-1\n")
            logs = [p for p, f in files.items() if f["kind"] == "log" and f["host"] == "local-2"]
            assert any(p.endswith(".stdout") and ".make." in p for p in logs), logs
            assert await plush.file(run, mine) == b"local-1\n"
            stdout = next(p for p in logs if p.endswith(".stdout") and ".make." in p)
            saved = await plush.save_file(run, stdout, tmp_path / "saved")
            assert saved.read_bytes() == b"made on local-2\n"

            for bad in ("../../etc/passwd", "/etc/passwd", "hosts/local-1/work/x", "hosts/local-1/logs/a\x00b"):
                with pytest.raises(ApiError) as refused:
                    await plush.file(run, bad)
                assert (refused.value.status, refused.value.code) == (400, "bad_result_path"), bad
            for missing_run, path in ((run[:-1] + "9", mine), (run, "hosts/local-9/outputs/x")):
                with pytest.raises(ApiError) as refused:
                    await plush.file(missing_run, path)
                assert (refused.value.status, refused.value.code) == (404, "not_found")
            with pytest.raises(ApiError) as refused:
                await plush.report("nothing-like-a-run")
            assert refused.value.status == 404
            with pytest.raises(ApiError) as refused:
                await plush.timeline(run[:-1] + "9")
            assert (refused.value.status, refused.value.code) == (404, "not_found")
            await plush.quit()
        assert serve.process.wait(timeout=RUN_TIMEOUT) == 0
