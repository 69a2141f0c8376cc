"""The indexer's server tools, called directly as the tool registry would call them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from actors import EventStore
from actors.indexer import IndexerActor
from eventstore import MemoryRecorder
from lynkr.errors import ToolError, ToolInputError
from lynkr.indexer import SCHEMAS, indexer_tool_specs

from .conftest import write_tree


@dataclass
class Ctx:
    """The two context fields the indexer's handlers may use."""

    session_id: str | None
    workspace_root: Path


@pytest.fixture
def tools(repo, make_indexer):
    indexer = make_indexer(repo)
    recorder = MemoryRecorder()
    ref = IndexerActor.start(indexer, EventStore.start(recorder))
    specs = {spec.name: spec for spec in indexer_tool_specs(indexer, ref)}
    yield specs, recorder
    ref.stop()


async def call(specs, name, args, root=Path(".")):
    return await specs[name].handler(Ctx("s1", root), args)


def test_every_schema_is_closed_and_names_its_required_fields():
    """Each input schema is an object with additionalProperties false."""
    assert set(SCHEMAS) == {"workspace_index_rebuild", "workspace_symbol_search",
                            "workspace_symbol_references", "project_summary"}
    for schema in SCHEMAS.values():
        assert schema["type"] == "object"
        assert schema["additionalProperties"] is False
    assert SCHEMAS["workspace_symbol_search"]["required"] == ["query"]
    assert SCHEMAS["workspace_symbol_references"]["required"] == ["name"]


async def test_rebuild_then_search_references_and_summary(tools):
    """The four tools work end to end through the actor and the catalogue."""
    specs, recorder = tools
    rebuilt = await call(specs, "workspace_index_rebuild", {})
    assert rebuilt["files"] == 8
    assert rebuilt["changed"] == 8
    found = await call(specs, "workspace_symbol_search", {"query": "formatPrice"})
    assert found["results"][0]["path"] == "src/money.ts"
    refs = await call(specs, "workspace_symbol_references", {"name": "formatPrice"})
    assert [d["path"] for d in refs["definitions"]] == ["src/money.ts"]
    assert {r["path"] for r in refs["references"]} == {"src/cart.ts", "src/checkout.tsx"}
    summary = await call(specs, "project_summary", {})
    assert summary["languages"]["typescript"] == 2
    assert "Jest" in summary["project"]["frameworks"]
    assert [r.event.type_name for r in recorder.read_stream("system")] == ["IndexRebuilt"]


@pytest.mark.parametrize(("name", "args", "message"), [
    ("workspace_symbol_search", {}, "'query' is a required property"),
    ("workspace_symbol_search", {"query": ""}, "query"),
    ("workspace_symbol_search", {"query": "x", "mode": "regex"}, "mode"),
    ("workspace_symbol_search", {"query": "x", "limit": 0}, "limit"),
    ("workspace_symbol_references", {"name": "x", "extra": 1}, "Additional properties"),
    ("workspace_index_rebuild", {"force": True}, "Additional properties"),
    ("project_summary", {"x": 1}, "Additional properties"),
])
async def test_bad_input_is_a_tool_input_error(tools, name, args, message):
    """Inputs that break the schema raise ToolInputError naming the problem."""
    specs, _ = tools
    with pytest.raises(ToolInputError, match=message):
        await call(specs, name, args)


async def test_summary_before_a_rebuild_is_a_tool_error(tools):
    """project_summary on an empty catalogue is a ToolError telling to rebuild."""
    specs, _ = tools
    with pytest.raises(ToolError, match="run a rebuild"):
        await call(specs, "project_summary", {})


async def test_summary_reports_coverage_files_found_and_missing(tools, repo):
    """Configured coverage files are reported with their percentage or as not found."""
    specs, _ = tools
    write_tree(repo, {"coverage.xml": '<coverage line-rate="0.9"></coverage>'})
    await call(specs, "workspace_index_rebuild", {})
    coverage = {c["path"]: c for c in (await call(specs, "project_summary", {}))["coverage"]}
    assert coverage["coverage.xml"]["lines_pct"] == 90.0
    assert coverage["lcov.info"]["status"] == "not found"


def test_rebuild_is_marked_as_writing_and_queries_as_read_only(tools):
    """Only the rebuild tool writes (CLAUDE.md); the others are read-only."""
    specs, _ = tools
    assert {n for n, s in specs.items() if not s.read_only} == {"workspace_index_rebuild"}
    assert {n for n, s in specs.items() if s.effects} == {"workspace_index_rebuild"}
