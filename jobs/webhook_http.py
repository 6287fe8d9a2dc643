"""One webhook attempt: a POST to a checked address, with a short timeout and no redirects.

:class:`http.client.HTTPConnection` never follows redirects (a 3xx is an answer like any other,
so it is not 2xx: the attempt failed), and here it connects to the address the SSRF guard
checked (:class:`jobs.webhook_guard.Target`), never to a fresh resolution of the name; the name
goes only into ``Host`` and, for https, the TLS server name and certificate check.
"""
from __future__ import annotations

import http.client
import socket
import ssl

from .webhook_guard import Target

__all__ = ["post"]

_USER_AGENT = "eoc-ntk-webhook/1"


class _PinnedHTTP(http.client.HTTPConnection):
    """HTTP to ``address`` (checked), with ``Host`` naming the callback's host."""

    def __init__(self, target: Target, timeout: float):
        super().__init__(target.host, target.port, timeout=timeout)
        self._address = target.address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class _PinnedHTTPS(http.client.HTTPSConnection):
    """HTTPS to ``address`` (checked), the certificate checked against the callback's host name."""

    def __init__(self, target: Target, timeout: float):
        tls = ssl.create_default_context()
        super().__init__(target.host, target.port, timeout=timeout, context=tls)
        self._address = target.address
        self._tls = tls

    def connect(self) -> None:
        raw = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._tls.wrap_socket(raw, server_hostname=self.host)


def post(target: Target, body: bytes, headers: dict[str, str], timeout: float) -> int:
    """POST ``body`` (JSON) to ``target``; the answer's status code (any, redirects included).

    Raises
    ------
    OSError
        The connection failed or timed out (``TimeoutError``, ``ssl.SSLError`` are ``OSError`` s).
    http.client.HTTPException
        The answer was not HTTP.
    """
    cls = _PinnedHTTPS if target.scheme == "https" else _PinnedHTTP
    conn = cls(target, timeout)
    try:
        conn.request("POST", target.path, body=body, headers={
            "Content-Type": "application/json", "User-Agent": _USER_AGENT, **headers})
        response = conn.getresponse()
        response.read(64 * 1024)  # the answer's body is not used; read a little so the connection ends cleanly
        return response.status
    finally:
        conn.close()
