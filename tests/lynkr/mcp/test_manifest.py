"""Manifest discovery and validation: the .mcp.json format, problems reported and skipped."""

from __future__ import annotations

import json
from pathlib import Path

from lynkr.mcp import discover_manifests, parse_manifest


def write(path: Path, data: object) -> Path:
    path.write_text(json.dumps(data) if not isinstance(data, str) else data)
    return path


def test_claude_code_format_stdio_and_http_entries() -> None:
    """Both stdio ({command,args,env}) and {type: http, url} entries parse."""
    loaded = parse_manifest({"mcpServers": {
        "time": {"command": "mcp-server-time", "args": ["--local-timezone", "UTC"],
                 "env": {"TZ": "UTC"}},
        "docs": {"type": "http", "url": "http://127.0.0.1:9000/mcp"}}}, "m.json")
    assert loaded.problems == ()
    time, docs = loaded.specs
    assert (time.transport, time.command, dict(time.env)) == (
        "stdio", ("mcp-server-time", "--local-timezone", "UTC"), {"TZ": "UTC"})
    assert (docs.transport, docs.url) == ("http", "http://127.0.0.1:9000/mcp")


def test_invalid_entries_are_reported_and_the_rest_load() -> None:
    """One bad entry is a problem naming the server; good entries still load."""
    loaded = parse_manifest({"mcpServers": {
        "ok": {"command": "x"}, "noargs": {"command": "x", "args": "not-a-list"},
        "bad type": {"command": "x"}, "ws": {"type": "websocket", "url": "ws://x"}}}, "m.json")
    assert [s.name for s in loaded.specs] == ["ok"]
    reasons = [p.reason for p in loaded.problems]
    assert any("'noargs'" in r and "args" in r for r in reasons)
    assert any("server name" in r for r in reasons)
    assert any("websocket" in r for r in reasons)
    assert all(p.source == "m.json" for p in loaded.problems)


def test_discovery_reads_file_and_dirs_skipping_broken_files(tmp_path: Path) -> None:
    """MCP_SERVER_MANIFEST and every *.json of the dirs load; a broken file is reported."""
    single = write(tmp_path / "single.json", {"mcpServers": {"a": {"command": "a"}}})
    directory = tmp_path / "dir"
    directory.mkdir()
    write(directory / "b.json", {"mcpServers": {"b": {"command": "b"}}})
    write(directory / "broken.json", "{not json")
    write(directory / "shape.json", {"servers": {}})
    write(directory / "dup.json", {"mcpServers": {"a": {"command": "other"}}})
    loaded = discover_manifests(single, [directory, tmp_path / "missing"])
    assert sorted(s.name for s in loaded.specs) == ["a", "b"]
    problems = {Path(p.source).name: p.reason for p in loaded.problems}
    assert "invalid JSON" in problems["broken.json"]
    assert "mcpServers" in problems["shape.json"]
    assert "already defined" in problems["dup.json"]


def test_missing_manifest_file_is_a_problem(tmp_path: Path) -> None:
    """A configured manifest that does not exist is reported, not a crash."""
    loaded = discover_manifests(tmp_path / "nope.json", [])
    assert loaded.specs == ()
    assert "No such file" in loaded.problems[0].reason
