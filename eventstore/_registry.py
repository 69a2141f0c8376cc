"""Event classes: the `Event` base, the registry of type names, and upcasters.

An event class is a frozen, slotted, keyword-only dataclass with a past-tense name,
registered with `@registry.register` (the default registry is `EVENTS`). Its
`class_version` is bumped on every schema change, and an upcaster registered for
each older version turns a stored payload into the next version's shape.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, TypeVar

from eventstore._codec import BlobRef, decode_value, freeze
from eventstore._encode import compile_encoder
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
        # Per class: its generated payload encoder (see `eventstore._encode`).
        self._encoders: dict[type[Event], Callable[[Event], bytes]] = {}
        self._builders: dict[str, Callable[[Payload], Event]] = {}

    def register(self, cls: E) -> E:
        """Class decorator: register `cls` under its class name (or `type_name`).

        Raises:
            TypeError: if `cls` is not a frozen dataclass or its name is taken.
        """
        if not dataclasses.is_dataclass(cls) or not cls.__dataclass_params__.frozen:
            raise TypeError(f"{cls.__name__} must be a frozen dataclass")
        name = cls.__dict__.get("type_name") or cls.__name__
        if name in self._classes and self._classes[name] is not cls:
            raise TypeError(f"event type {name!r} is registered twice")
        cls.type_name = name
        self._classes[name] = cls
        names = tuple(f.name for f in dataclasses.fields(cls))
        self._encoders[cls] = compile_encoder(names)
        self._builders[name] = _builder(cls)
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

    def current_builder(self, type_name: str) -> tuple[int, Callable[[Payload], Event]] | None:
        """The current class version of `type_name` and a fast constructor for payloads
        of that version, or None if the type is not registered.

        The constructor takes the map cbor2 decoded (lists not yet frozen; see
        `_builder`) and raises `KeyError` or `ValueError` when the payload is not
        exactly the class's fields; callers then fall back to `decode` for the
        precise error.
        """
        cls = self._classes.get(type_name)
        return None if cls is None else (cls.class_version, self._builders[type_name])

    def classes(self) -> Mapping[str, type[Event]]:
        """Every registered class by type name."""
        return dict(self._classes)

    def encode(self, event: Event) -> tuple[str, int, bytes]:
        """Encode an event as (type name, schema version, cbor2 payload)."""
        cls = type(event)
        encoder = self._encoders.get(cls)
        if encoder is None or self._classes.get(cls.type_name) is not cls:
            raise UnknownEventTypeError(cls.__name__)
        return cls.type_name, cls.class_version, encoder(event)

    def decode(self, type_name: str, version: int, data: bytes) -> Event:
        """Decode a stored payload, upcasting it to the current class version.

        Raises:
            UnknownEventTypeError: the type is not registered.
            EventDecodeError: the payload is damaged, newer than the class, or misses fields.
        """
        cls = self._classes.get(type_name) or self.resolve(type_name)
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


def _builder(cls: type[Event]) -> Callable[[Payload], Event]:
    """Compile `build(payload)` that fills `cls`'s slots straight from a complete payload.

    Replay decodes every event of the log, and a frozen dataclass `__init__` with
    `**payload` plus a Python walk of every value costs about twice this; like
    `dataclasses`, the code is generated once per class, and it fills each slot
    through its descriptor's `__set__` (what the frozen `__init__` does by name, at
    about a third of the cost). Arrays must become tuples,
    so each field gets the cheapest conversion its annotation allows (`_freezer`):
    none for a `str` or a `dict[str, int]`, `tuple()` for a `tuple[BlobRef, ...]`,
    and for anything else `freeze` only when a container actually holds another
    container. Classes with `__post_init__` keep `__init__`.
    """
    fields = dataclasses.fields(cls)  # type: ignore[arg-type]
    if getattr(cls, "__post_init__", None) is not None or not fields:
        return lambda payload: cls(**freeze(payload))
    hints = _hints(cls)
    env: dict[str, Any] = {"new": object.__new__, "cls": cls, "freeze": freeze,
                           "flat": _NO_CONTAINER, "list": list, "dict": dict, "type": type,
                           "tuple": tuple, "map": map}
    lines = []
    for i, f in enumerate(fields):
        env[f"set_{i}"] = getattr(cls, f.name).__set__
        freezer = _freezer(hints.get(f.name, Any))
        value = "v" if freezer else f"payload[{f.name!r}]"
        if freezer:
            lines += [f"    v = payload[{f.name!r}]", *freezer]
        lines.append(f"    set_{i}(obj, {value})")
    source = (f"def build(payload):\n    if len(payload) != {len(fields)}:\n"
              f"        raise ValueError('payload fields differ')\n"
              f"    obj = new(cls)\n" + "\n".join(lines) + "\n    return obj\n")
    exec(source, env)
    return env["build"]  # type: ignore[no-any-return]


def _freezer(hint: Any) -> list[str]:
    """Generated lines turning the decoded `v` of a field typed `hint` into its frozen form.

    `flat(map(type, v))` is true when no item of `v` is a list or a dict; it runs
    in C, so the common case (arrays and maps of scalars) never enters `freeze`.
    """
    if not _may_hold_array(hint):
        return []
    if _flat_items(hint):
        return ["    if type(v) is list:", "        v = tuple(v)"]
    return ["    if type(v) is list:",
            "        v = tuple(v) if flat(map(type, v)) else freeze(v)",
            "    elif type(v) is dict and not flat(map(type, v.values())):",
            "        v = freeze(v)"]


def _hints(cls: type[Event]) -> dict[str, Any]:
    """The resolved field types, or {} if they cannot be resolved yet (then all are walked)."""
    try:
        return typing.get_type_hints(cls)
    except (NameError, TypeError, AttributeError):
        return {}


_FLAT = (str, int, float, bool, bytes, type(None), BlobRef)
_NO_CONTAINER = frozenset((list, dict)).isdisjoint


def _may_hold_array(hint: Any) -> bool:
    """Whether a value of type `hint` can contain a CBOR array (a list once decoded)."""
    if hint in _FLAT:
        return False
    origin = typing.get_origin(hint)
    if origin in (types.UnionType, typing.Union):
        return any(_may_hold_array(h) for h in typing.get_args(hint))
    if origin is dict:
        return _may_hold_array(typing.get_args(hint)[1])
    return True  # tuple, list, Any, object, anything unknown


def _flat_items(hint: Any) -> bool:
    """Whether `hint` is flat, a `tuple[X, ...]` of flat `X`, or a union of those.

    Such a value decodes as a scalar or a list of scalars, so `tuple(v)` freezes it
    (trusting the annotation, as fields typed `str` are trusted not to hold arrays).
    """
    origin = typing.get_origin(hint)
    if origin in (types.UnionType, typing.Union):
        return all(_flat_items(h) for h in typing.get_args(hint))
    if origin is tuple:
        args = typing.get_args(hint)
        return len(args) == 2 and args[1] is Ellipsis and not _may_hold_array(args[0])
    return not _may_hold_array(hint)


EVENTS = EventRegistry()
"""The registry every stream module registers its events in."""
