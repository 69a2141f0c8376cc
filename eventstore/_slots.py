"""Building frozen, slotted dataclass instances fast, for the replay loop.

A frozen dataclass refuses attribute assignment, so replay used to fill each slot
through its descriptor's `__set__` (a method-wrapper call per field, ~60 ns). A
*twin* is a plain class with the same base and the same `__slots__`: attribute
stores on it are ordinary slot stores (~10 ns), and once every slot is filled the
instance's `__class__` is set to the frozen class. CPython allows that assignment
only between classes of identical memory layout and checks it on every assignment
(`TypeError` otherwise), so a twin can never produce a malformed object; a class
without a compatible twin (one with a `__dict__`, say) gets None and keeps the
descriptor path.
"""

from __future__ import annotations

import types
from typing import Any

__all__ = ["slot_twin"]


def slot_twin(cls: type) -> type | None:
    """A mutable class with `cls`'s layout, or None if `cls` cannot take one.

    Returns:
        The twin; `obj = twin()` (an empty instance: the twin has object's `__init__`),
        assigning every slot, then `obj.__class__ = cls` yields a `cls` instance
        equal to one built by `cls(...)`.
    """
    slots = cls.__dict__.get("__slots__")
    if slots is None:
        return None
    # The twin's direct base must be `cls`'s (layouts are compared from there up);
    # `types.new_class` resolves generic bases such as `Generic[T]` as `class` would.
    # A base's `__init__` or frozen `__setattr__` must not run: the twin uses object's.
    namespace = {"__slots__": tuple(slots), "__module__": cls.__module__,
                 "__setattr__": object.__setattr__, "__init__": object.__init__}
    twin = types.new_class(f"_{cls.__name__}Twin", cls.__dict__.get("__orig_bases__",
                                                                     cls.__bases__),
                           exec_body=lambda ns: ns.update(namespace))
    try:
        probe: Any = twin()
        probe.__class__ = cls
    except TypeError:
        return None
    return twin
