"""API keys: who is calling.

Keys come from the settings (``EOC_NTK_API_KEYS``). With none configured, authentication is
off and every caller is ``None`` (no ownership checks, no per-key job limit). With keys, a
request presents one in ``X-API-Key`` or ``Authorization: Bearer``; it is compared with every
configured key in constant time (SHA-256 digests through ``hmac.compare_digest``, so neither
the content nor the length of a key leaks through timing). The caller is then known by a
fingerprint of its key (never the key itself), which is what ownership records hold.
"""
from __future__ import annotations

import hashlib
import hmac

from starlette.middleware.cors import CORSMiddleware

from .config import Settings
from .errors import Unauthorized

__all__ = ["fingerprint", "authenticate", "install_cors"]


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).digest()


def fingerprint(key: str) -> str:
    """The name of an API key in stored records: a truncated hash, not the key."""
    return "key-" + hashlib.sha256(b"eoc-ntk principal\x00" + key.encode("utf-8", "surrogatepass")).hexdigest()[:24]


def authenticate(settings: Settings, presented: str | None) -> str | None:
    """The caller's fingerprint; ``None`` when authentication is off; :class:`Unauthorized` otherwise."""
    configured = settings.api_key_list
    if not configured:
        return None
    if not presented:
        raise Unauthorized("an API key is required: send it in the X-API-Key header "
                           "(or Authorization: Bearer <key>)", field="X-API-Key")
    digest = _digest(presented)
    match = None
    for key in configured:  # no early exit: the time does not say which key matched
        if hmac.compare_digest(digest, _digest(key)):
            match = key
    if match is None:
        raise Unauthorized("the API key is not valid", field="X-API-Key")
    return fingerprint(match)


def install_cors(app, settings: Settings) -> None:
    """CORS headers for the configured origins only (``EOC_NTK_CORS_ORIGINS``); none by default."""
    origins = settings.cors_origin_list
    if not origins:
        return
    app.add_middleware(
        CORSMiddleware, allow_origins=origins, allow_methods=["GET", "POST", "DELETE"],
        allow_headers=["Content-Type", "Accept", "Prefer", "X-API-Key", "Authorization"],
        expose_headers=["Location", "Retry-After", "Preference-Applied", "X-Cache"], max_age=600,
    )
