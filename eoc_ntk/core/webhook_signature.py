"""Signatures of webhook deliveries: ``t=<unix time>,v1=<hex HMAC-SHA256 of "t.body">``.

The service signs every callback it POSTs (header :data:`SIGNATURE_HEADER`) with the shared
secret ``EOC_NTK_WEBHOOK_SECRET``; a receiver recomputes the HMAC over the timestamp, a dot and
the raw body bytes, compares it in constant time, and refuses a timestamp older (or newer) than
its tolerance, so that a captured delivery cannot be replayed later. Standard library only: both
the job layer (which signs) and the users' tools (:mod:`eoc_ntk.webhooks`, which verify) import it.
"""
from __future__ import annotations

import hashlib
import hmac
import time

__all__ = ["SIGNATURE_HEADER", "WebhookSignatureError", "sign", "signature_header", "verify"]

#: The header that carries the signature of a delivery.
SIGNATURE_HEADER = "X-EOC-NTK-Signature"


class WebhookSignatureError(ValueError):
    """A delivery whose signature header is missing, malformed, stale or does not match."""


def _secret_bytes(secret: str | bytes) -> bytes:
    return secret if isinstance(secret, bytes) else secret.encode("utf-8")


def sign(body: bytes, secret: str | bytes, timestamp: int) -> str:
    """The hex HMAC-SHA256 of ``b"<timestamp>." + body`` under ``secret``."""
    message = str(int(timestamp)).encode("ascii") + b"." + body
    return hmac.new(_secret_bytes(secret), message, hashlib.sha256).hexdigest()


def signature_header(body: bytes, secret: str | bytes, timestamp: int | None = None) -> str:
    """The value of :data:`SIGNATURE_HEADER` for ``body`` sent at ``timestamp`` (default: now)."""
    t = int(time.time()) if timestamp is None else int(timestamp)
    return f"t={t},v1={sign(body, secret, t)}"


def _parse(header: str) -> tuple[int, list[str]]:
    """The timestamp and the ``v1`` signatures of a header (several ``v1`` may appear while a secret rotates)."""
    timestamp: int | None = None
    signatures: list[str] = []
    for part in header.split(","):
        name, sep, value = part.strip().partition("=")
        if not sep:
            continue
        if name == "t":
            try:
                timestamp = int(value)
            except ValueError:
                raise WebhookSignatureError(f"the timestamp t={value!r} of the signature header is not an "
                                            "integer") from None
        elif name == "v1":
            signatures.append(value.strip())
    if timestamp is None or not signatures:
        raise WebhookSignatureError(f"malformed {SIGNATURE_HEADER} header {header[:200]!r}: expected "
                                    "'t=<unix time>,v1=<hex signature>'")
    return timestamp, signatures


def verify(body: bytes | str, header: str | None, secret: str | bytes, tolerance: float = 300,
           now: float | None = None) -> bool:
    """Check a delivery: True when ``header`` signs ``body`` under ``secret`` within ``tolerance`` seconds.

    Parameters
    ----------
    body
        The raw request body as received (bytes; a str is encoded as UTF-8). Verify it before
        parsing it: re-serialised JSON would not match.
    header
        The value of the ``X-EOC-NTK-Signature`` header: ``t=<unix time>,v1=<hex>``.
    secret
        The shared secret (the service's ``EOC_NTK_WEBHOOK_SECRET``).
    tolerance
        Most seconds between the signed timestamp and ``now`` (either way); ``<= 0`` turns the
        replay check off.
    now
        The current Unix time (default: ``time.time()``).

    Returns
    -------
    bool
        Always True: any failure raises.

    Raises
    ------
    WebhookSignatureError
        The header is missing or malformed, the timestamp is outside the tolerance (a replay,
        or a clock far off), or no signature matches (wrong secret or altered body). The
        comparison is constant-time (:func:`hmac.compare_digest`).
    """
    if not header:
        raise WebhookSignatureError(f"the {SIGNATURE_HEADER} header is missing")
    raw = body.encode("utf-8") if isinstance(body, str) else bytes(body)
    timestamp, signatures = _parse(header)
    current = time.time() if now is None else now
    if tolerance > 0 and abs(current - timestamp) > tolerance:
        raise WebhookSignatureError(f"the signature's timestamp is {abs(current - timestamp):.0f} s away from now, "
                                    f"more than the tolerance of {tolerance:g} s (a replayed or delayed delivery)")
    expected = sign(raw, secret, timestamp)
    if not any(hmac.compare_digest(expected, candidate) for candidate in signatures):
        raise WebhookSignatureError("the signature does not match the body (wrong secret, or the body was altered)")
    return True
