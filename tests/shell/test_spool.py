"""The spool (plush.shell.spool): a writer never waits for the reader, memory stays bounded, nothing is
reordered or split, and what is left out is counted where it would have been.

The stream under the spool is a real pipe nobody reads, or a gate that holds every write until the test opens
it (the reader that stopped reading, then came back).
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import threading

from hypothesis import given, settings
from hypothesis import strategies as st

from plush.shell.spool import Spool

NOTICE = re.compile(r"^plush: (\d+) lines of output not shown here[^\n]*\n", re.M)


class Gate(io.StringIO):
    """A text stream whose writes wait until :attr:`open` is set (a reader that stopped reading)."""

    def __init__(self) -> None:
        super().__init__()
        self.open = threading.Event()

    def write(self, text: str, /) -> int:
        self.open.wait()
        return super().write(text)


def _write_all(spool: Spool, texts: list[str]) -> None:
    writer = threading.Thread(target=lambda: [spool.write(t) for t in texts])
    writer.start()
    writer.join(60)
    assert not writer.is_alive(), "a write waited for the reader"


def _counted(out: str) -> int:
    return sum(int(m.group(1)) for m in NOTICE.finditer(out))


def test_writes_to_a_pipe_nobody_reads_return_and_the_rest_is_counted_once_it_is_read() -> None:
    read_end, write_end = os.pipe()  # 64 KiB of kernel buffer, then a plain write would block
    stream = os.fdopen(write_end, "w", encoding="utf-8")
    spool = Spool(stream, limit=256 * 1024)
    lines = [f"line {i:06d} " + "x" * 90 + "\n" for i in range(20_000)]  # ~2 MB
    _write_all(spool, lines)  # nobody reads yet

    def close() -> None:
        spool.close()
        stream.close()

    closing = threading.Thread(target=close)
    closing.start()  # waits for the reader
    with os.fdopen(read_end, "r", encoding="utf-8") as reader:
        out = reader.read()  # until the spool wrote everything and the pipe closed
    closing.join(60)
    assert not closing.is_alive()
    shown = NOTICE.sub("", out).splitlines(keepends=True)
    assert _counted(out) > 0  # 2 MB could not all be queued under a 256 KiB limit
    assert len(shown) + _counted(out) == len(lines)
    assert shown == sorted(shown) and set(shown) <= set(lines)  # in order, each line whole


def test_a_reader_that_went_away_ends_the_spool_quietly() -> None:
    read_end, write_end = os.pipe()
    os.close(read_end)
    stream = os.fdopen(write_end, "w", encoding="utf-8")
    spool = Spool(stream)
    for _ in range(3):
        spool.write("to nobody\n")
    spool.close()  # returns: the broken pipe ended the thread
    spool.write("after the end\n")  # dropped, no exception
    with contextlib.suppress(BrokenPipeError):
        stream.close()


def test_the_notice_starts_a_line_of_its_own_after_a_partial_line() -> None:
    gate = Gate()
    spool = Spool(gate, limit=4)
    _write_all(spool, ["abc", "more than four\n"])
    gate.open.set()
    spool.close()
    assert gate.getvalue().startswith("abc\nplush: 1 lines of output not shown here")


@settings(max_examples=60)
@given(
    writes=st.lists(st.integers(min_value=1, max_value=5), min_size=1, max_size=60),
    limit=st.integers(min_value=1, max_value=200),
)
def test_every_line_is_shown_whole_in_order_or_counted_where_it_was_left_out(writes: list[int], limit: int) -> None:
    gate = Gate()
    spool = Spool(gate, limit=limit)
    texts, n = [], 0
    for count in writes:  # one write of `count` whole lines, as a run's console writes
        texts.append("".join(f"l{n + i}\n" for i in range(count)))
        n += count
    _write_all(spool, texts)
    gate.open.set()
    spool.close()
    out = gate.getvalue()
    kept = NOTICE.sub("", out)
    at, shown = 0, 0
    for text in texts:  # what is shown: whole writes, in the order written
        if kept.startswith(text, at):
            at += len(text)
            shown += text.count("\n")
    assert at == len(kept), "the text shown is not whole writes in the order written"
    assert shown + _counted(out) == n
    spool.write("after close\n")  # straight to the stream
    assert gate.getvalue().endswith("after close\n")
