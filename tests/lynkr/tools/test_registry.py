"""The tool registry: static specs, dynamic providers, JSON-schema input validation."""

from __future__ import annotations

import re

import pytest

from lynkr.errors import ToolInputError, ToolNotFoundError
from lynkr.tools import ToolRegistry, ToolSpec


async def _echo(ctx, inputs):
    return dict(inputs)


def spec(name="echo", schema=None, **kw):
    schema = schema or {"type": "object", "properties": {"text": {"type": "string"}},
                        "required": ["text"], "additionalProperties": False}
    return ToolSpec(name=name, description="echo", input_schema=schema, handler=_echo, **kw)


def test_register_all_takes_an_area_in_one_call():
    """A tuple of specs (as the indexer returns) registers in one call, sorted by name."""
    registry = ToolRegistry()
    registry.register_all((spec("b"), spec("a")))
    assert [s.name for s in registry.specs()] == ["a", "b"]


def test_duplicate_names_are_refused():
    """Two static tools cannot share a name."""
    with pytest.raises(ValueError, match="twice"):
        ToolRegistry([spec("x"), spec("x")])


def test_invalid_schema_is_refused_at_registration():
    """A schema that is not valid JSON Schema fails when registered, not when called."""
    with pytest.raises(ValueError, match="invalid input schema"):
        ToolRegistry([spec(schema={"type": "not-a-type"})])


def test_provider_tools_appear_live_and_static_names_win():
    """A provider's current specs are listed and found; a static name shadows it."""
    offered: list[ToolSpec] = []
    registry = ToolRegistry([spec("echo")])
    registry.add_provider(lambda: offered)
    assert [s.name for s in registry.specs()] == ["echo"]
    offered += [spec("mcp_time"), spec("echo")]
    assert [s.name for s in registry.specs()] == ["echo", "mcp_time"]
    assert registry.get("mcp_time") is offered[0]
    assert registry.get("echo") is not offered[1]


def test_unknown_tool_is_not_found():
    """Looking up a missing name raises ToolNotFoundError naming it."""
    with pytest.raises(ToolNotFoundError, match="'nope'"):
        ToolRegistry().get("nope")


@pytest.mark.parametrize(("inputs", "where"), [
    ({}, "(root)"),
    ({"text": 3}, "text"),
    ({"text": "x", "extra": 1}, "(root)"),
])
def test_invalid_input_names_the_problem(inputs, where):
    """Schema violations become ToolInputError with the location of the problem."""
    registry = ToolRegistry([spec()])
    with pytest.raises(ToolInputError, match=re.escape(f"invalid input at {where}")):
        registry.validate(registry.get("echo"), inputs)


def test_non_object_input_is_refused():
    """A list or a string is not a tool input."""
    registry = ToolRegistry([spec()])
    with pytest.raises(ToolInputError, match="JSON object"):
        registry.validate(registry.get("echo"), ["text"])


def test_definition_is_the_anthropic_tool_shape():
    """`definition()` gives name, description and input_schema."""
    assert set(spec().definition()) == {"name", "description", "input_schema"}
