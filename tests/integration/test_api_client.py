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
