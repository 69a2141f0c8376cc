"""Event classes: the `Event` base, the registry of type names, and upcasters.

An event class is a frozen, slotted, keyword-only dataclass with a past-tense name,
registered with `@registry.register` (the default registry is `EVENTS`). Its
`class_version` is bumped on every schema change, and an upcaster registered for
each older version turns a stored payload into the next version's shape.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, TypeVar

from eventstore._codec import decode_value, encode_value
from eventstore._errors import EventDecodeError, UnknownEventTypeError

__all__ = ["EVENTS", "Event", "EventRegistry", "Upcaster"]

Payload = dict[str, Any]
Upcaster = Callable[[Payload], Payload]
E = TypeVar("E", bound="type[Event]")


class Event:
    """Base of every event class. Subclasses are frozen kw-only dataclasses."""

    __slots__ = ()
    type_name: ClassVar[str] = ""
    class_version: ClassVar[int] = 1


class EventRegistry:
    """Maps type names to event classes, and carries the upcaster path of each."""

    def __init__(self) -> None:
        self._classes: dict[str, type[Event]] = {}
        self._upcasters: dict[tuple[str, int], Upcaster] = {}

    def register(self, cls: E) -> E:
        """Class decorator: register `cls` under its class name (or `type_name`).

        Raises:
            TypeError: if `cls` is not a frozen dataclass or its name is taken.
        """
        if not dataclasses.is_dataclass(cls) or not cls.__dataclass_params__.frozen:  # type: ignore[attr-defined]
            raise TypeError(f"{cls.__name__} must be a frozen dataclass")
        name = cls.__dict__.get("type_name") or cls.__name__
        if name in self._classes and self._classes[name] is not cls:
            raise TypeError(f"event type {name!r} is registered twice")
        cls.type_name = name
        self._classes[name] = cls
        return cls

    def upcaster(self, type_name: str, from_version: int) -> Callable[[Upcaster], Upcaster]:
        """Decorator registering the function that lifts `from_version` to the next."""

        def decorate(fn: Upcaster) -> Upcaster:
            self._upcasters[(type_name, from_version)] = fn
            return fn

        return decorate

    def resolve(self, type_name: str) -> type[Event]:
        """The class registered for `type_name`.

        Raises:
            UnknownEventTypeError: if no class is registered under that name.
        """
        try:
            return self._classes[type_name]
        except KeyError:
            raise UnknownEventTypeError(type_name) from None

    def classes(self) -> Mapping[str, type[Event]]:
        """Every registered class by type name."""
        return dict(self._classes)

    def encode(self, event: Event) -> tuple[str, int, bytes]:
        """Encode an event as (type name, schema version, cbor2 payload)."""
        cls = type(event)
        if self._classes.get(cls.type_name) is not cls:
            raise UnknownEventTypeError(cls.__name__)
        payload = {f.name: getattr(event, f.name) for f in dataclasses.fields(event)}  # type: ignore[arg-type]
        return cls.type_name, cls.class_version, encode_value(payload)

    def decode(self, type_name: str, version: int, data: bytes) -> Event:
        """Decode a stored payload, upcasting it to the current class version.

        Raises:
            UnknownEventTypeError: the type is not registered.
            EventDecodeError: the payload is damaged, newer than the class, or misses fields.
        """
        cls = self.resolve(type_name)
        try:
            payload = decode_value(data)
        except Exception as exc:  # cbor2 raises several unrelated classes on bad bytes
            raise EventDecodeError(f"{type_name} v{version}: undecodable payload: {exc}") from exc
        if not isinstance(payload, dict):
            raise EventDecodeError(f"{type_name} v{version}: payload is not a map")
        if version > cls.class_version:
            raise EventDecodeError(
                f"{type_name} v{version} is newer than this build's v{cls.class_version}"
            )
        while version < cls.class_version:
            step = self._upcasters.get((type_name, version))
            if step is None:
                raise EventDecodeError(f"{type_name}: no upcaster from v{version}")
            payload = step(dict(payload))
            version += 1
        try:
            return cls(**payload)
        except TypeError as exc:
            raise EventDecodeError(f"{type_name} v{version}: {exc}") from exc


EVENTS = EventRegistry()
"""The registry every stream module registers its events in."""
