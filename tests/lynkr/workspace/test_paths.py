"""Path confinement: resolution before the check, and no symlink followed at open time."""

from __future__ import annotations

import dataclasses
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lynkr.workspace._fs import fs_tools
from lynkr.workspace._paths import SymlinkRaceError, decide_path, open_confined
from tests.lynkr.workspace.conftest import decisions


def test_dotdot_inside_the_workspace_stays_allowed(ws):
    """`a/../b` that stays inside resolves and is allowed."""
    (ws / "a").mkdir()
    decision, path = decide_path(ws, "a/../b.txt")
    assert decision.allowed
    assert path.parts == ("b.txt",)


def test_nul_byte_in_path_is_denied(ws):
    """A NUL byte is refused before touching the file system."""
    decision, _ = decide_path(ws, "a\x00b")
    assert not decision.allowed
    assert decision.rule == "fs.path.valid"


def test_final_symlink_swapped_in_after_the_check_is_refused(ws, tmp_path):
    """The file is replaced by a symlink to outside between check and open: refused."""
    (ws / "f.txt").write_text("ok")
    decision, path = decide_path(ws, "f.txt")
    assert decision.allowed
    (ws / "f.txt").unlink()
    (ws / "f.txt").symlink_to(tmp_path / "outside.txt")
    (tmp_path / "outside.txt").write_text("secret")
    with pytest.raises(SymlinkRaceError):
        open_confined(path, os.O_RDONLY)


def test_directory_swapped_for_a_symlink_after_the_check_is_refused(ws, tmp_path):
    """A parent directory replaced by a symlink after the check is not walked through."""
    (ws / "d").mkdir()
    (ws / "d" / "f.txt").write_text("ok")
    _, path = decide_path(ws, "d/f.txt")
    (ws / "d" / "f.txt").unlink()
    (ws / "d").rmdir()
    (tmp_path / "evil").mkdir()
    (tmp_path / "evil" / "f.txt").write_text("secret")
    (ws / "d").symlink_to(tmp_path / "evil")
    with pytest.raises(SymlinkRaceError):
        open_confined(path, os.O_RDONLY)


async def test_swap_after_the_tool_check_is_refused_and_audited(make_runner, session, store,
                                                                ws, tmp_path):
    """Through the runner: a swap right after fs_read's check is denied and recorded."""
    (ws / "d").mkdir()
    (ws / "d" / "f.txt").write_text("ok")
    (tmp_path / "evil").mkdir()
    (tmp_path / "evil" / "f.txt").write_text("secret")
    fs_read = next(s for s in fs_tools() if s.name == "fs_read")
    real_check = fs_read.check
    assert real_check is not None

    async def check_then_swap(ctx, inputs):
        decision = await real_check(ctx, inputs)
        (ws / "d" / "f.txt").unlink()
        (ws / "d").rmdir()
        (ws / "d").symlink_to(tmp_path / "evil")
        return decision

    racy = dataclasses.replace(fs_read, name="fs_read_racy", check=check_then_swap)
    result = await make_runner(extra=[racy]).call("fs_read_racy", {"path": "d/f.txt"},
                                                  session_id=session)
    assert not result.ok
    assert "secret" not in result.text()
    verdicts = [(d.rule, d.decision) for d in decisions(store, session)]
    assert verdicts[0] == ("fs.path.confined", "allow")
    assert verdicts[-1][1] == "deny"


@pytest.fixture(scope="module")
def maze(tmp_path_factory):
    """A workspace with a directory, an inside symlink and an outside symlink."""
    base = tmp_path_factory.mktemp("maze")
    root = (base / "root")
    (root / "a" / "b").mkdir(parents=True)
    (root / "inside").symlink_to(root / "a")
    (root / "outside").symlink_to(base)
    return root.resolve()


@given(parts=st.lists(st.sampled_from(["..", ".", "a", "b", "inside", "outside", "", "x",
                                       "/", "/etc", "a/../.."]), min_size=1, max_size=8))
@settings(max_examples=200, deadline=None)
def test_an_allowed_path_always_resolves_inside(maze, parts):
    """Whatever mix of `..`, symlinks and absolute parts: allowed implies inside the root."""
    raw = "/".join(parts)
    decision, path = decide_path(maze, raw)
    real = os.path.realpath(maze / raw) if raw and "\x00" not in raw else None
    inside = real is not None and (real == str(maze) or real.startswith(f"{maze}/"))
    assert decision.allowed == inside
    if decision.allowed:
        assert str(path.absolute) == real


async def test_swap_between_handler_check_and_open_is_refused_by_nofollow(
        make_runner, session, store, ws, tmp_path, monkeypatch):
    """The last line of defence: a swap after every path check is caught by O_NOFOLLOW at
    open time, refused and audited as fs.path.no_symlink."""
    import lynkr.workspace._fs as fs_module

    (ws / "d").mkdir()
    (ws / "d" / "f.txt").write_text("ok")
    (tmp_path / "evil").mkdir()
    (tmp_path / "evil" / "f.txt").write_text("secret")
    real = fs_module.decide_path
    seen = []

    def decide_then_swap(root, raw, **kw):
        result = real(root, raw, **kw)
        seen.append(raw)
        if len(seen) == 2:  # the handler's own check: swap right after it
            (ws / "d" / "f.txt").unlink()
            (ws / "d").rmdir()
            (ws / "d").symlink_to(tmp_path / "evil")
        return result

    monkeypatch.setattr(fs_module, "decide_path", decide_then_swap)
    result = await make_runner().call("fs_read", {"path": "d/f.txt"}, session_id=session)
    assert not result.ok
    assert "secret" not in result.text()
    last = decisions(store, session)[-1]
    assert (last.rule, last.decision) == ("fs.path.no_symlink", "deny")
