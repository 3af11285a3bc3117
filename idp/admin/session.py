"""Platform admin sessions: a random id in their own HttpOnly cookie limited to ``/admin``, the
state in the ephemeral store, with idle and absolute lifetimes shorter than operators'. An
operator's or org admin's session is never a platform admin's: they are different cookies
and different keys."""

from __future__ import annotations

import json
import secrets
from dataclasses import asdict, dataclass
from datetime import timedelta

from flask import Response, g, request

from idp import context
from idp.config import settings
from idp.db import utcnow
from idp.store import store

COOKIE = "idp_admin"
PATH = "/admin"


@dataclass
class AdminSession:
    id: str
    admin_id: int
    username: str
    created_at: float
    step_up_at: float  # when a TOTP code was last re-entered for a destructive action


def _key(session_id: str) -> str:
    return f"admin_session:{session_id}"


def _remaining(login: AdminSession) -> timedelta:
    now = utcnow().timestamp()
    absolute = login.created_at + settings().admin_session_absolute_ttl - now
    return timedelta(seconds=min(absolute, settings().admin_session_idle_ttl))


def start(admin_id: int, username: str) -> AdminSession:
    end_current()
    now = utcnow().timestamp()
    # step_up_at 0: a destructive action asks for a code again, even right after the login
    login = AdminSession(secrets.token_urlsafe(32), admin_id, username, now, 0.0)
    store().put(_key(login.id), json.dumps(asdict(login)).encode(), _remaining(login))
    g.admin_session = login
    g.set_admin_cookie = True
    return login


def save(login: AdminSession) -> bool:
    ttl = _remaining(login)
    if ttl.total_seconds() <= 0:
        store().delete(_key(login.id))
        return False
    return store().replace(_key(login.id), json.dumps(asdict(login)).encode(), ttl)


def current() -> AdminSession | None:
    """This request's admin session; touching it extends the idle lifetime."""
    if "admin_session" in g:
        value: AdminSession | None = g.admin_session
        return value
    login = None
    session_id = request.cookies.get(COOKIE)
    raw = store().get(_key(session_id)) if session_id else None
    if raw is not None:
        login = AdminSession(**json.loads(raw))
        if not save(login):
            login = None
    g.admin_session = login
    return login


def stepped_up(login: AdminSession) -> bool:
    return utcnow().timestamp() - login.step_up_at <= settings().admin_step_up_seconds


def mark_stepped_up(login: AdminSession) -> None:
    login.step_up_at = utcnow().timestamp()
    save(login)


def end_current() -> None:
    login = current()
    if login is not None:
        store().delete(_key(login.id))
    g.admin_session = None
    g.set_admin_cookie = True


def write_cookie(response: Response) -> Response:
    request_globals = context.g()
    if not request_globals.get("set_admin_cookie"):
        return response
    login = request_globals.get("admin_session")
    secure = settings().secure_cookies
    if login is None:
        response.delete_cookie(COOKIE, path=PATH, httponly=True, samesite="Strict", secure=secure)
    else:
        response.set_cookie(
            COOKIE, login.id, path=PATH, httponly=True, samesite="Strict", secure=secure
        )
    return response
