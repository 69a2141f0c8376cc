"""Byte-level encoding: cbor2 payloads, content-addressed blob references, the hash chain.

Payload values are CBOR-native (None, bool, int, float, str, bytes, tuple, dict) plus
`BlobRef`, encoded as CBOR tag 40401 around the 32-byte digest. Arrays always decode
as tuples so that frozen events compare equal after a round trip.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

import cbor2

__all__ = [
    "BLOB_TAG",
    "BlobRef",
    "cbor_loads",
    "chain_hash",
    "chain_hash_digests",
    "decode_value",
    "encode_payload",
    "encode_value",
    "freeze",
    "make_blob",
    "may_hold_array",
    "tag_hook",
]

BLOB_TAG = 40401
_GENESIS = b"\x00" * 32
# Every CBOR array header byte is 0x80-0x9f; bytes without one hold no array to freeze.
_MAYBE_ARRAY = re.compile(rb"[\x80-\x9f]")
may_hold_array = _MAYBE_ARRAY.search
"""`may_hold_array(data)` is None when encoded `data` certainly holds no array."""
cbor_loads = cbor2.loads
_CONTAINERS = (list, dict)


@dataclass(frozen=True, slots=True)
class BlobRef:
    """A reference to content stored once in the blob table, by SHA-256 of its bytes."""

    digest: bytes
    size: int = 0

    @property
    def hex(self) -> str:
        """The digest as lowercase hex, as shown to people."""
        return self.digest.hex()

    def __repr__(self) -> str:
        return f"BlobRef({self.digest.hex()[:12]}…, {self.size}B)"


# Replay builds many refs: fill the slots directly instead of the frozen __init__, and
# share one ref per digest (a session's system blocks, tools and earlier messages are
# referenced again by every later turn; refs are frozen, so sharing is safe).
_new = object.__new__
_set_digest = BlobRef.__dict__["digest"].__set__
_set_size = BlobRef.__dict__["size"].__set__
_REFS: dict[bytes, BlobRef] = {}
_REFS_LIMIT = 16384


def _default(encoder: cbor2.CBOREncoder, value: Any) -> None:
    if isinstance(value, BlobRef):
        encoder.encode(cbor2.CBORTag(BLOB_TAG, [value.digest, value.size]))
        return
    raise TypeError(f"cannot encode {type(value).__name__} in an event payload")


def tag_hook(tag: cbor2.CBORTag, immutable: bool) -> Any:
    """cbor2 hook turning tag `BLOB_TAG` back into a `BlobRef` (other tags pass through).

    cbor2 6 calls the hook with (tag, immutable), not (decoder, tag) as 5.x did.
    """
    if tag.tag != BLOB_TAG:
        return tag
    digest, size = tag.value
    ref = _REFS.get(digest) if type(digest) is bytes else None
    if ref is not None and ref.size == size and type(size) is int:
        return ref
    if type(digest) is not bytes or type(size) is not int:
        raise ValueError("malformed blob reference")
    ref = _new(BlobRef)
    _set_digest(ref, digest)
    _set_size(ref, size)
    if len(_REFS) >= _REFS_LIMIT:
        _REFS.clear()
    _REFS[digest] = ref
    return ref


def freeze(value: Any) -> Any:
    """Lists (recursively, also inside maps) as tuples, so decoded events are hashable."""
    if type(value) is list:
        return tuple([freeze(v) if type(v) in _CONTAINERS else v for v in value])
    if type(value) is dict:
        return {k: freeze(v) if type(v) in _CONTAINERS else v for k, v in value.items()}
    return value


def thaw(value: Any) -> Any:
    """The inverse of `freeze`: a decoded value as JSON reads it (tuples back to lists,
    recursively), for a blob or payload that goes out as JSON again."""
    if isinstance(value, tuple | list):
        return [thaw(v) for v in value]
    if isinstance(value, dict):
        return {k: thaw(v) for k, v in value.items()}
    return value


def encode_value(value: Any) -> bytes:
    """Encode a payload value canonically (sorted map keys), so equal values hash equal.

    Raises:
        TypeError: if the value holds something that is not CBOR-native or a `BlobRef`.
    """
    return cbor2.dumps(value, canonical=True, default=_default)


def decode_value(data: bytes) -> Any:
    """Decode bytes written by `encode_value`; arrays come back as tuples."""
    value = cbor_loads(data, tag_hook=tag_hook)
    if may_hold_array(data) is None:
        return value  # the fast path of replay: nothing to freeze
    return freeze(value)


def encode_payload(value: dict[str, Any]) -> bytes:
    """Encode an event payload map in its given key order (faster than canonical form).

    The hash chain covers the stored bytes, so payloads need no canonical form; blobs
    and metadata, which are compared by digest, use `encode_value`.

    Raises:
        TypeError: if the value holds something that is not CBOR-native or a `BlobRef`.
    """
    return cbor2.dumps(value, default=_default)


def make_blob(content: Any) -> tuple[BlobRef, bytes]:
    """Encode JSON-like content for the blob table.

    Returns:
        The reference (SHA-256 of the encoded bytes) and the bytes to store.
    """
    data = encode_value(content)
    return BlobRef(hashlib.sha256(data).digest(), len(data)), data


def chain_hash(
    previous: bytes | None,
    stream_id: str,
    seq: int,
    type_name: str,
    version: int,
    payload: bytes,
    metadata: bytes,
) -> bytes:
    """SHA-256 linking one stored event to the previous event of its stream."""
    return chain_hash_digests(previous, stream_id, seq, type_name, version,
                              hashlib.sha256(payload).digest(),
                              hashlib.sha256(metadata).digest())


def chain_hash_digests(
    previous: bytes | None,
    stream_id: str,
    seq: int,
    type_name: str,
    version: int,
    payload_digest: bytes,
    metadata_digest: bytes,
) -> bytes:
    """`chain_hash` from the SHA-256 digests of the payload and the metadata.

    The hashed bytes are: previous hash (or 32 zero bytes), then stream id, seq
    (8 bytes), type name and version (4 bytes), each prefixed by its 4-byte length,
    then the payload digest and the metadata digest.
    """
    sid = stream_id.encode()
    tname = type_name.encode()
    return hashlib.sha256(b"".join((
        previous or _GENESIS,
        len(sid).to_bytes(4, "big"), sid,
        b"\x00\x00\x00\x08", seq.to_bytes(8, "big"),
        len(tname).to_bytes(4, "big"), tname,
        b"\x00\x00\x00\x04", version.to_bytes(4, "big"),
        payload_digest, metadata_digest,
    ))).digest()
