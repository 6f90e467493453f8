"""Host paths a spec names (``dest``, ``cwd``, redirections, ``outputs``): nothing accepted leaves the working dir.

The property tests try to break out with every trick that a path can hold (``..``, absolute paths, ``~``,
empty and ``.`` segments, backslashes, NUL and other control characters, very long texts) and check each
accepted text on a real directory: the file it names is created strictly inside the sandbox, and nothing
outside the sandbox changes.
"""

from __future__ import annotations

import os
import posixpath
import tempfile
from pathlib import PurePosixPath, PureWindowsPath

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from plush.spec.paths import MAX_HOST_PATH, MAX_SEGMENT, host_path_problem

#: fragments that a hostile path is made of
_PIECES = st.sampled_from(
    ["..", ".", "/", "//", "~", "~root", "\\", "..\\", "\x00", "\n", "a", "b.txt", "*", "**", "?", "[a]", "é", " ", "-"]
)
hostile = st.lists(_PIECES, min_size=0, max_size=8).map("".join) | st.text(max_size=20)

_SEGMENT = st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.@+-]{0,12}", fullmatch=True).filter(lambda s: s not in (".", ".."))
plain = st.lists(_SEGMENT, min_size=1, max_size=4).map("/".join)


def _snapshot(top: str) -> list[tuple[str, int]]:
    out = []
    for dirpath, dirnames, filenames in os.walk(top):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            out.append((path, os.lstat(path).st_mtime_ns))
    return sorted(out)


@settings(max_examples=400, deadline=None)
@given(hostile)
def test_an_accepted_path_stays_strictly_inside_the_working_directory(text: str) -> None:
    if host_path_problem(text) is not None:
        return
    assert not posixpath.isabs(text) and not PureWindowsPath(text).is_absolute()
    assert ".." not in PurePosixPath(text).parts and "\\" not in text and "\x00" not in text
    root = "/w/host/work"
    joined = posixpath.normpath(posixpath.join(root, text))
    assert joined != root and posixpath.commonpath([root, joined]) == root
    assert posixpath.expanduser(text) == text


@settings(max_examples=150, deadline=None)
@given(hostile | plain)
def test_writing_an_accepted_path_changes_nothing_outside_a_sandbox(text: str) -> None:
    if host_path_problem(text) is not None:
        return
    with tempfile.TemporaryDirectory() as top:
        work = os.path.join(top, "a", "b", "work")
        os.makedirs(work)
        with open(os.path.join(top, "a", "outside"), "w") as f:
            f.write("x")

        def outside() -> list[tuple[str, int]]:
            return [p for p in _snapshot(top) if p[0] != work and not p[0].startswith(work + os.sep)]

        before = outside()
        target = os.path.join(work, text)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with open(target, "w") as f:  # what the agent does with a dest or a stdout redirection
            f.write("written")
        real = os.path.realpath(target)
        assert real.startswith(os.path.realpath(work) + os.sep)
        assert outside() == before


@settings(deadline=None)
@given(plain)
def test_plain_relative_paths_are_accepted(text: str) -> None:
    assert host_path_problem(text) is None


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "empty"),
        ("../../../../tmp/x", "'..'"),
        ("a/../../x", "'..'"),
        ("a/..", "'..'"),
        ("/tmp/x", "absolute"),
        ("//x", "absolute"),
        ("~/x", "~"),
        ("~root", "~"),
        ("a//b", "empty segment"),
        ("a/", "empty segment"),
        ("./x", "'.'"),
        ("a\\..\\..\\x", "backslash"),
        ("a\x00b", "control character"),
        ("a\nb", "control character"),
        ("x" * (MAX_SEGMENT + 1), "over 255 bytes"),
        ("/".join(["d" * 200] * 21), "bytes long"),
        ("a\udc80", "not valid text"),
    ],
)
def test_escapes_are_refused_with_a_reason(text: str, reason: str) -> None:
    problem = host_path_problem(text)
    assert problem is not None and reason in problem


def test_the_limits_themselves_are_accepted() -> None:
    assert host_path_problem("x" * MAX_SEGMENT) is None
    long = "/".join(["d" * 254] * 16)[:MAX_HOST_PATH].rstrip("/")
    assert host_path_problem(long) is None
    assert host_path_problem("out/**/*.log") is None
    assert host_path_problem("a~b/c~") is None
