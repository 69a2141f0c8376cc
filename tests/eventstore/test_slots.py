"""Slot twins: frozen slotted instances built by plain slot stores, then re-classed."""

from __future__ import annotations

from dataclasses import FrozenInstanceError, dataclass
from typing import Any, Generic, TypeVar

import pytest

from eventstore._slots import slot_twin

T = TypeVar("T")


@dataclass(frozen=True, slots=True, kw_only=True)
class Point:
    """A frozen slotted dataclass."""

    x: int
    y: str = "y"


@dataclass(frozen=True, slots=True, kw_only=True)
class Point3(Point):
    """A subclass adding a slot of its own."""

    z: float


@dataclass(frozen=True, slots=True)
class Boxed(Generic[T]):
    """A generic one, like `Recorded`."""

    item: T


@dataclass(frozen=True)
class Loose:
    """Frozen but without slots: instances have a `__dict__`."""

    x: int


def build(cls: type, **values: Any) -> Any:
    """An instance of `cls` made through its twin."""
    twin = slot_twin(cls)
    assert twin is not None
    obj: Any = object.__new__(twin)
    for name, value in values.items():
        setattr(obj, name, value)
    obj.__class__ = cls
    return obj


def test_twin_builds_an_instance_equal_to_the_constructors() -> None:
    """Filling the twin's slots and re-classing gives the same object as `cls(...)`."""
    point = build(Point, x=1, y="a")
    assert type(point) is Point
    assert point == Point(x=1, y="a")
    assert hash(point) == hash(Point(x=1, y="a"))


def test_instance_built_through_the_twin_stays_frozen() -> None:
    """Once re-classed, the object refuses assignment like any frozen instance."""
    point = build(Point, x=1, y="a")
    with pytest.raises(FrozenInstanceError):
        point.x = 2


def test_subclass_with_slots_on_two_levels_has_a_twin() -> None:
    """A dataclass inheriting slots from another dataclass gets a working twin."""
    assert build(Point3, x=1, y="a", z=2.5) == Point3(x=1, y="a", z=2.5)


def test_generic_class_has_a_twin() -> None:
    """A `Generic[T]` slotted dataclass gets a twin with the same base."""
    assert build(Boxed, item=3) == Boxed(3)


def test_class_with_a_dict_has_no_twin() -> None:
    """A class without `__slots__` of its own cannot take a twin."""
    assert slot_twin(Loose) is None


def test_twin_of_a_class_with_another_layout_is_refused() -> None:
    """If CPython refuses the re-classing, there is no twin (never a wrong object)."""

    class Odd:
        __slots__ = ("a",)

    class OddChild(Odd):
        __slots__ = ("b",)

    OddChild.__slots__ = ("c",)  # what the class claims no longer matches its layout
    assert slot_twin(OddChild) is None
