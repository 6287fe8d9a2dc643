"""Byte format of every stored value (datasets and results), in Redis and in memory.

Nothing is pickled. A value is a JSON document plus named NumPy arrays stored as raw
little-endian bytes::

    MAGIC (8 bytes) | HMAC-SHA-256 of the rest (32 bytes) | header length (4 bytes, big-endian)
    | header (UTF-8 JSON) | array bytes

The HMAC is keyed by the store's secret (``EOC_NTK_STORE_SECRET``, see
:func:`jobs.store.Storage.secret`): a value altered and re-hashed by someone who can write
to Redis but does not know the secret fails it, and is recomputed instead of served.

The header holds the format version, the algorithm version of the core that computed the
value, the JSON document and, per array, its name, dtype and shape. :func:`decode` verifies
the magic, the signature, both versions, the dtypes (a short whitelist) and every length;
any mismatch raises :class:`CorruptValue`, which callers treat as a cache miss.

A rendered answer (:mod:`jobs.answers`) is stored next to its result in a lighter format,
read on every cache hit without parsing anything::

    BODY_MAGIC (8 bytes) | HMAC-SHA-256 of the rest (32 bytes) | content hash (32 hex digits)
    | digest of the stored result's bytes (32 hex digits) | JSON body

(:func:`encode_body`, :func:`decode_body`; the cache key already names the algorithm version.)
The result stays the one truth: an answer is served only while the result it was rendered
from is stored, byte for byte (a damaged, expired or dropped result is never answered from).
"""
from __future__ import annotations

import hashlib
import hmac
import json
import struct
from dataclasses import dataclass, field

import numpy as np

from eoc_ntk import ALGORITHM_VERSION

__all__ = ["StoredValue", "CorruptValue", "encode", "decode", "FORMAT_VERSION", "encode_body", "decode_body"]

MAGIC = b"EOCNTK\x00\x01"
FORMAT_VERSION = 1
_DTYPES = {d.str: d for d in map(np.dtype, ("<f8", "<i8", "<i4", "<i2", "<i1"))}
#: Integer dtypes stored as they are (a dataset read from JSON: eoc_ntk.core.compact); other integers as int64.
_NARROW = {np.dtype(t) for t in (np.int8, np.int16, np.int32)}
_PREFIX = len(MAGIC) + 32 + 4
BODY_MAGIC = b"EOCBODY\x01"
_HASH_HEX = 32


class CorruptValue(ValueError):
    """A stored value failed verification (truncated, altered, or of another version)."""


@dataclass
class StoredValue:
    """A JSON document and named arrays: float64, int64, or int8/int16/int32 (compact datasets)."""

    doc: dict = field(default_factory=dict)
    arrays: dict[str, np.ndarray] = field(default_factory=dict)


def _sign(secret: bytes, rest: bytes) -> bytes:
    return hmac.new(secret, rest, hashlib.sha256).digest()


def encode(value: StoredValue, secret: bytes = b"") -> bytearray:
    """Serialise ``value`` with its header, signed with HMAC-SHA-256 under ``secret``.

    The value is written once, into one buffer of its final size: the arrays' bytes are copied
    straight from the arrays (no ``tobytes`` and no joins), and the HMAC reads the buffer in
    place, so encoding a dataset costs one copy of it."""
    specs, views = [], []
    for name, arr in value.arrays.items():
        arr = np.asarray(arr)
        dtype: np.dtype = np.dtype("<f8")
        if arr.dtype.kind != "f":
            dtype = arr.dtype.newbyteorder("<") if arr.dtype in _NARROW else np.dtype("<i8")
        views.append(np.ascontiguousarray(arr, dtype=dtype))  # a view when already so (the usual case)
        specs.append({"name": name, "dtype": dtype.str, "shape": list(arr.shape)})
    header = json.dumps(
        {"format": FORMAT_VERSION, "algorithm_version": ALGORITHM_VERSION, "doc": value.doc, "arrays": specs},
        separators=(",", ":"), allow_nan=False,
    ).encode()
    blob = bytearray(_PREFIX + len(header) + sum(v.nbytes for v in views))
    out = memoryview(blob)
    out[:len(MAGIC)] = MAGIC
    struct.pack_into(">I", blob, _PREFIX - 4, len(header))
    offset = _PREFIX + len(header)
    out[_PREFIX:offset] = header
    for v in views:
        np.frombuffer(out, dtype=v.dtype, count=v.size, offset=offset).reshape(v.shape)[...] = v
        offset += v.nbytes
    out[len(MAGIC):len(MAGIC) + 32] = _sign(secret, out[len(MAGIC) + 32:])
    out.release()
    return blob


def decode(blob: bytes, secret: bytes = b"") -> StoredValue:
    """Verify (the HMAC under ``secret`` first) and deserialise a value written by :func:`encode`."""
    if not isinstance(blob, (bytes, bytearray, memoryview)) or len(blob) < _PREFIX:
        raise CorruptValue("stored value is truncated")
    if not isinstance(blob, bytes):
        blob = bytes(blob)  # a copy the arrays may keep (a bytearray may change under them)
    if blob[: len(MAGIC)] != MAGIC:
        raise CorruptValue("stored value has an unknown format")
    rest = memoryview(blob)[len(MAGIC) + 32:]  # views, not copies: the arrays below share ``blob``
    if not hmac.compare_digest(_sign(secret, rest), blob[len(MAGIC): len(MAGIC) + 32]):
        raise CorruptValue("stored value fails its signature (altered, or signed under another secret)")
    (hlen,) = struct.unpack(">I", rest[:4])
    try:
        header = json.loads(bytes(rest[4: 4 + hlen]))
    except ValueError as exc:
        raise CorruptValue("stored value has an unreadable header") from exc
    if header.get("format") != FORMAT_VERSION or header.get("algorithm_version") != ALGORITHM_VERSION:
        raise CorruptValue(
            f"stored value is of format {header.get('format')} / algorithm {header.get('algorithm_version')}, "
            f"expected {FORMAT_VERSION} / {ALGORITHM_VERSION}"
        )
    offset, body = 0, rest[4 + hlen:]
    arrays = {}
    for spec in header.get("arrays", []):
        dtype = _DTYPES.get(spec.get("dtype"))
        shape = tuple(int(s) for s in spec.get("shape", ()))
        if dtype is None or any(s < 0 for s in shape):
            raise CorruptValue(f"stored array {spec.get('name')!r} has an invalid dtype or shape")
        nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        if offset + nbytes > len(body):
            raise CorruptValue(f"stored array {spec.get('name')!r} is truncated")
        arrays[spec["name"]] = np.frombuffer(body, dtype=dtype, count=nbytes // dtype.itemsize,
                                             offset=offset).reshape(shape)
        offset += nbytes
    if offset != len(body):
        raise CorruptValue("stored value has trailing bytes")
    return StoredValue(doc=header.get("doc", {}), arrays=arrays)


def encode_body(body: bytes, content_hash: str, result_digest: str, secret: bytes = b"") -> bytes:
    """Serialise a rendered answer, its content hash and the digest of its result's stored bytes
    (32 hex digits each), signed under ``secret``."""
    tag, of = content_hash.encode("ascii"), result_digest.encode("ascii")
    if len(tag) != _HASH_HEX or len(of) != _HASH_HEX:
        raise ValueError(f"content_hash and result_digest must be {_HASH_HEX} hex digits")
    rest = tag + of + body
    return BODY_MAGIC + _sign(secret, rest) + rest


def decode_body(blob: bytes, secret: bytes = b"") -> tuple[str, str, bytes]:
    """``(content_hash, result_digest, body)`` of a value written by :func:`encode_body`, its HMAC
    verified first."""
    if not isinstance(blob, (bytes, bytearray)) or len(blob) < len(BODY_MAGIC) + 32 + 2 * _HASH_HEX + 2:
        raise CorruptValue("stored answer is truncated")
    if blob[: len(BODY_MAGIC)] != BODY_MAGIC:
        raise CorruptValue("stored answer has an unknown format")
    start = len(BODY_MAGIC) + 32
    rest = memoryview(blob)[start:]
    if not hmac.compare_digest(_sign(secret, rest), bytes(blob[len(BODY_MAGIC): start])):
        raise CorruptValue("stored answer fails its signature (altered, or signed under another secret)")
    tags = bytes(blob[start: start + 2 * _HASH_HEX]).decode("ascii", "replace")
    return tags[:_HASH_HEX], tags[_HASH_HEX:], bytes(blob[start + 2 * _HASH_HEX:])
