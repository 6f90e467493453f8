"""The paths of ``plush copy`` and ``plush gather`` cannot leave a host's exec directory (property tests).

:func:`plush.agent.filecopy.exec_parts` is the agent's rule (the controller refuses the same texts first, by
:func:`~plush.spec.paths.host_path_problem`): any text it accepts, joined to the exec directory, names a path
strictly inside it, by text alone (no ``..``, not absolute, not the directory itself); everything the
controller refuses, the agent refuses too. Symbolic links on the host are the agent's on-disk business (tests/
integration/test_copy_gather.py).
"""

from __future__ import annotations

import os

from hypothesis import given
from hypothesis import strategies as st

from plush.agent.filecopy import exec_parts
from plush.agent.paths import PathRefused
from plush.spec.paths import host_path_problem

ROOT = "/srv/host/exec"
#: the pieces an escape is made of, and ordinary names
PIECES = st.sampled_from(["..", ".", "", "a", "b.txt", "~", "~x", "/", "//", "\\", "\x00", " ", "..a", "a..", "\n"])
TEXTS = st.lists(PIECES, max_size=8).map("".join) | st.lists(PIECES, max_size=6).map("/".join) | st.text(max_size=40)


@given(TEXTS)
def test_an_accepted_path_is_strictly_inside_the_exec_directory(text: str) -> None:
    try:
        parts = exec_parts(text)
    except PathRefused:
        return
    assert host_path_problem(text) is None  # the controller would have sent it
    joined = os.path.normpath(os.path.join(ROOT, *parts))
    assert joined.startswith(ROOT + "/") and joined == os.path.join(ROOT, text)
    assert ".." not in parts and all(parts)


@given(TEXTS)
def test_what_the_controller_refuses_the_agent_refuses(text: str) -> None:
    if host_path_problem(text) is not None:
        try:
            exec_parts(text)
        except PathRefused:
            return
        raise AssertionError(f"{text!r} accepted by the agent")
