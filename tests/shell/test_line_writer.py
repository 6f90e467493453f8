"""The console renderer of ``plush run`` (:class:`plush.shell.console.LineWriter`) is linear in its input.

A process that writes a long stretch without a newline must not make the renderer re-scan or re-copy what
it holds: over-long lines are cut into pieces of ``MAX_LINE`` bytes, so what a stream keeps between calls
never reaches ``MAX_LINE`` and each byte is handled a bounded number of times.
"""

from __future__ import annotations

import io
import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from plush.shell.console import MAX_LINE, LineWriter

TAG = "[local-1 /app/c/p/x] "


def _writer() -> tuple[LineWriter, io.StringIO, io.StringIO]:
    out, err = io.StringIO(), io.StringIO()
    return LineWriter(stdout=out, stderr=err), out, err


def _lines(text: str) -> list[str]:
    lines = text.split("\n")
    assert lines[-1] == ""
    return lines[:-1]


def test_20_mb_without_a_newline_in_small_chunks_is_cut_at_the_fixed_size() -> None:
    writer, out, _ = _writer()
    chunk = b"x" * 4096
    total = 20 * 1024 * 1024
    for _ in range(total // len(chunk)):
        writer("local-1", "/app/c/p/x", 1, "stdout", chunk)
        assert writer.held() < MAX_LINE  # what it keeps between calls stays bounded
    writer.flush()
    lines = _lines(out.getvalue())
    assert all(line.startswith(TAG) for line in lines)
    sizes = [len(line) - len(TAG) for line in lines]
    assert sum(sizes) == total
    assert set(sizes[:-1]) == {MAX_LINE} and 0 < sizes[-1] <= MAX_LINE
    assert writer.held() == 0


def test_100_mb_in_one_chunk_is_cut_at_the_fixed_size_and_kept_short() -> None:
    writer, out, _ = _writer()
    writer("local-1", "/app/c/p/x", 1, "stdout", b"y" * (100 * 1024 * 1024 + 5))
    assert writer.held() == 5
    writer.flush()
    sizes = [len(line) - len(TAG) for line in _lines(out.getvalue())]
    assert sizes == [MAX_LINE] * (100 * 1024 * 1024 // MAX_LINE) + [5]


def test_a_cut_never_splits_a_utf8_character() -> None:
    writer, out, _ = _writer()
    text = "é" * MAX_LINE  # 2 bytes each: the pieces end on a character boundary
    writer("local-1", "/app/c/p/x", 1, "stdout", text.encode())
    writer.flush()
    lines = _lines(out.getvalue())
    assert "".join(line[len(TAG) :] for line in lines) == text
    assert "\ufffd" not in out.getvalue()


@settings(max_examples=200, deadline=None)
@given(
    data=st.lists(st.sampled_from([b"a", b"bb", b"\n", b"ccc\nd", b"\xc3\xa9", b"z" * 50]), max_size=60),
    cuts=st.lists(st.integers(min_value=0, max_value=400), max_size=10),
)
def test_any_split_of_the_stream_renders_the_same_lines(data: list[bytes], cuts: list[int]) -> None:
    """Short lines come out whole and in order, whatever the chunks; only lines over MAX_LINE are cut."""
    stream = b"".join(data)
    bounds = sorted({min(c, len(stream)) for c in cuts} | {0, len(stream)})
    writer, out, err = _writer()
    for lo, hi in itertools.pairwise(bounds):
        writer("local-1", "/app/c/p/x", 1, "stderr", stream[lo:hi])
    writer.flush()
    assert out.getvalue() == ""
    expected = stream.split(b"\n")
    if expected[-1] == b"":
        expected.pop()
    assert _lines(err.getvalue()) == [TAG + line.decode("utf-8", "replace") for line in expected]


def test_streams_and_instances_keep_their_own_partial_lines() -> None:
    writer, out, err = _writer()
    writer("local-1", "/app/c/p/x", 1, "stdout", b"he")
    writer("local-1", "/app/c/p/x", 2, "stdout", b"wor")
    writer("local-1", "/app/c/p/x", 1, "stderr", b"oops\n")
    writer("local-1", "/app/c/p/x", 1, "stdout", b"llo\n")
    writer("local-1", "/app/c/p/x", 2, "stdout", b"ld\n")
    assert _lines(out.getvalue()) == [TAG + "hello", "[local-1 /app/c/p/x#2] world"]
    assert _lines(err.getvalue()) == [TAG + "oops"]
