"""Shared dependencies of the route handlers, as ``Annotated`` aliases.

They are coroutines, cheap and without I/O: FastAPI runs a plain ``def`` dependency in a worker
thread, and that hop costs a cache hit more than its look-up (bench/README.md, "Where the time
of one hit goes")."""
from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from .access import authenticate
from .engine import Engine
from .errors import UnsupportedMediaType
from .jsonbody import is_json_media, media_type
from .results import NPY

__all__ = ["EngineDep", "PreferAsync", "WantsNpy", "PrincipalDep", "require_json"]


async def get_engine(request: Request) -> Engine:
    return request.app.state.engine


_PREFER = Header(description="`respond-async` asks for a job (202).")
_ACCEPT = Header(description="`application/x-npy` for a raw .npy kernel.")


async def prefer_async(prefer: Annotated[str | None, _PREFER] = None) -> bool:
    """True when the ``Prefer`` header holds ``respond-async`` (RFC 7240)."""
    if not prefer:
        return False
    tokens = (t.split("=")[0].strip().lower() for part in prefer.split(",") for t in part.split(";"))
    return "respond-async" in tokens


async def wants_npy(accept: Annotated[str | None, _ACCEPT] = None) -> bool:
    return accept is not None and NPY in accept.lower() and "application/json" not in accept.lower()


async def require_json(request: Request) -> None:
    """Refuse compute requests whose body is declared as anything but JSON (415)."""
    media = media_type(request.headers.get("content-type"), default="application/json")
    if not is_json_media(media):
        raise UnsupportedMediaType(f"Content-Type {media!r} is not supported here; send application/json",
                                   field="Content-Type")


_api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False,
                               description="API key (only when the service is configured with EOC_NTK_API_KEYS).")
_bearer = HTTPBearer(auto_error=False, description="The API key as a bearer token (same as X-API-Key).")


async def principal(
    request: Request,
    api_key: Annotated[str | None, Depends(_api_key_header)],
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> str | None:
    """Who calls: the fingerprint of a valid API key, ``None`` when keys are not configured (401 otherwise)."""
    presented = api_key or (bearer.credentials if bearer is not None else None)
    return authenticate(request.app.state.engine.settings, presented)


EngineDep = Annotated[Engine, Depends(get_engine)]
PrincipalDep = Annotated[str | None, Depends(principal)]
PreferAsync = Annotated[bool, Depends(prefer_async)]
WantsNpy = Annotated[bool, Depends(wants_npy)]
