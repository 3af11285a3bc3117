"""What the registration wizard tests do like a browser, and the documented shortcuts into the
store and the database.

Shortcuts:
- ``cert_login`` writes the login session a verified certificate login leaves (store key
  ``session:<id>``, the production key) and sets the ``idp_session`` cookie;
- ``add_legacy`` inserts a legacy account as ``idp legacy import`` would (sealed secret);
- ``unbind`` undoes a binding in the database: stands in for a second organisation attempt on
  the same account, to show that the store remembers used OTP codes.
"""

from __future__ import annotations

import json
import re
import secrets
import time
from html import unescape
from typing import Any

import pyotp
from flask import current_app
from flask.testing import FlaskClient
from sqlalchemy import delete, func, select, update

from tests.conftest import DEMO_USCC
from tests.flows import csrf_token

ORG_NAME = "上海示例工程造价咨询有限公司"
TOTP_SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
LEGACY_KEY = "legacy-key-Zq8!x"
REF = "WXZJ-SJ-0001"
WRONG = "账号或动态码错误"
LOCKED = "错误次数过多，请 15 分钟后再试"
PROMPTS = {
    "audit": "您所在企业是否在维修资金系统已有审计单位身份账号？（OTP 或密钥）",
    "cost_consulting": "您所在企业是否在维修资金系统已有工程造价咨询单位身份账号？（OTP 或密钥）",
    "bookkeeping": "您所在企业是否在维修资金系统已有代理记账公司身份账号？（OTP 或密钥）",
}
DUPLICATES = {
    "audit": "维修资金系统已经存在统一社会信用代码（含组织机构代码）相同的审计单位，申请失败！",
    "cost_consulting": "维修资金系统已经存在统一社会信用代码（含组织机构代码）相同的审价单位，申请失败！",
    "bookkeeping": "维修资金系统已经存在统一社会信用代码（含组织机构代码）相同的代理记账公司，申请失败！",
}


def cert_login(
    client: FlaskClient,
    *,
    uscc: str = DEMO_USCC,
    org_name: str = ORG_NAME,
    org_id: int | None = None,
    kind: str = "org_admin",
    account_id: int | None = None,
    certificate: bool = True,
) -> Any:
    """Give ``client`` the login session of a certificate login (needs the test's app context)."""
    from idp.auth import session
    from idp.db import utcnow

    now = utcnow().timestamp()
    login = session.LoginSession(
        id=secrets.token_urlsafe(32),
        account_id=account_id,
        kind=kind,
        amr=["hwk", "sc"] if kind == "org_admin" else ["pwd", "sms", "mfa"],
        acr="urn:idp:acr:ukey",
        auth_time=now,
        created_at=now,
        org_id=org_id,
        certificate={
            "uscc": uscc,
            "org_name": org_name,
            "fingerprint": secrets.token_hex(32),
            "subject": f"CN={org_name},serialNumber={uscc}",
            "issuer": "CN=Test Intermediate CA",
        }
        if certificate
        else None,
    )
    session.create(login)
    client.set_cookie("idp_session", login.id)
    return login


def stored_login(session_id: str) -> dict[str, Any]:
    from idp.store import store

    raw = store().get(f"session:{session_id}")
    assert raw is not None, "no login session"
    value: dict[str, Any] = json.loads(raw)
    return value


def add_legacy(
    client_id: str,
    *,
    uscc: str = DEMO_USCC,
    org_type: str = "cost_consulting",
    ref: str = REF,
    totp_secret: str | None = TOTP_SECRET,
    key: str | None = None,
) -> int:
    from idp.identity.models import LegacyAccount, OrgType
    from idp.sealing import seal

    kind, secret = ("key", key) if key is not None else ("totp", totp_secret)
    assert secret is not None
    with current_app.extensions["idp.db"]() as session:
        account = LegacyAccount(
            client_id=client_id,
            uscc=uscc,
            org_type=OrgType(org_type),
            account_ref=ref,
            secret_kind=kind,
            secret_sealed=seal(secret),
        )
        session.add(account)
        session.commit()
        return int(account.id)


def unbind(account_id: int) -> None:
    """Undo a binding: the account is free again, the org and its identity are gone."""
    from idp.identity.models import LegacyAccount, Organisation

    with current_app.extensions["idp.db"]() as session:
        session.execute(
            update(LegacyAccount)
            .where(LegacyAccount.id == account_id)
            .values(bound_identity_id=None, bound_at=None)
        )
        session.execute(delete(Organisation))
        session.commit()


def count(model: type, *where: Any) -> int:
    with current_app.extensions["idp.db"]() as session:
        return int(session.scalar(select(func.count()).select_from(model).where(*where)))


def fetch(model: type, *where: Any) -> Any:
    with current_app.extensions["idp.db"]() as session:
        return session.scalars(select(model).where(*where)).one()


def row_counts() -> dict[str, int]:
    from idp.identity.models import IdentityRegistration, LegacyAccount, Organisation, OrgIdentity

    return {
        m.__name__: count(m)
        for m in (Organisation, OrgIdentity, IdentityRegistration, LegacyAccount)
    }


def audit_events(action: str) -> list[tuple[str, str, dict[str, str]]]:
    """(actor, result, details) of every ``action`` event."""
    from idp.audit.models import AuditEvent

    with current_app.extensions["idp.db"]() as session:
        rows = session.execute(
            select(AuditEvent.actor, AuditEvent.result, AuditEvent.details)
            .where(AuditEvent.action == action)
            .order_by(AuditEvent.id)
        )
        return [(actor, result, details) for actor, result, details in rows]


# --- pages ------------------------------------------------------------------------------------


def form_error(page: str) -> str | None:
    found = re.search(r'<p class="field-error" id="form-error" role="alert">([^<]*)</p>', page)
    return unescape(found.group(1)) if found else None


def radio_labels(page: str) -> list[tuple[str, str]]:
    """(value, label text) of each org type choice."""
    found = re.findall(
        r'<input id="org_type-\d+" name="org_type" type="radio" value="([a-z_]+)"> ([^<]*)</span>',
        page,
    )
    return [(value, unescape(label.strip())) for value, label in found]


def checkbox_values(page: str) -> list[str]:
    return re.findall(r'name="platforms" type="checkbox" value="([^"]+)"', page)


def input_value(page: str, name: str) -> str | None:
    tag = re.search(rf'<input[^>]*name="{name}"[^>]*>', page)
    if tag is None:
        return None
    value = re.search(r'value="([^"]*)"', tag.group(0))
    return unescape(value.group(1)) if value else ""


def post_form(client: FlaskClient, url: str, data: dict[str, Any]) -> Any:
    """GET the page for its CSRF token, then POST ``data`` to it."""
    page = client.get(url)
    assert page.status_code == 200, page.text
    return client.post(url, data={"csrf_token": csrf_token(page.text), **data})


def register_details(**overrides: Any) -> dict[str, Any]:
    values = {
        "name": ORG_NAME,
        "contact_person": "王悦芳",
        "contact_phone": "13800138000",
        "address": "上海市黄浦区示例路 1 号",
    }
    values.update(overrides)
    return values


# --- TOTP -------------------------------------------------------------------------------------


def code_at(offset_steps: int = 0, secret: str = TOTP_SECRET) -> str:
    """The code of the step ``offset_steps`` away from now, not too close to a step change
    (the server reads the clock a moment later)."""
    if 30 - time.time() % 30 < 1.5:
        time.sleep(1.6)
    return pyotp.TOTP(secret).at(time.time() + 30 * offset_steps)


def wrong_code(secret: str = TOTP_SECRET) -> str:
    """A six-digit code that no step in the accepted window (±1) has."""
    valid = {code_at(step, secret) for step in (-1, 0, 1)}
    return next(c for c in ("000000", "111111", "222222", "333333") if c not in valid)
