"""Opaque page cursors: where a listing's page ended, signed for the listing that produced it.

A cursor is ``base64url("<score>.<member>") + "." + tag``, the tag an HMAC-SHA-256 (truncated to
128 bits) of the position and of its *context* (the listing, the caller and the filters) under
the store's secret (:meth:`jobs.store.Storage.secret`). A cursor that was altered, or that comes
from another listing, another API key or other filters, fails the check and is refused (422
naming ``cursor``), never read as a position.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac

from jobs.index import Position

from .errors import InvalidInput

__all__ = ["encode_cursor", "decode_cursor"]

_TAG_HEX = 32


def _tag(payload: bytes, context: str, secret: bytes) -> str:
    message = b"eoc-ntk cursor\x00" + context.encode() + b"\x00" + payload
    return hmac.new(secret, message, hashlib.sha256).hexdigest()[:_TAG_HEX]


def encode_cursor(position: Position, context: str, secret: bytes) -> str:
    """The cursor of ``position`` in the listing named by ``context``."""
    payload = f"{position[0]}.{position[1]}".encode()
    return base64.urlsafe_b64encode(payload).decode().rstrip("=") + "." + _tag(payload, context, secret)


def decode_cursor(cursor: str, context: str, secret: bytes) -> Position:
    """The position of a cursor of this listing; :class:`InvalidInput` (``cursor``) otherwise."""
    bad = InvalidInput("cursor is not a cursor of this listing (altered, or from another listing, API key or "
                       "filters); send the next_cursor of the previous page with the same filters, or omit cursor "
                       "for the first page", field="cursor")
    text, _, tag = cursor.partition(".")
    try:
        payload = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise bad from None
    if len(tag) != _TAG_HEX or not hmac.compare_digest(tag, _tag(payload, context, secret)):
        raise bad
    score, _, member = payload.decode().partition(".")
    return int(score), member
