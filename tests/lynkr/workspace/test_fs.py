"""File tools: confinement, symlinks, size limits, binary files, every decision audited."""

from __future__ import annotations

import os

from tests.lynkr.workspace.conftest import completions, decisions


async def test_fs_write_then_read_round_trips_text(make_runner, session, store):
    """A file written through fs_write reads back identically through fs_read."""
    runner = make_runner()
    wrote = await runner.call("fs_write", {"path": "a/b.txt", "content": "héllo\n"},
                              session_id=session)
    read = await runner.call("fs_read", {"path": "a/b.txt"}, session_id=session)
    assert wrote.ok
    assert read.ok
    assert read.content["content"] == "héllo\n"
    assert [d.decision for d in decisions(store, session)] == ["allow", "allow"]
    assert [c.ok for c in completions(store, session)] == [True, True]


async def test_parent_traversal_is_denied_and_audited(make_runner, session, store, ws):
    """`../` out of the workspace is refused with the rule and the setting named."""
    (ws.parent / "secret.txt").write_text("s3cret")
    result = await make_runner().call("fs_read", {"path": "../secret.txt"}, session_id=session)
    assert not result.ok
    assert "fs.path.confined" in result.content["error"]
    assert "WORKSPACE_ROOT" in result.content["error"]
    assert "s3cret" not in result.text()
    [decision] = decisions(store, session)
    assert (decision.decision, decision.rule) == ("deny", "fs.path.confined")
    assert decision.fields["path"] == "../secret.txt"


async def test_absolute_path_outside_is_denied(make_runner, session, store):
    """An absolute path outside the workspace is refused."""
    result = await make_runner().call("fs_read", {"path": "/etc/passwd"}, session_id=session)
    assert not result.ok
    assert decisions(store, session)[0].decision == "deny"


async def test_absolute_path_inside_is_allowed(make_runner, session, ws):
    """An absolute path that lies inside the workspace is fine."""
    (ws / "in.txt").write_text("x")
    result = await make_runner().call("fs_read", {"path": str(ws / "in.txt")},
                                      session_id=session)
    assert result.ok
    assert result.content["content"] == "x"


async def test_symlink_pointing_outside_is_denied(make_runner, session, store, ws):
    """A symlink inside the workspace that points outside is resolved, then refused."""
    outside = ws.parent / "outside.txt"
    outside.write_text("nope")
    (ws / "link.txt").symlink_to(outside)
    result = await make_runner().call("fs_read", {"path": "link.txt"}, session_id=session)
    assert not result.ok
    assert decisions(store, session)[0].rule == "fs.path.confined"


async def test_symlinked_directory_write_outside_is_denied(make_runner, session, ws):
    """Writing through a symlinked directory that leaves the workspace is refused."""
    target = ws.parent / "elsewhere"
    target.mkdir()
    (ws / "d").symlink_to(target)
    result = await make_runner().call("fs_write", {"path": "d/x.txt", "content": "x"},
                                      session_id=session)
    assert not result.ok
    assert not (target / "x.txt").exists()


async def test_symlink_inside_the_workspace_is_followed(make_runner, session, ws):
    """A symlink that stays inside the workspace reads its target."""
    (ws / "real.txt").write_text("real")
    (ws / "alias.txt").symlink_to(ws / "real.txt")
    result = await make_runner().call("fs_read", {"path": "alias.txt"}, session_id=session)
    assert result.ok
    assert result.content["content"] == "real"


async def test_write_into_git_dir_is_denied(make_runner, session, store, ws):
    """Nothing may be written under .git (hooks would run code)."""
    (ws / ".git" / "hooks").mkdir(parents=True)
    result = await make_runner().call(
        "fs_write", {"path": ".git/hooks/pre-commit", "content": "#!/bin/sh\n"},
        session_id=session)
    assert not result.ok
    assert decisions(store, session)[0].rule == "fs.path.git_dir"


async def test_binary_file_is_reported_not_dumped(make_runner, session, ws):
    """A file with NUL bytes comes back as binary with its size, without content."""
    (ws / "blob.bin").write_bytes(b"\x00\x01\x02" * 100)
    result = await make_runner().call("fs_read", {"path": "blob.bin"}, session_id=session)
    assert result.ok
    assert result.content["binary"] is True
    assert result.content["size"] == 300
    assert "content" not in result.content


async def test_read_is_cut_at_the_size_limit(make_runner, session, ws):
    """A file over WORKSPACE_FS_MAX_READ_BYTES is truncated and says so."""
    (ws / "big.txt").write_text("a" * 100)
    result = await make_runner(fs_max_read_bytes=10).call("fs_read", {"path": "big.txt"},
                                                          session_id=session)
    assert result.content["content"] == "a" * 10
    assert result.content["truncated"] is True


async def test_write_over_the_size_limit_is_denied(make_runner, session, store, ws):
    """A write over WORKSPACE_FS_MAX_WRITE_BYTES is denied naming the setting."""
    result = await make_runner(fs_max_write_bytes=4).call(
        "fs_write", {"path": "x.txt", "content": "12345"}, session_id=session)
    assert not result.ok
    assert "WORKSPACE_FS_MAX_WRITE_BYTES" in result.content["error"]
    assert not (ws / "x.txt").exists()


async def test_create_mode_refuses_to_overwrite(make_runner, session, ws):
    """mode=create fails cleanly when the file exists."""
    (ws / "x.txt").write_text("old")
    result = await make_runner().call("fs_write", {"path": "x.txt", "content": "new",
                                                   "mode": "create"}, session_id=session)
    assert not result.ok
    assert "already exists" in result.content["error"]
    assert (ws / "x.txt").read_text() == "old"


async def test_missing_file_is_a_clear_tool_error(make_runner, session):
    """Reading a file that does not exist is an error result, not a crash."""
    result = await make_runner().call("fs_read", {"path": "nope.txt"}, session_id=session)
    assert not result.ok
    assert "no such file" in result.content["error"]


async def test_list_shows_entries_and_skips_git_when_recursive(make_runner, session, ws):
    """fs_list lists files and directories; recursion skips .git."""
    (ws / "src").mkdir()
    (ws / "src" / "m.py").write_text("x = 1\n")
    (ws / ".git").mkdir()
    (ws / ".git" / "HEAD").write_text("ref")
    result = await make_runner().call("fs_list", {"recursive": True}, session_id=session)
    paths = {e["path"]: e["type"] for e in result.content["entries"]}
    assert paths["src"] == "dir"
    assert paths["src/m.py"] == "file"
    assert not any(p.startswith(".git/") for p in paths)


async def test_search_finds_lines_and_skips_binary(make_runner, session, ws):
    """fs_search returns path, line number and text; binary files are not searched."""
    (ws / "a.py").write_text("one\nneedle here\n")
    (ws / "b.bin").write_bytes(b"needle\x00")
    result = await make_runner().call("fs_search", {"query": "needle"}, session_id=session)
    assert result.content["matches"] == [{"path": "a.py", "line": 2, "text": "needle here"}]


async def test_search_with_bad_regex_is_an_input_error(make_runner, session):
    """An invalid regular expression is a clear tool error."""
    result = await make_runner().call("fs_search", {"query": "(", "regex": True},
                                      session_id=session)
    assert not result.ok
    assert result.error_type == "ToolInputError"


async def test_fifo_is_not_read(make_runner, session, ws):
    """A named pipe is refused instead of blocking the reader."""
    os.mkfifo(ws / "pipe")
    result = await make_runner().call("fs_read", {"path": "pipe"}, session_id=session)
    assert not result.ok
    assert "regular file" in result.content["error"]


