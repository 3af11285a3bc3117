"""CSRF tokens for the POST forms and the response headers every page gets.

A per-session token in a hidden field is enough here: the only state-changing requests are
the refresh and logout buttons, and the session cookie is SameSite=Lax on top of it.
"""

from __future__ import annotations

import hmac
import secrets
from urllib.parse import urlsplit

from flask import request, session
from werkzeug.wrappers import Response

from .config import Config
from .errors import RpError

CSRF_SESSION_KEY = "csrf_token"
CSRF_FIELD = "csrf_token"
# Server-to-server: the provider's back-channel logout POST carries its own signed token.
CSRF_EXEMPT = {"backchannel.receive"}
# Framed by the provider's logged-out page (front-channel logout); its CSP frame-ancestors
# names the provider instead of X-Frame-Options DENY.
FRAMED_BY_PROVIDER = {"frontchannel.receive"}


def csrf_token() -> str:
    """The session's CSRF token, created on first use (templates call this)."""
    token = session.get(CSRF_SESSION_KEY)
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        session[CSRF_SESSION_KEY] = token
    return token


def check_csrf() -> None:
    """Before every POST: the form must echo the session's token (constant-time compare)."""
    if request.method != "POST" or request.endpoint in CSRF_EXEMPT:
        return
    expected = session.get(CSRF_SESSION_KEY)
    given = request.form.get(CSRF_FIELD, "")
    if not isinstance(expected, str) or not hmac.compare_digest(expected, given):
        raise RpError("csrf_failed")


def content_security_policy(config: Config) -> str:
    """Local assets only (plus the inline ``data:`` favicon), no framing; forms may also go to the provider (logout redirects there)."""
    issuer = urlsplit(config.issuer)
    provider_origin = f"{issuer.scheme}://{issuer.netloc}"
    return (
        "default-src 'self'; img-src 'self' data:; base-uri 'none'; frame-ancestors 'none'; "
        f"form-action 'self' {provider_origin}"
    )


def add_security_headers(response: Response, *, config: Config) -> Response:
    """Anti-framing, CSP, no referrer (the callback URL carries the code) and no caching."""
    response.headers.setdefault("Content-Security-Policy", content_security_policy(config))
    if request.endpoint not in FRAMED_BY_PROVIDER:
        response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    response.headers.setdefault("Cache-Control", "no-store")
    return response
