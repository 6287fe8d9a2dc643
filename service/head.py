"""``HEAD`` on every route answered as its ``GET``, without the body (RFC 9110, section 9.3.2),
and the ``Allow`` header of a 405 (every method of the path, not only those of one route).

The status and the headers (``Content-Type``, ``Content-Length``, ``ETag``, ``Cache-Control``,
...) are those ``GET`` sends; a route without ``GET`` answers 405 as ``GET`` would."""
from __future__ import annotations

import re
from functools import lru_cache

__all__ = ["HeadAsGet", "allowed_methods"]


@lru_cache(maxsize=1)
def _templates(paths: tuple[tuple[str, tuple[str, ...]], ...]) -> list[tuple[re.Pattern, tuple]]:
    return [(re.compile("^" + re.sub(r"\\{[^/]+?\\}", "[^/]+", re.escape(path)) + "$"), methods)
            for path, methods in paths]


def allowed_methods(document: dict, path: str) -> str:
    """The ``Allow`` header of ``path``: the methods of the OpenAPI ``document`` for it, with HEAD
    where GET is."""
    paths = tuple((p, tuple(m.upper() for m in ops)) for p, ops in document.get("paths", {}).items())
    methods: set[str] = set()
    for pattern, verbs in _templates(paths):
        if pattern.match(path):
            methods.update(verbs)
    if "GET" in methods:
        methods.add("HEAD")
    return ", ".join(sorted(methods))


class HeadAsGet:
    """ASGI middleware: runs a ``HEAD`` request as ``GET`` and drops the body of the answer."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] != "HEAD":
            return await self.app(scope, receive, send)

        async def headers_only(message):
            if message["type"] == "http.response.body":
                if message.get("more_body", False):
                    return
                message = {"type": "http.response.body", "body": b"", "more_body": False}
            await send(message)

        await self.app({**scope, "method": "GET"}, receive, headers_only)
