"""Where a job's webhook may go: the SSRF guard of ``callback_url``.

A callback URL is accepted only when

- its scheme is ``http`` or ``https``, it names a host and carries no user name or password;
- its host is allowed by ``EOC_NTK_WEBHOOK_ALLOW``: by name (``hooks.example.com``, a suffix
  pattern ``*.example.com``, or ``*`` for any name), or by a CIDR (``10.0.0.0/8``) that holds an
  address the name resolves to (an IP literal resolves to itself);
- the address chosen is neither link-local (``169.254.0.0/16``, ``fe80::/10``, where cloud
  metadata services answer) nor a metadata address (``169.254.169.254``, ``fd00:ec2::254``,
  ``100.100.100.200``), nor is the name a metadata name (``metadata.google.internal``): these
  are refused even when a wildcard or ``0.0.0.0/0`` allows them.

:func:`check_callback` resolves the name once and returns the :class:`Target` with the one
address it checked; the delivery connects to that address (the name goes only into ``Host``
and the TLS server name), so that a name re-pointed after the check (DNS rebinding) reaches
nothing unchecked. The API checks at request time (422 naming ``callback_url``) and the
delivery checks again before every attempt.
"""
from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from .settings import JobSettings

__all__ = ["CallbackRefused", "Target", "check_callback", "parse_allow", "MAX_URL_LENGTH"]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

#: Longest callback URL accepted.
MAX_URL_LENGTH = 2048
_FORBIDDEN_NETWORKS: tuple[IPNetwork, ...] = (
    ipaddress.ip_network("169.254.0.0/16"), ipaddress.ip_network("fe80::/10"),
    ipaddress.ip_network("fd00:ec2::254/128"), ipaddress.ip_network("100.100.100.200/32"),
)
_FORBIDDEN_NAMES = frozenset({"metadata.google.internal", "metadata.goog", "metadata", "instance-data",
                              "instance-data.ec2.internal"})


class CallbackRefused(ValueError):
    """A ``callback_url`` the guard does not allow; the message says why and what to do."""


@dataclass(frozen=True)
class Target:
    """A checked callback: where to connect (``address``, ``port``) and what to ask for."""

    url: str
    scheme: str
    host: str
    port: int
    path: str
    address: str


def parse_allow(text: str) -> tuple[frozenset[str], tuple[IPNetwork, ...]]:
    """The host names (lower case) and the networks of an ``EOC_NTK_WEBHOOK_ALLOW`` value.

    Raises
    ------
    CallbackRefused
        An entry that is neither a host name nor a CIDR.
    """
    names: set[str] = set()
    networks: list[IPNetwork] = []
    for entry in (e.strip().lower().rstrip(".") for e in text.split(",")):
        if not entry:
            continue
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
            continue
        except ValueError:
            pass
        if "/" in entry or any(c.isspace() for c in entry):
            raise CallbackRefused(f"EOC_NTK_WEBHOOK_ALLOW entry {entry!r} is neither a host name nor a CIDR")
        names.add(entry)
    return frozenset(names), tuple(networks)


def _name_allowed(host: str, names: frozenset[str]) -> bool:
    if "*" in names or host in names:
        return True
    return any(n.startswith("*.") and host.endswith(n[1:]) for n in names)


def _forbidden(address: IPAddress) -> bool:
    mapped = getattr(address, "ipv4_mapped", None)
    candidates = (address,) if mapped is None else (address, mapped)
    return any(a.version == net.version and a in net for a in candidates for net in _FORBIDDEN_NETWORKS)


def _resolve(host: str, port: int) -> list[IPAddress]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise CallbackRefused(f"callback_url's host {host!r} does not resolve ({exc})") from None
    found: list[IPAddress] = []
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        if address not in found:
            found.append(address)
    return found


def _split(url: str) -> tuple[str, str, int, str]:
    """Scheme, host (lower case), port and path with query of ``url``; :class:`CallbackRefused` when unusable."""
    if len(url) > MAX_URL_LENGTH:
        raise CallbackRefused(f"callback_url is longer than {MAX_URL_LENGTH} characters")
    if any(ord(c) <= 0x20 or ord(c) == 0x7F for c in url):
        raise CallbackRefused("callback_url must not contain spaces or control characters; percent-encode them")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise CallbackRefused(f"callback_url is not a valid URL ({exc})") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise CallbackRefused(f"callback_url must be an http:// or https:// URL, not "
                              f"{scheme + ':' if scheme else 'one without a scheme'}")
    if parts.username is not None or parts.password is not None:
        raise CallbackRefused("callback_url must not carry a user name or password; authenticate deliveries by "
                              "their signature (X-EOC-NTK-Signature)")
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise CallbackRefused("callback_url names no host")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return scheme, host, port or (443 if scheme == "https" else 80), path


def check_callback(url: str, settings: JobSettings) -> Target:
    """The :class:`Target` of ``url`` when the guard allows it (see the module docstring).

    Raises
    ------
    CallbackRefused
        Webhooks are not configured, or ``url`` is malformed, not allowed or points at a
        link-local or metadata address; the message names the fix.
    """
    if not settings.webhook_allow.strip():
        raise CallbackRefused("callback_url is refused: this service allows no webhook hosts (set "
                              "EOC_NTK_WEBHOOK_ALLOW to the host names or CIDRs callbacks may reach)")
    if not settings.webhook_secret:
        raise CallbackRefused("callback_url is refused: this service has no EOC_NTK_WEBHOOK_SECRET to sign "
                              "deliveries with")
    scheme, host, port, path = _split(url)
    names, networks = parse_allow(settings.webhook_allow)
    if host in _FORBIDDEN_NAMES:
        raise CallbackRefused(f"callback_url's host {host!r} is a cloud metadata service, never a callback target")
    by_name = _name_allowed(host, names)
    refused: list[str] = []
    for address in _resolve(host, port):
        if _forbidden(address):
            refused.append(f"{address} (link-local or metadata)")
        elif by_name or any(address.version == net.version and address in net for net in networks):
            return Target(url, scheme, host, port, path, str(address))
        else:
            refused.append(f"{address} (not in EOC_NTK_WEBHOOK_ALLOW)")
    raise CallbackRefused(f"callback_url's host {host!r} is not allowed: it resolves to {', '.join(refused)}; "
                          "callbacks go only to hosts listed in EOC_NTK_WEBHOOK_ALLOW")
