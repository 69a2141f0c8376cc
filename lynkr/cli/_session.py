"""Which session a command means, and how `tool call` shows a result.

A session is named on the command line by its id `X` or by its stream name
`session-X`; both mean the same session (`session_arg`). `lynkr tool call` without
`--session` records in one session per workspace, `cli-<workspace id>`, where the
workspace id is the one that names the workspace's `tasks-<id>` stream (the first
12 hex digits of the SHA-256 of the resolved WORKSPACE_ROOT), so repeated calls
from the shell do not add a session each. `raw_text` is the text of a result for
`tool call --raw`.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

__all__ = ["RAW_TEXT_FIELDS", "cli_session_id", "raw_text", "session_arg"]

_STREAM_PREFIX = "session-"

RAW_TEXT_FIELDS = ("content", "text", "diff", "markdown", "output")
"""Fields that hold a tool's text, in the order `raw_text` looks for them: `fs_read`'s
`content`, `web_fetch`'s `text`, `workspace_git_diff`'s `diff`, the review's
`markdown`, a push or pull's `output`."""


def session_arg(value: str) -> str:
    """argparse type: a session id given as `X` or `session-X`; returns `X`.

    Raises:
        argparse.ArgumentTypeError: nothing is left once the prefix is removed.
    """
    session = value.strip().removeprefix(_STREAM_PREFIX)
    if not session:
        raise argparse.ArgumentTypeError(f"{value!r} names no session")
    return session


def cli_session_id(workspace_id: str) -> str:
    """The session that records CLI tool calls made without `--session`."""
    return f"cli-{workspace_id}"


def raw_text(content: Any) -> str:
    """A tool result as plain text (`tool call --raw`).

    A string is itself; a list of MCP text blocks gives their texts, one after another;
    an object gives its first text field (`RAW_TEXT_FIELDS`: a string or such blocks, as
    in an MCP tool's `content`). Anything else is printed as JSON, so `--raw` never
    hides a result.
    """
    if isinstance(content, str):
        return content
    if _text_blocks(content):
        return "".join(str(block["text"]) for block in content)
    if isinstance(content, dict):
        for name in RAW_TEXT_FIELDS:
            value = content.get(name)
            if isinstance(value, str) or _text_blocks(value):
                return raw_text(value)
    return json.dumps(content, indent=2, ensure_ascii=False, default=str)


def _text_blocks(value: Any) -> bool:
    """True for a non-empty list of MCP text blocks (`{"type": "text", "text": …}`)."""
    return isinstance(value, list) and bool(value) and all(
        isinstance(block, dict) and isinstance(block.get("text"), str) for block in value)
