"""A prototype agent fork server ("zygote"), to measure what forking pre-imported agents would save.

    python -S bench/zygote.py        (stdin: one JSON request per line; stdout: one pid per line)

Role: bench-only evidence for a recommendation, not a launcher. The zygote imports the agent's whole
closure (``plush.agent.__main__`` and ``plush.agent.runtime``) ONCE, then for every request
``{"argv": [...], "cwd": DIR, "log": FILE}`` forks a child that becomes a session leader, sends its output to
``FILE``, changes to ``DIR`` and runs ``plush.agent.__main__.main(argv)``; the parent answers with the child's
pid. Each agent then costs a fork instead of an interpreter start plus ~0.1 s of imports.

Invariants: the zygote reaps its children (so their CPU adds to its ``RUSAGE_CHILDREN`` and, once the
controller reaps the zygote, to the controller's); it exits when its stdin closes and every child is gone.
The controller side is :func:`rusage_wrapper._patch_zygote`.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time


def _child(request: dict[str, object]) -> None:
    code = 1
    try:
        os.setsid()
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        fd = os.open(str(request["log"]), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        os.close(fd)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.close(null)
        os.chdir(str(request["cwd"]))
        sys.stdin = open(0, closefd=False)  # noqa: SIM115
        sys.stdout = open(1, "w", closefd=False, buffering=1)  # noqa: SIM115
        sys.stderr = open(2, "w", closefd=False, buffering=1)  # noqa: SIM115
        from plush.agent.__main__ import main

        argv = request["argv"]
        assert isinstance(argv, list)
        code = main([str(a) for a in argv])
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException as exc:
        print(f"zygote child failed: {exc!r}", file=sys.stderr)
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _reaper(done: threading.Event) -> None:
    while True:
        try:
            os.wait()
        except ChildProcessError:
            if done.is_set():
                return
            time.sleep(0.05)


def main() -> int:
    import plush.agent.__main__
    import plush.agent.runtime  # noqa: F401  (the whole closure, imported once)

    done = threading.Event()
    reaper = threading.Thread(target=_reaper, args=(done,), daemon=True)
    reaper.start()
    out = sys.stdout
    for line in sys.stdin:
        if not line.strip():
            continue
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:
            _child(request)
        out.write(f"{pid}\n")
        out.flush()
    done.set()
    reaper.join()
    return 0


if __name__ == "__main__":
    sys.exit(main())
