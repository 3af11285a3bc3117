"""Login sessions: a random id in an HttpOnly cookie, the state in the ephemeral store, with
idle and absolute lifetimes. ``sid`` (OIDC) is a separate random value, never the cookie."""

from __future__ import annotations

import json
import secrets
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta

from flask import Response, g, request

from idp.config import settings
from idp.db import utcnow
from idp.store import store

COOKIE = "idp_session"


@dataclass
class LoginSession:
    """Who is logged in and how (amr, RFC 8176), kept server-side."""

    id: str
    account_id: int | None  # operators; None for org admins (see org_id)
    kind: str  # "operator" or "org_admin"
    amr: list[str]
    acr: str
    auth_time: float
    created_at: float
    sid: str = field(default_factory=lambda: secrets.token_urlsafe(16))
    org_id: int | None = None  # certificate logins: the registered org the certificate proves
    # certificate logins: what the verified certificate says (uscc, org_name, fingerprint,
    # subject, issuer); the registration wizard reads it while org_id is still None
    certificate: dict[str, str] | None = None
    consents: list[str] = field(default_factory=list)  # "client_id scope" strings


def _key(session_id: str) -> str:
    return f"session:{session_id}"


def _remaining(login: LoginSession) -> timedelta:
    absolute = timedelta(seconds=settings().session_absolute_ttl)
    left = datetime.fromtimestamp(login.created_at, tz=utcnow().tzinfo) + absolute - utcnow()
    return min(left, timedelta(seconds=settings().session_idle_ttl))


def save(login: LoginSession) -> None:
    ttl = _remaining(login)
    if ttl.total_seconds() <= 0:
        store().delete(_key(login.id))
        return
    store().put(_key(login.id), json.dumps(asdict(login)).encode(), ttl)


def start(
    *,
    account_id: int | None,
    kind: str,
    amr: list[str],
    acr: str,
    org_id: int | None = None,
    certificate: dict[str, str] | None = None,
) -> LoginSession:
    """Begin a new session (a fresh id, so a session id planted before login is useless)."""
    end_current()
    now = utcnow().timestamp()
    login = LoginSession(
        id=secrets.token_urlsafe(32),
        account_id=account_id,
        kind=kind,
        amr=amr,
        acr=acr,
        auth_time=now,
        created_at=now,
        org_id=org_id,
        certificate=certificate,
    )
    save(login)
    g.login_session = login
    g.set_session_cookie = True
    return login


def current() -> LoginSession | None:
    """The live session of this request; touching it extends the idle lifetime."""
    if "login_session" in g:
        value: LoginSession | None = g.login_session
        return value
    session_id = request.cookies.get(COOKIE)
    login = None
    if session_id:
        raw = store().get(_key(session_id))
        if raw is not None:
            login = LoginSession(**json.loads(raw))
            save(login)
    g.login_session = login
    return login


def end_current() -> LoginSession | None:
    """Log out: drop the server-side state and clear the cookie."""
    login = current()
    if login is not None:
        end(login)
    g.login_session = None
    g.set_session_cookie = True
    return login


def end(login: LoginSession) -> None:
    store().delete(_key(login.id))


def forget_request_state() -> None:
    """Drop what an earlier request cached in ``g`` (an app context may span requests)."""
    for name in ("login_session", "set_session_cookie", "audit_events", "new_browser_id"):
        g.pop(name, None)


def write_cookie(response: Response) -> Response:
    """Set or clear the session cookie when this request started or ended a session."""
    if not g.get("set_session_cookie"):
        return response
    login = g.get("login_session")
    if login is None:
        response.delete_cookie(
            COOKIE, path="/", httponly=True, samesite="Lax", secure=settings().secure_cookies
        )
    else:
        response.set_cookie(
            COOKIE,
            login.id,
            path="/",
            httponly=True,
            samesite="Lax",
            secure=settings().secure_cookies,
            max_age=settings().session_absolute_ttl,
        )
    return response
