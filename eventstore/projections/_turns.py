"""`Turns`: the immutable sequence of a session's turns, cheap to grow and to update.

The session fold makes a new state for every event, and three of a turn's events
change a turn (`TurnStarted` adds one, `RouteChosen` and the outcome replace it).
As a plain tuple each of those copied every turn of the session, so a session's
life cost O(turns²): 40 µs per event at 10,000 turns. `Turns` keeps full chunks of
`CHUNK` turns in a tuple of chunks plus a short tail, so adding or replacing a
recent turn copies at most one chunk and the tuple of chunks (about
`len / CHUNK + CHUNK` references). Chunk boundaries depend only on the index, so two
`Turns` with equal contents have equal structure.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from itertools import chain
from typing import Generic, Self, TypeVar, overload

__all__ = ["CHUNK", "Turns"]

CHUNK = 64
T = TypeVar("T")


class Turns(Sequence[T], Generic[T]):
    """An immutable sequence; `appended` and `replaced` return new ones (module doc)."""

    __slots__ = ("_chunks", "_tail")

    def __init__(self, items: Iterable[T] = ()) -> None:
        flat = tuple(items)
        full = len(flat) - len(flat) % CHUNK
        self._chunks: tuple[tuple[T, ...], ...] = tuple(
            flat[i:i + CHUNK] for i in range(0, full, CHUNK))
        self._tail: tuple[T, ...] = flat[full:]

    @classmethod
    def _of(cls, chunks: tuple[tuple[T, ...], ...], tail: tuple[T, ...]) -> Self:
        new = cls.__new__(cls)
        new._chunks, new._tail = chunks, tail
        return new

    def __len__(self) -> int:
        return len(self._chunks) * CHUNK + len(self._tail)

    @overload
    def __getitem__(self, index: int) -> T: ...
    @overload
    def __getitem__(self, index: slice) -> tuple[T, ...]: ...

    def __getitem__(self, index: int | slice) -> T | tuple[T, ...]:
        if isinstance(index, slice):
            return tuple(self)[index]
        size = len(self)
        if index < 0:
            index += size
        if not 0 <= index < size:
            raise IndexError("Turns index out of range")
        chunk, offset = divmod(index, CHUNK)
        if chunk == len(self._chunks):
            return self._tail[offset]
        return self._chunks[chunk][offset]

    def __iter__(self) -> Iterator[T]:
        return chain(chain.from_iterable(self._chunks), self._tail)

    def __reversed__(self) -> Iterator[T]:
        return reversed(tuple(self))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Turns):
            return self._chunks == other._chunks and self._tail == other._tail
        return NotImplemented

    def __hash__(self) -> int:
        return hash((self._chunks, self._tail))

    def __repr__(self) -> str:
        return f"Turns({list(self)!r})"

    def appended(self, item: T) -> Self:
        """A copy with `item` at the end."""
        tail = (*self._tail, item)
        if len(tail) == CHUNK:
            return self._of((*self._chunks, tail), ())
        return self._of(self._chunks, tail)

    def replaced(self, index: int, item: T) -> Self:
        """A copy with `item` at `index` (0-based, within the sequence).

        Raises:
            IndexError: `index` is out of range.
        """
        if not 0 <= index < len(self):
            raise IndexError("Turns index out of range")
        chunk, offset = divmod(index, CHUNK)
        if chunk == len(self._chunks):
            tail = self._tail
            return self._of(self._chunks, (*tail[:offset], item, *tail[offset + 1:]))
        old = self._chunks[chunk]
        new = (*old[:offset], item, *old[offset + 1:])
        return self._of((*self._chunks[:chunk], new, *self._chunks[chunk + 1:]), self._tail)
