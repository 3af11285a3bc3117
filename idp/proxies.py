"""The client's address and scheme behind TLS proxies: ``X-Forwarded-*`` is believed only when
the request comes from a proxy listed in ``IDP_TRUSTED_PROXIES`` (addresses or networks).

Anyone can send ``X-Forwarded-For``; a provider reachable directly, or behind a proxy that
appends rather than replaces the header, would otherwise take an attacker's word for the
address that every rate limit and audit event is keyed on. So the headers are dropped unless
the direct peer is trusted, and then the client is the right-most ``X-Forwarded-For`` entry
that is not itself a trusted proxy (entries left of it were written by the client).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable
from typing import Any

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
# Headers only a trusted proxy may set; a request id is the proxy's to give too (idp/logs.py).
FORWARDED = ("HTTP_X_FORWARDED_FOR", "HTTP_X_FORWARDED_PROTO", "HTTP_X_FORWARDED_HOST")
PROXY_ONLY = ("HTTP_X_REQUEST_ID",)


def parse_networks(value: str) -> list[Network]:
    """``"127.0.0.1, 10.0.0.0/8"`` → networks; ValueError names the entry that is not one."""
    networks = []
    for entry in filter(None, (part.strip() for part in value.split(","))):
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            raise ValueError(f"not an address or network: {entry!r}") from None
    return networks


def _is_in(address: str, networks: Iterable[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address.strip())
    except ValueError:
        return False
    return any(ip in network for network in networks)


def client_address(peer: str, forwarded_for: str, trusted: list[Network]) -> str:
    """The right-most forwarded address that is not a trusted proxy (the peer when none)."""
    hops = [peer, *reversed([a.strip() for a in forwarded_for.split(",") if a.strip()])]
    for hop in hops:
        if not _is_in(hop, trusted):
            return hop
    return hops[-1]


class TrustedProxies:
    """WSGI middleware applying the rule above; a no-op list trusts nobody."""

    def __init__(self, app: Callable[..., Any], trusted: list[Network]) -> None:
        self.app = app
        self.trusted = trusted

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        peer = environ.get("REMOTE_ADDR", "")
        if self.trusted and _is_in(peer, self.trusted):
            forwarded = environ.get("HTTP_X_FORWARDED_FOR", "")
            if forwarded:
                environ["REMOTE_ADDR"] = client_address(peer, forwarded, self.trusted)
            proto = environ.get("HTTP_X_FORWARDED_PROTO", "").split(",")[-1].strip().lower()
            if proto in {"http", "https"}:
                environ["wsgi.url_scheme"] = proto
            host = environ.get("HTTP_X_FORWARDED_HOST", "").split(",")[-1].strip()
            if host:
                environ["HTTP_HOST"] = host
        else:
            for name in PROXY_ONLY:
                environ.pop(name, None)
        for name in FORWARDED:  # never seen by the app: only this middleware reads them
            environ.pop(name, None)
        return self.app(environ, start_response)
