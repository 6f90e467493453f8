"""A text stream written by a thread of its own (:class:`Spool`), so a reader slow to read never stalls a run.

Role: ``plush run`` prints each output line of every host as it comes, from the controller's event loop. A
plain ``write`` to a pipe or terminal blocks once the reader stops reading (``plush run SPEC | less`` left on
its first page: 64 KiB later the pipe is full), and a blocked loop answers no agent: the hosts miss their pings
and the run fails for a reader's sake. The plain faces of a run write through a :class:`Spool` instead: the
caller appends to a queue and returns; a thread writes the queue to the real stream as fast as the reader
takes it.

Invariants:

- :meth:`Spool.write` never waits for the reader: it takes a lock held only to append or to swap the queue;
- memory is bounded: beyond ``limit`` characters queued, new text is not queued; the number of lines left out
  is written, once the reader catches up, as one line ``plush: N lines of output not shown here ...`` (the
  run's logs hold every line: nothing is lost, only not shown twice);
- text is written whole, in the order written (a write is never split nor reordered); the notice starts a
  line of its own;
- :meth:`Spool.close` writes everything still queued, then ends the thread (it waits for the reader, as any
  program's last write does); after it, writes go straight to the stream;
- a reader that went away (a broken pipe) ends the thread; later writes are dropped silently (as ``| head``
  users expect).
"""

from __future__ import annotations

import threading
from typing import TextIO

__all__ = ["LIMIT", "Spool"]

#: characters queued at most per stream before new text is left out (and counted)
LIMIT = 16 * 1024 * 1024


class Spool:
    """A text stream (``write``/``flush``) over ``stream``, written by a thread of its own (see the module)."""

    def __init__(self, stream: TextIO, *, limit: int = LIMIT) -> None:
        self._stream = stream
        self._limit = limit
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._queue: list[str] = []
        self._queued = 0  # characters in _queue
        self._left_out = 0  # lines not queued since the last notice
        self._closed = False
        self._broken = False
        self._mid_line = False  # the last text written did not end a line (a notice starts a line of its own)
        self._thread: threading.Thread | None = None

    def write(self, text: str, /) -> int:
        if not text:
            return 0
        with self._lock:
            if self._broken:
                return len(text)
            if self._closed:
                direct = True
            else:
                direct = False
                if self._queued + len(text) > self._limit:
                    self._left_out += text.count("\n") or 1
                else:
                    self._queue.append(text)
                    self._queued += len(text)
                if self._thread is None:
                    self._thread = threading.Thread(target=self._pump, name="plush-spool", daemon=True)
                    self._thread.start()
                self._wake.notify()
        if direct:
            self._write_now(text)
        return len(text)

    def flush(self) -> None:
        """Nothing to do: the thread flushes after each batch it writes."""

    def close(self) -> None:
        """Write what is queued (and the count of lines left out), end the thread; later writes go straight."""
        with self._lock:
            self._closed = True
            thread = self._thread
            self._wake.notify()
        if thread is not None:
            thread.join()

    def _write_now(self, text: str) -> None:
        try:
            self._stream.write(text)
            self._stream.flush()
            self._mid_line = not text.endswith("\n")
        except (OSError, ValueError):  # the reader went away, or the stream was closed
            with self._lock:
                self._broken = True

    def _pump(self) -> None:
        while True:
            with self._lock:
                while not self._queue and not self._left_out and not self._closed:
                    self._wake.wait()
                batch, self._queue, self._queued = self._queue, [], 0
                left_out, self._left_out = self._left_out, 0
                if not batch and not left_out and self._closed:
                    return
            text = "".join(batch)
            if left_out:
                if text[-1:] != "\n" and (text or self._mid_line):
                    text += "\n"
                text += (
                    f"plush: {left_out} lines of output not shown here: they were written faster than this "
                    "output was read (the run's logs hold every line)\n"
                )
            self._write_now(text)
            if self._broken:
                return
