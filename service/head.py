"""``HEAD`` on every route answered as its ``GET``, without the body (RFC 9110, section 9.3.2).

The status and the headers (``Content-Type``, ``Content-Length``, ``ETag``, ``Cache-Control``,
...) are those ``GET`` sends; a route without ``GET`` answers 405 as ``GET`` would."""
from __future__ import annotations

__all__ = ["HeadAsGet"]


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
