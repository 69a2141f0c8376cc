"""The generated payload encoder of an event class: its CBOR map, byte for byte.

`EventRegistry.register` compiles one `encode(event) -> bytes` per class. The map
header and every key are constants of the class, so they are written once into the
generated code; a `str` value, a small `int`, `None`/`True`/`False`, a `BlobRef` and
a tuple of `BlobRef`s (a turn's messages: one per message of the history, so
thousands in a long session, each a Python call into the blob hook through cbor2)
are encoded inline, and any other value (floats, large ints, other tuples, maps)
goes through `encode_payload`, cbor2 with the blob hook. The result is exactly what
``encode_payload({field: value, ...})`` writes for the same event (cbor2 without
canonical ordering or value sharing writes a map as its header followed by each key's
and each value's own encoding), so stored payloads, their digests and the hash chain
do not change; the property tests hold the two equal. It costs about half of the
dict plus cbor2 call it replaces, and every append encodes its events.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from eventstore._codec import BLOB_TAG, BlobRef, encode_payload

__all__ = ["compile_encoder", "encode_text", "head"]

_SMALL: tuple[bytes, ...] = tuple(bytes((n,)) for n in range(24))
_TEXT: tuple[bytes, ...] = tuple(bytes((0x60 + n,)) for n in range(24))
_SIMPLE: dict[object, bytes] = {}  # filled below: None, False, True by identity


def head(major: int, n: int) -> bytes:
    """A CBOR item head: major type bits (e.g. 0x60 for text) and the length or value `n`."""
    if n < 24:
        return bytes((major | n,))
    if n < 0x100:
        return bytes((major | 24, n))
    if n < 0x10000:
        return bytes((major | 25,)) + n.to_bytes(2, "big")
    if n < 0x100000000:
        return bytes((major | 26,)) + n.to_bytes(4, "big")
    return bytes((major | 27,)) + n.to_bytes(8, "big")


def encode_text(value: str) -> bytes:
    """A CBOR text string (what cbor2 writes for `value`)."""
    data = value.encode()
    n = len(data)
    return (_TEXT[n] if n < 24 else head(0x60, n)) + data


def _ref(ref: BlobRef) -> bytes:
    """A `BlobRef` as cbor2 writes it with the blob hook: tag `BLOB_TAG` around the
    array [digest, size]."""
    digest, size = ref.digest, ref.size
    if type(digest) is not bytes or len(digest) != 32 or type(size) is not int or size < 0:
        odd: Any = ref  # not one this build writes: cbor2 decides, as for any value
        encoded: bytes = encode_payload(odd)
        return encoded
    return _REF_HEAD + digest + (_SMALL[size] if size < 24 else head(0x00, size))


_REF_HEAD = head(0xC0, BLOB_TAG) + b"\x82" + head(0x40, 32)  # tag, [2 items], 32 bytes


def _value(value: Any) -> bytes:
    """One field's value; the common kinds inline, the rest through cbor2."""
    kind = type(value)
    if kind is str:
        return encode_text(value)
    if kind is int and 0 <= value < 24:
        small: bytes = _SMALL[value]
        return small
    simple = _SIMPLE.get(value) if kind is bool or value is None else None
    if simple is not None:
        return simple
    if kind is BlobRef:
        return _ref(value)
    if kind is tuple and value and all(type(v) is BlobRef for v in value):
        return head(0x80, len(value)) + b"".join(map(_ref, value))
    encoded: bytes = encode_payload(value)
    return encoded


_SIMPLE.update({None: b"\xf6", False: b"\xf4", True: b"\xf5"})


def compile_encoder(names: tuple[str, ...]) -> Callable[[Any], bytes]:
    """Compile `encode(event)` for a class whose fields are `names`, in that order.

    A `str` field is checked and encoded inline (the most common kind); every other
    field goes through `_value`.
    """
    env: dict[str, Any] = {"text": encode_text, "value": _value}
    parts = [repr(head(0xA0, len(names)))]
    lines = []
    for i, name in enumerate(names):
        parts.append(repr(encode_text(name)))
        lines.append(f"    v{i} = event.{name}")
        parts.append(f"text(v{i}) if type(v{i}) is str else value(v{i})")
    source = ("def encode(event):\n" + "\n".join(lines)
              + "\n    return b''.join((" + ", ".join(parts) + ",))\n")
    exec(source, env)
    return env["encode"]  # type: ignore[no-any-return]
