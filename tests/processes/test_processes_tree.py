"""Whole-tree kills with real process trees: forked children, setsid daemons, subreaper, /proc walks."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from plush.processes.policy import ExitStatus
from plush.processes.runner import start_process
from plush.processes.tree import descendants, find_tagged, kill_tree, proc_available, tree_members

PY = sys.executable
SRC = str(Path(__file__).resolve().parents[2] / "src")

pytestmark = pytest.mark.skipif(not proc_available(), reason="needs Linux /proc")

# The main process forks a child (same group) and, through it, a daemon that calls setsid (own session,
# own group: killpg cannot reach it) and ignores SIGTERM. Each reports its pid on stdout.
TREE = """
import os, signal, sys, time
def say(text):
    os.write(1, (text + "\\n").encode())
if os.fork() == 0:                      # child: stays in the group
    if os.fork() == 0:                  # intermediate: starts the daemon and exits
        os.setsid()
        if os.fork() == 0:              # daemon: own session, deaf to SIGTERM
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            say("daemon %d %d" % (os.getpid(), os.getpgid(0)))
            while True:
                time.sleep(1)
        os._exit(0)
    say("child %d" % os.getpid())
    while True:
        time.sleep(1)
say("main %d" % os.getpid())
while True:
    time.sleep(1)
"""


class Lines:
    def __init__(self) -> None:
        self.buf = bytearray()
        self.changed = asyncio.Event()

    async def __call__(self, stream: str, data: bytes) -> None:
        self.buf += data
        self.changed.set()

    async def wait_words(self, *words: str) -> dict[str, list[int]]:
        while True:
            complete = self.buf[: self.buf.rfind(b"\n") + 1].decode()  # writes may split lines
            found = {line.split()[0]: [int(x) for x in line.split()[1:]] for line in complete.splitlines()}
            if all(w in found for w in words):
                return found
            self.changed.clear()
            await asyncio.wait_for(self.changed.wait(), 10)


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


async def eventually(predicate: object, what: str) -> None:
    assert callable(predicate)
    for _ in range(200):
        if predicate():
            return
        await asyncio.sleep(0.025)
    raise AssertionError("timed out waiting for " + what)


async def test_stop_leaves_no_survivor_of_a_tree_with_an_escaped_daemon() -> None:
    lines = Lines()
    handle = await start_process([PY, "-c", TREE], sink=lines)
    try:
        found = await lines.wait_words("main", "child", "daemon")
        child, (daemon, daemon_pgid) = found["child"][0], found["daemon"]
        assert daemon_pgid != handle.pgid  # the daemon really escaped the process group
        # the intermediate process that started the daemon exits right after its fork: wait until it has
        await eventually(lambda: set(find_tagged(handle.tag)) == {handle.pid, child, daemon}, "the tree to settle")
        assert set(handle.members()) == {handle.pid, child, daemon}
        assert child in descendants(handle.pid)
    except BaseException:
        kill_tree(handle.tag, handle.pgid)  # a failed test leaves nothing running
        raise

    status = await handle.stop(grace=0.3)

    assert status == ExitStatus(signal=signal.SIGTERM)  # the main process obeyed SIGTERM
    assert handle.kill_reason == "stopped"
    assert find_tagged(handle.tag) == []
    assert not alive(child)
    assert not alive(daemon)  # deaf to SIGTERM: it took the SIGKILL


async def test_kill_tree_finds_descendants_that_left_the_group_and_the_main_process() -> None:
    script = (
        "import os, sys, time\n"
        "if os.fork() == 0:\n"
        "    os.setsid()\n"
        "    if os.fork() == 0:\n"
        "        fd = os.open(os.devnull, os.O_RDWR)\n"
        "        for n in (0, 1, 2): os.dup2(fd, n)\n"  # a proper daemon: lets go of the pipes
        "        time.sleep(300)\n"
        "    os._exit(0)\n"
        "os.wait()\n"
    )
    handle = await start_process([PY, "-c", script], sink=Lines())
    assert await handle.wait() == ExitStatus(code=0)  # the main process is gone, its daemon is not
    escaped = find_tagged(handle.tag)
    assert len(escaped) == 1
    daemon = escaped[0]
    assert os.getpgid(daemon) != handle.pgid
    assert kill_tree(handle.tag, handle.pgid, signal.SIGKILL) == [daemon]
    await eventually(lambda: not alive(daemon), "the daemon to die")
    assert tree_members(handle.tag, handle.pgid) == []


async def test_kill_tree_leaves_other_instances_alone() -> None:
    a = Lines()
    b = Lines()
    first = await start_process([PY, "-c", TREE], sink=a)
    second = await start_process([PY, "-c", TREE], sink=b)
    try:
        await a.wait_words("main", "child", "daemon")
        found_b = await b.wait_words("main", "child", "daemon")
        kill_tree(first.tag, first.pgid, signal.SIGKILL)
        assert await first.wait() == ExitStatus(signal=signal.SIGKILL)
        await eventually(lambda: find_tagged(first.tag) == [], "the first tree to go")
        assert alive(found_b["daemon"][0])
        assert alive(found_b["child"][0])
        assert set(second.members()) == {second.pid, found_b["child"][0], found_b["daemon"][0]}
    finally:
        await second.stop(grace=0.2)
    assert find_tagged(second.tag) == []


def test_subreaper_adopts_orphans_and_reap_all_descendants_kills_them() -> None:
    """In a separate interpreter (the subreaper flag is per process and must not leak into pytest)."""
    script = """
import json, os, signal, sys, time
from plush.processes.tree import descendants, enable_subreaper, reap_all_descendants, reap_zombies
me = os.getpid()
ok = enable_subreaper()
r, w = os.pipe()
child = os.fork()
if child == 0:
    parent = os.getpid()
    if os.fork() == 0:                      # the grandchild, orphaned when the child exits
        os.close(r)
        while os.getppid() == parent:
            time.sleep(0.01)
        os.write(w, str(os.getppid()).encode())
        os.close(w)
        time.sleep(300)
    os._exit(0)
os.close(w)
os.waitpid(child, 0)
adopted_by = int(os.read(r, 64))
below = descendants(me)
killed = reap_all_descendants(signal.SIGKILL)
for _ in range(500):                        # only we, the subreaper, can make its /proc entry go away
    reap_zombies()
    if not any(os.path.exists("/proc/%d" % pid) for pid in below):
        break
    time.sleep(0.01)
print(json.dumps({"ok": ok, "me": me, "adopted_by": adopted_by, "below": below, "killed": killed,
                  "gone": not any(os.path.exists("/proc/%d" % pid) for pid in below), "left": descendants(me)}))
"""
    env = dict(os.environ, PYTHONPATH=SRC)
    done = subprocess.run([PY, "-c", script], env=env, capture_output=True, text=True, timeout=60, check=True)
    result = json.loads(done.stdout)
    assert result["ok"] is True
    assert result["adopted_by"] == result["me"]  # the orphan reparented to us, not to init
    assert len(result["below"]) == 1
    assert result["killed"] == result["below"]
    assert result["gone"] is True  # killed and reaped: not even a zombie is left
    assert result["left"] == []


async def test_descendants_walks_ppid_links() -> None:
    lines = Lines()
    handle = await start_process(
        [PY, "-c", "import os, time\nif os.fork() == 0:\n    print('child', os.getpid(), flush=True)\ntime.sleep(300)"],
        sink=lines,
    )
    try:
        child = (await lines.wait_words("child"))["child"][0]
        assert descendants(handle.pid) == [child]
        mine = descendants(os.getpid())
        assert mine.index(handle.pid) < mine.index(child)  # parents before children
    finally:
        await handle.stop(grace=1.0)
    assert descendants(handle.pid) == []


def test_bad_tags_are_rejected() -> None:
    for bad in ("", "a=b", "a\0b"):
        with pytest.raises(ValueError):
            find_tagged(bad)
