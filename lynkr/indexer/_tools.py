"""The indexer's server tools: `workspace_index_rebuild`, `workspace_symbol_search`,
`workspace_symbol_references` and `project_summary`.

`indexer_tool_specs(indexer, actor_ref)` builds their `ToolSpec`s. Rebuilds go
through the indexer actor (so they coalesce with every other request); queries read
the catalogue on a worker thread. Each handler checks its own input against its
schema too, so a bad input is a `ToolInputError` even without the registry.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import Any

import jsonschema
import pykka
import trio

from actors import IndexerStoppedError, request_rebuild
from lynkr.errors import IndexerError, ToolError, ToolInputError
from lynkr.indexer._indexer import Indexer
from lynkr.indexer._search import MODES
from lynkr.tools import ToolContext, ToolSpec

__all__ = ["SCHEMAS", "indexer_tool_specs"]

_MAX_PROBLEMS = 50  # a model needs examples of what was skipped, not thousands of lines

SCHEMAS: dict[str, dict[str, Any]] = {
    "workspace_index_rebuild": {
        "type": "object", "properties": {}, "additionalProperties": False,
    },
    "workspace_symbol_search": {
        "type": "object",
        "properties": {
            "query": {"type": "string", "minLength": 1, "maxLength": 200,
                      "description": "Symbol name or part of it."},
            "mode": {"type": "string", "enum": list(MODES),
                     "description": "exact, prefix, or fuzzy-ranked (default)."},
            "kind": {"type": "string", "description": "Only this kind (class, function, …)."},
            "limit": {"type": "integer", "minimum": 1, "maximum": 200},
        },
        "required": ["query"], "additionalProperties": False,
    },
    "workspace_symbol_references": {
        "type": "object",
        "properties": {
            "name": {"type": "string", "minLength": 1, "maxLength": 200,
                     "description": "Exact symbol name."},
            "limit": {"type": "integer", "minimum": 1, "maximum": 1000},
        },
        "required": ["name"], "additionalProperties": False,
    },
    "project_summary": {
        "type": "object", "properties": {}, "additionalProperties": False,
    },
}


def _checked(name: str, args: Mapping[str, Any]) -> Mapping[str, Any]:
    validator = jsonschema.Draft202012Validator(SCHEMAS[name])
    error = jsonschema.exceptions.best_match(validator.iter_errors(args))
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "input"
        raise ToolInputError(f"{name}: {where}: {error.message}")
    return args


async def _run(fn: Any, *args: Any, **kwargs: Any) -> Any:
    try:
        return await trio.to_thread.run_sync(partial(fn, *args, **kwargs))
    except IndexerError as exc:
        raise ToolError(exc.message) from exc


async def _rebuild(actor_ref: pykka.ActorRef[Any], _ctx: ToolContext,
                   args: Mapping[str, Any]) -> Any:
    _checked("workspace_index_rebuild", args)
    try:
        report = await request_rebuild(actor_ref)
    except (IndexerError, IndexerStoppedError) as exc:
        raise ToolError(f"the rebuild failed: {exc}") from exc
    data = report.to_json()
    data["problems"] = data["problems"][:_MAX_PROBLEMS]
    return data


async def _search(indexer: Indexer, _ctx: ToolContext, args: Mapping[str, Any]) -> Any:
    args = _checked("workspace_symbol_search", args)
    hits = await _run(indexer.search, args["query"], mode=args.get("mode", "fuzzy"),
                      kind=args.get("kind"), limit=args.get("limit", 20))
    return {"query": args["query"], "results": [h.to_json() for h in hits]}


async def _references(indexer: Indexer, _ctx: ToolContext, args: Mapping[str, Any]) -> Any:
    args = _checked("workspace_symbol_references", args)
    limit = args.get("limit", 200)
    definitions = await _run(indexer.definitions, args["name"])
    refs = await _run(indexer.references, args["name"], limit=limit)
    return {"name": args["name"], "definitions": [d.to_json() for d in definitions],
            "references": [r.to_json() for r in refs], "truncated": len(refs) >= limit}


async def _summary(indexer: Indexer, _ctx: ToolContext, args: Mapping[str, Any]) -> Any:
    _checked("project_summary", args)
    data = await _run(indexer.summary)
    data["problems"] = data["problems"][:_MAX_PROBLEMS]
    return data


def indexer_tool_specs(indexer: Indexer, actor_ref: pykka.ActorRef[Any]) -> tuple[ToolSpec, ...]:
    """The indexer's four server tools.

    Args:
        indexer: the catalogue to query (the same one the actor owns).
        actor_ref: the `IndexerActor` that runs rebuilds.
    """
    return (
        ToolSpec(name="workspace_index_rebuild", handler=partial(_rebuild, actor_ref),
                 description="Re-index the workspace (only changed files are parsed) and "
                             "refresh the project summary in an existing CLAUDE.md. Returns "
                             "counts and the files that were skipped.",
                 input_schema=SCHEMAS["workspace_index_rebuild"], policy="index",
                 read_only=False, effects=True, tags=("indexer",)),
        ToolSpec(name="workspace_symbol_search", handler=partial(_search, indexer),
                 description="Find symbol definitions (classes, functions, methods, types…) "
                             "by name: exact, prefix, or fuzzy-ranked.",
                 input_schema=SCHEMAS["workspace_symbol_search"], policy="index",
                 effects=False, tags=("indexer",)),
        ToolSpec(name="workspace_symbol_references", handler=partial(_references, indexer),
                 description="Where a symbol is defined and every place it is used "
                             "across the workspace (definition sites excluded).",
                 input_schema=SCHEMAS["workspace_symbol_references"], policy="index",
                 effects=False, tags=("indexer",)),
        ToolSpec(name="project_summary", handler=partial(_summary, indexer),
                 description="Languages, frameworks, lint/format/test configs, dependency "
                             "manifests, the detected test command and test coverage.",
                 input_schema=SCHEMAS["project_summary"], policy="index", effects=False,
                 tags=("indexer",)),
    )
