"""The agent zipapp unpacks itself with bytecode, privately and only as what its name says (plush.agent.selfunpack)."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from plush.agent.selfunpack import UnpackError, member_parts, unpack
from plush.launch.bundle import agent_bundle


@given(st.text(alphabet=st.sampled_from(["a", "b", ".", "/", "\\", "\0", "é"]), max_size=12))
def test_a_plain_member_name_stays_inside_and_no_other_is_taken(name: str) -> None:
    parts = member_parts(name)
    root = "/r/agent"
    if parts is None:
        return
    joined = os.path.join(root, *parts)
    assert os.path.normpath(joined) == joined and joined.startswith(root + "/")
    assert "/".join(parts) == name and not name.startswith("/") and ".." not in parts


def _pyz(directory: Path, members: dict[str, bytes], symlink: str | None = None, name: str | None = None) -> Path:
    path = directory / "tmp.pyz"
    with zipfile.ZipFile(path, "w") as archive:
        for member, data in members.items():
            info = zipfile.ZipInfo(member)
            info.external_attr = (0o120777 if member == symlink else 0o100644) << 16
            archive.writestr(info, data)
    data = path.read_bytes()
    final = directory / (name or f"agent-{hashlib.sha256(data).hexdigest()[:20]}.pyz")
    path.rename(final)
    return final


def test_the_bundle_unpacks_to_a_private_directory_with_bytecode_and_runs(tmp_path: Path) -> None:
    bundle = agent_bundle()
    pyz = tmp_path / bundle.name
    pyz.write_bytes(bundle.data)
    done = subprocess.run([sys.executable, str(pyz), "--unpack"], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    target = tmp_path / bundle.name.removesuffix(".pyz")
    assert target.stat().st_mode & 0o777 == 0o700
    files = [p for p in target.rglob("*") if p.is_file()]
    assert files and all(p.stat().st_mode & 0o077 == 0 for p in files)
    assert list(target.glob("plush/agent/__pycache__/__main__.*.pyc"))
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".unpack-")] == []
    assert unpack(str(pyz)) == str(target)  # there already: nothing done
    run = subprocess.run([sys.executable, str(target), "--help"], capture_output=True, text=True, check=False)
    assert "--stdio SOCKET" in run.stdout


def test_an_archive_that_is_not_what_its_name_says_or_holds_unplain_members_is_refused(tmp_path: Path) -> None:
    wrong = _pyz(tmp_path, {"__main__.py": b""}, name="agent-0123456789abcdef0123.pyz")
    with pytest.raises(UnpackError, match="SHA-256"):
        unpack(str(wrong))
    for members, symlink in (
        ({"__main__.py": b"", "../evil.py": b"x"}, None),
        ({"/abs/evil.py": b"x"}, None),
        ({"a/./b.py": b"x"}, None),
        ({"link": b"/etc/passwd"}, "link"),
    ):
        pyz = _pyz(tmp_path, members, symlink)
        with pytest.raises(UnpackError, match="refused member"):
            unpack(str(pyz))
        assert not os.path.lexists(str(pyz)[: -len(".pyz")])
        pyz.unlink()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["agent-0123456789abcdef0123.pyz"]
    assert not (tmp_path.parent / "evil.py").exists()


def test_a_target_that_is_a_link_is_never_followed(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    pyz = _pyz(tmp_path, {"__main__.py": b"", "m.py": b"x = 1\n"})
    Path(str(pyz)[: -len(".pyz")]).symlink_to(elsewhere)
    with pytest.raises(UnpackError, match="not a directory of this user"):
        unpack(str(pyz))
    assert list(elsewhere.iterdir()) == []
