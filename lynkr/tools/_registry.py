"""`ToolRegistry`: the static tool specs plus dynamic providers, and input validation.

Static specs are registered once (`register_all(specs)` takes a whole area's list in
one call); a provider is a callable returning the current specs, asked on every
lookup, so a live catalogue (MCP) plugs in without re-registering. Inputs are
validated with `jsonschema` before anything runs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import jsonschema
import structlog

from lynkr.errors import ToolInputError, ToolNotFoundError
from lynkr.tools._spec import ToolSpec

__all__ = ["ToolProvider", "ToolRegistry"]

log = structlog.get_logger()

ToolProvider = Callable[[], Iterable[ToolSpec]]


class ToolRegistry:
    """Names to tool specs: static ones first, then whatever providers offer now."""

    def __init__(self, specs: Iterable[ToolSpec] = ()) -> None:
        self._static: dict[str, ToolSpec] = {}
        self._providers: list[ToolProvider] = []
        self._validators: dict[int, tuple[ToolSpec, jsonschema.protocols.Validator]] = {}
        self.register_all(specs)

    def register_all(self, specs: Iterable[ToolSpec]) -> None:
        """Register every spec of an area in one call.

        Raises:
            ValueError: a name is already registered, or a schema is not valid JSON Schema.
        """
        for spec in specs:
            if spec.name in self._static:
                raise ValueError(f"tool {spec.name!r} is registered twice")
            self._validator(spec)
            self._static[spec.name] = spec

    def add_provider(self, provider: ToolProvider) -> None:
        """Add a callable returning the current specs of a dynamic source."""
        self._providers.append(provider)

    def specs(self) -> list[ToolSpec]:
        """Every tool available now, by name; a static name shadows a provider's."""
        found = dict(self._static)
        for provider in self._providers:
            for spec in provider():
                if spec.name in found:
                    log.warning("tool_name_shadowed", tool=spec.name)
                    continue
                found[spec.name] = spec
        return [found[name] for name in sorted(found)]

    def get(self, name: str) -> ToolSpec:
        """The spec registered as `name`.

        Raises:
            ToolNotFoundError: no tool has that name.
        """
        spec = self._static.get(name)
        if spec is not None:
            return spec
        for provider in self._providers:
            for candidate in provider():
                if candidate.name == name:
                    return candidate
        raise ToolNotFoundError(f"no tool named {name!r}; `lynkr tool list` shows them")

    def validate(self, spec: ToolSpec, inputs: Any) -> Mapping[str, Any]:
        """`inputs` if they match the spec's schema.

        Raises:
            ToolInputError: with the first problem and where it is.
        """
        if not isinstance(inputs, Mapping):
            raise ToolInputError(f"{spec.name}: the input must be a JSON object")
        try:
            validator = self._validator(spec)
        except ValueError as exc:
            raise ToolInputError(str(exc)) from exc
        error = jsonschema.exceptions.best_match(validator.iter_errors(inputs))
        if error is not None:
            where = "/".join(str(p) for p in error.absolute_path) or "(root)"
            raise ToolInputError(f"{spec.name}: invalid input at {where}: {error.message}")
        return inputs

    def _validator(self, spec: ToolSpec) -> jsonschema.protocols.Validator:
        cached = self._validators.get(id(spec))
        if cached is not None and cached[0] is spec:
            return cached[1]
        cls = jsonschema.validators.validator_for(spec.input_schema,
                                                  jsonschema.Draft202012Validator)
        try:
            cls.check_schema(spec.input_schema)
        except jsonschema.exceptions.SchemaError as exc:
            raise ValueError(f"tool {spec.name!r} has an invalid input schema: "
                             f"{exc.message}") from exc
        validator = cls(spec.input_schema)
        self._validators[id(spec)] = (spec, validator)
        return validator
