"""What the console and join tests read from real pages, and the few documented shortcuts.

Shortcuts:
- ``age_join_request`` moves a join request's ``expires_at`` into the past in the database:
  stands in for waiting out ``IDP_JOIN_REQUEST_TTL``;
- ``add_join_request`` inserts a pending request as ``reviews.submit_join_request`` leaves it
  (the /join page itself is tested end to end in test_join.py).
"""

from __future__ import annotations

import html
import re
from datetime import timedelta
from typing import Any

from flask import current_app
from flask.testing import FlaskClient
from sqlalchemy import func, select, update

from tests.flows import csrf_token

MISMATCH = "您填写的身份信息与手机号认证失败，请确认信息是否填写正确。"
UNAVAILABLE = "校验服务暂不可用，请稍后再试"
READ_ONLY = "只能修改手机号码和操作员状态"
SMS_FAILED = "短信发送失败，请稍后再试"
SUBMITTED = "申请已提交，请等待企业管理员审核"


def flashes(page: str) -> list[str]:
    found = re.findall(r'<p class="flash flash-[a-z]+" role="status">([^<]*)</p>', page)
    return [html.unescape(text) for text in found]


def form_error(page: str) -> str | None:
    found = re.search(r'<p class="field-error" id="form-error" role="alert">([^<]*)</p>', page)
    return html.unescape(found.group(1)) if found else None


def field_errors(page: str) -> dict[str, list[str]]:
    found = re.findall(r'<p class="field-error" id="([a-z_]+)-error">([^<]*)</p>', page)
    errors: dict[str, list[str]] = {}
    for field, text in found:
        errors.setdefault(field, []).append(html.unescape(text))
    return errors


def error_page(page: str) -> str | None:
    """The message of the shared error page (errors/error.html)."""
    found = re.search(r'<p class="error-message" data-error-code="[^"]*">([^<]*)</p>', page)
    return html.unescape(found.group(1)) if found else None


def dd(page: str, ident: str) -> str | None:
    found = re.search(rf'<dd id="{re.escape(ident)}">([^<]*)</dd>', page)
    return html.unescape(found.group(1)) if found else None


def row_ids(page: str, prefix: str) -> list[int]:
    return [int(found) for found in re.findall(rf'<tr id="{prefix}-(\d+)"', page)]


def post_form(client: FlaskClient, url: str, data: dict[str, Any]) -> Any:
    """GET the page for its CSRF token, then POST ``data`` to it."""
    page = client.get(url)
    assert page.status_code == 200, (url, page.status_code, page.text[:300])
    return client.post(url, data={"csrf_token": csrf_token(page.text), **data})


def any_csrf_token(client: FlaskClient) -> str:
    """A valid CSRF token of this browser (the login page has one for anyone)."""
    return csrf_token(client.get("/login").text)


# --- database ---------------------------------------------------------------------------------


def count(model: type, *where: Any) -> int:
    with current_app.extensions["idp.db"]() as session:
        return int(session.scalar(select(func.count()).select_from(model).where(*where)))


def fetch(model: type, *where: Any) -> Any:
    with current_app.extensions["idp.db"]() as session:
        return session.scalars(select(model).where(*where)).one()


def people_counts() -> dict[str, int]:
    from idp.identity.models import Account, JoinRequest, Membership

    return {m.__name__: count(m) for m in (Account, Membership, JoinRequest)}


def audit_rows(action: str) -> list[tuple[str, str, str, int | None]]:
    """(actor, target, result, org_id) of every ``action`` event, oldest first."""
    from idp.audit.models import AuditEvent

    with current_app.extensions["idp.db"]() as session:
        rows = session.execute(
            select(AuditEvent.actor, AuditEvent.target, AuditEvent.result, AuditEvent.org_id)
            .where(AuditEvent.action == action)
            .order_by(AuditEvent.id)
        )
        return [(actor, target, result, org_id) for actor, target, result, org_id in rows]


def membership_id(phone: str, org_id: int) -> int:
    from idp.identity.models import Account, Membership

    with current_app.extensions["idp.db"]() as session:
        return int(
            session.scalar(
                select(Membership.id)
                .join(Account, Account.id == Membership.account_id)
                .where(Account.phone == phone, Membership.org_id == org_id)
            )
        )


def add_join_request(org_id: int, *, name: str, phone: str, ttl: timedelta | None = None) -> int:
    from idp.db import utcnow
    from idp.identity.models import JoinRequest

    with current_app.extensions["idp.db"]() as session:
        row = JoinRequest(
            org_id=org_id, name=name, phone=phone, expires_at=utcnow() + (ttl or timedelta(days=7))
        )
        session.add(row)
        session.commit()
        return int(row.id)


def age_join_request(request_id: int) -> None:
    """Stand-in for waiting out the request's lifetime: it expired a second ago."""
    from idp.db import utcnow
    from idp.identity.models import JoinRequest

    with current_app.extensions["idp.db"]() as session:
        session.execute(
            update(JoinRequest)
            .where(JoinRequest.id == request_id)
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
        session.commit()
