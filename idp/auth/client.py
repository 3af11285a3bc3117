"""Who is asking, as far as limits can tell before anyone has logged in: the client's network
and its browser.

Limits keyed by phone alone can be spent by anyone who knows the phone number, and then lock
its owner out. Limits are therefore kept per client as well: per network (an IPv4 address, or
the /64 an IPv6 host usually holds a whole prefix of) and per browser, identified by a random
256-bit id in a long-lived HttpOnly cookie that every page sets when it is missing. A stranger
can mint as many browser ids as they like, so every browser limit has a network limit beside it;
what the cookie adds is that the owner's own browser has counters no stranger can reach.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
import secrets
from dataclasses import dataclass

from flask import Response

from idp import context
from idp.config import settings
from idp.security import client_ip

BROWSER_COOKIE = "idp_browser"
BROWSER_COOKIE_MAX_AGE = 400 * 86400  # the longest lifetime browsers honour (RFC 6265bis)
BROWSER_ID = re.compile(r"[A-Za-z0-9_-]{43}")  # token_urlsafe(32)
IPV6_PREFIX = 64


@dataclass(frozen=True)
class Client:
    """The requesting client as limits see it: ``network`` and ``browser`` are digests, safe to
    use in store keys (the browser id itself stays in the cookie)."""

    network: str
    browser: str


def current_client() -> Client:
    return Client(network=network_key(client_ip()), browser=_digest(browser_id()))


def network_key(ip: str) -> str:
    """The network a limit counts: the IPv4 address, or the /64 of an IPv6 address."""
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return _digest(ip)
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if isinstance(address, ipaddress.IPv6Address):
        network = ipaddress.IPv6Network(f"{address}/{IPV6_PREFIX}", strict=False)
        return _digest(str(network))
    return _digest(str(address))


def browser_id() -> str:
    """The browser's id from its cookie; a missing or malformed one is replaced by a new id,
    which the response sets (``write_browser_cookie``)."""
    request_globals = context.g()
    minted: str | None = request_globals.get("new_browser_id")
    if minted is not None:
        return minted
    cookie = context.request().cookies.get(BROWSER_COOKIE, "")
    if BROWSER_ID.fullmatch(cookie):
        return cookie
    minted = request_globals.new_browser_id = secrets.token_urlsafe(32)
    return minted


def ensure_browser_id() -> None:
    """Give a browser its id on the pages that ask for SMS codes, before it asks."""
    browser_id()


def write_browser_cookie(response: Response) -> Response:
    """Set the cookie when this request minted a browser id."""
    new_id = context.g().pop("new_browser_id", None)
    if new_id is not None:
        response.set_cookie(
            BROWSER_COOKIE,
            new_id,
            path="/",
            httponly=True,
            samesite="Lax",
            secure=settings().secure_cookies,
            max_age=BROWSER_COOKIE_MAX_AGE,
        )
    return response


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()[:32]
