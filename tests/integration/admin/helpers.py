"""Helpers of the platform admin console tests: accounts made as ``idp admins add`` makes them,
TOTP codes computed as an authenticator app would, and the login steps through the forms."""

from __future__ import annotations

import time
from typing import Any

import pyotp
from flask import current_app
from flask.testing import FlaskClient
from sqlalchemy import func, select

from tests.flows import csrf_token

ADMIN = "ops.admin"
ADMIN_PASSWORD = "Platform-Admin-9"


def make_admin(username: str = ADMIN, password: str = ADMIN_PASSWORD) -> None:
    from idp import db
    from idp.admin.accounts import add_admin

    add_admin(db.session(), username=username, password=password, actor="test")
    db.session().commit()


def fetch_admin(username: str = ADMIN) -> Any:
    from idp.admin.models import PlatformAdmin

    with current_app.extensions["idp.db"]() as session:
        return session.scalars(
            select(PlatformAdmin).where(PlatformAdmin.username == username)
        ).one()


def count(model: type, *where: Any) -> int:
    with current_app.extensions["idp.db"]() as session:
        return int(session.scalar(select(func.count()).select_from(model).where(*where)))


def audit_actions(prefix: str = "admin.") -> list[str]:
    from idp.audit.models import AuditEvent

    with current_app.extensions["idp.db"]() as session:
        events = session.scalars(select(AuditEvent).order_by(AuditEvent.id))
        return [event.action for event in events if event.action.startswith(prefix)]


def totp(secret: str, step: int = 0) -> str:
    """The code an authenticator shows ``step`` periods from now (-1, 0, +1 are accepted)."""
    return pyotp.TOTP(secret).at(time.time() + 30 * step)


def post_form(client: FlaskClient, url: str, **data: str) -> Any:
    page = client.get(url)
    return client.post(url, data={"csrf_token": csrf_token(page.text), **data})


def password_step(
    client: FlaskClient, username: str = ADMIN, password: str = ADMIN_PASSWORD
) -> Any:
    return post_form(client, "/admin/login", username=username, password=password)


def secret_on_page(html: str) -> str:
    start = html.index('id="totp-secret">') + len('id="totp-secret">')
    return html[start : html.index("<", start)]


# Tests name codes by their step from now (-1, 0, +1); crossing a 30 s boundary midway would
# turn one step into another. A test that starts late in a period waits for the next one.
MARGIN_SECONDS = 12


def fresh_period() -> None:
    elapsed = time.time() % 30
    if elapsed > 30 - MARGIN_SECONDS:
        time.sleep(30 - elapsed + 0.05)


def enrol(client: FlaskClient, username: str = ADMIN) -> tuple[str, list[str], Any]:
    """First login: password, then read the secret off the page and confirm with a code.
    Returns the secret, the recovery codes shown and the confirming response."""
    fresh_period()
    assert password_step(client, username).headers["Location"] == "/admin/enrol"
    page = client.get("/admin/enrol")
    secret = secret_on_page(page.text)
    response = client.post(
        "/admin/enrol", data={"csrf_token": csrf_token(page.text), "code": totp(secret)}
    )
    codes = [part.split("</code>")[0] for part in response.text.split("<li><code>")[1:]]
    return secret, codes, response


def log_in(client: FlaskClient, secret: str, *, step: int = 1, username: str = ADMIN) -> Any:
    """Password, then a code of ``step`` (not the one enrolment used: that one is spent)."""
    assert password_step(client, username).headers["Location"] == "/admin/login/code"
    return post_form(client, "/admin/login/code", code=totp(secret, step))
