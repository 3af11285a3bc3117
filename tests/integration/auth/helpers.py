"""What a user sees on the auth pages, read from real responses; and the few documented ways
these tests reach into the ephemeral store or the database to stand in for the clock.

Store shortcuts (each names the key the production code uses, so a rename breaks loudly):
- ``allow_resend`` deletes ``sms:interval:<phone>:*`` (the intervals per browser and per
  network): stands in for waiting out the 60 s resend interval;
- ``expire_code`` moves the SQL store row of the live code into the past: stands in for
  waiting out the 5-minute code lifetime (the row is still there, so the store's own expiry
  check is what refuses it).
"""

from __future__ import annotations

import html
import re
import threading
from datetime import timedelta
from html.parser import HTMLParser
from typing import Any

from flask.testing import FlaskClient
from sqlalchemy import update

from tests.flows import csrf_token

LOCKED = "密码错误次数过多，账户已锁定，请于 HH:MM 后再试"  # the time read by ``lock_ends``
WRONG_CREDENTIALS = "手机号或密码错误"
WRONG_CODE = "验证码错误或已过期"
TOO_MANY_CODE_TRIES = "验证码错误次数过多，请重新获取"
DISABLED = "账户已停用，请联系本单位管理员"
DELETED = "账户已删除，请联系本单位管理员"
LOCK_TIME = re.compile(r"(?<=请于 )([0-9]{2}:[0-9]{2})(?= 后再试)")
SENT_ANSWER = {"message": "验证码已发送，5 分钟内有效", "retry_after": 60, "sent": True}


class _Inputs(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.inputs: dict[str, dict[str, str]] = {}
        self.forms: list[dict[str, str]] = []
        self.html_attrs: dict[str, str] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        if tag == "input" and "name" in values:
            self.inputs[values["name"]] = values
        elif tag == "form":
            self.forms.append(values)
        elif tag == "html":
            self.html_attrs = values


def parse(page: str) -> _Inputs:
    parser = _Inputs()
    parser.feed(page)
    return parser


def field_errors(page: str, field: str) -> list[str]:
    """The error texts shown next to ``field`` (``<p class="field-error" id="<field>-error">``)."""
    found = re.findall(rf'<p class="field-error" id="{re.escape(field)}-error">([^<]*)</p>', page)
    return [without_lock_time(html.unescape(text)) for text in found]


def without_lock_time(text: str) -> str:
    """The lock message with its end time as HH:MM, so tests compare it as one text."""
    return LOCK_TIME.sub("HH:MM", text)


def lock_ends(page: str) -> str:
    """The lock's end time the page shows (HH:MM)."""
    found = LOCK_TIME.search(html.unescape(page))
    assert found is not None, "no lock end time on the page"
    return found.group(1)


def all_field_errors(page: str) -> dict[str, list[str]]:
    found = re.findall(r'<p class="field-error" id="([a-z_]+)-error">([^<]*)</p>', page)
    errors: dict[str, list[str]] = {}
    for field, text in found:
        errors.setdefault(field, []).append(without_lock_time(html.unescape(text)))
    return errors


def session_cookie(client: FlaskClient) -> str | None:
    cookie = client.get_cookie("idp_session")
    return cookie.value if cookie is not None else None


def login_token(client: FlaskClient) -> str:
    page = client.get("/login")
    assert page.status_code == 200
    return csrf_token(page.text)


def ask_code(client: FlaskClient, phone: str, token: str | None = None) -> Any:
    return client.post(
        "/login/sms-code", data={"phone": phone, "csrf_token": token or login_token(client)}
    )


def post_login(
    client: FlaskClient, *, phone: str, password: str, sms_code: str, token: str | None = None
) -> Any:
    return client.post(
        "/login",
        data={
            "phone": phone,
            "password": password,
            "sms_code": sms_code,
            "csrf_token": token or login_token(client),
        },
    )


def store_keys(prefix: str) -> list[str]:
    """The live keys of the ephemeral store that start with ``prefix`` (SQL table or Redis)."""
    from sqlalchemy import select

    from idp.db import engine, utcnow
    from idp.store import store
    from idp.store.redis import RedisStore
    from idp.store.sql import TABLE

    current = store()
    if isinstance(current, RedisStore):
        found = current.client.scan_iter(match=current.prefix + prefix + "*")
        return sorted(key.decode()[len(current.prefix) :] for key in found)
    with engine().begin() as conn:
        rows = conn.execute(
            select(TABLE.c.key).where(
                TABLE.c.key.startswith(prefix, autoescape=True), TABLE.c.expires_at > utcnow()
            )
        )
        return sorted(key for (key,) in rows)


def allow_resend(phone: str) -> None:
    """Stand-in for waiting 60 s: drop every resend interval of ``phone`` (per browser and per
    network; needs an app context)."""
    from idp.store import store

    for key in store_keys(f"sms:interval:{phone}:"):
        store().delete(key)


def expire_code(phone: str, purpose: str = "login") -> None:
    """Stand-in for waiting 5 minutes on the SQL store: the code's row expires a second ago."""
    from idp.db import engine, utcnow
    from idp.store.sql import TABLE

    (key,) = store_keys(f"sms:code:{purpose}:{phone}:")
    with engine().begin() as conn:
        moved = conn.execute(
            update(TABLE)
            .where(TABLE.c.key == key)
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
    assert moved.rowcount == 1, "no live code to expire"


def stored_code(phone: str, purpose: str = "login") -> bytes | None:
    """The live code record for ``phone`` (whichever browser asked), or None."""
    from idp.store import store

    keys = store_keys(f"sms:code:{purpose}:{phone}:")
    assert len(keys) <= 1, f"several live codes for {phone}: {keys}"
    return store().get(keys[0]) if keys else None


def audit_events(action: str) -> list[tuple[str, str]]:
    """(actor, result) of every ``action`` event, read in a fresh session (committed rows)."""
    from flask import current_app
    from sqlalchemy import select

    from idp.audit.models import AuditEvent

    with current_app.extensions["idp.db"]() as session:
        rows = session.execute(
            select(AuditEvent.actor, AuditEvent.result)
            .where(AuditEvent.action == action)
            .order_by(AuditEvent.id)
        )
        return [(actor, result) for actor, result in rows]


def audit_targets(action: str) -> list[tuple[str, str]]:
    """(target, result) of every ``action`` event (the SMS events name the masked phone)."""
    from flask import current_app
    from sqlalchemy import select

    from idp.audit.models import AuditEvent

    with current_app.extensions["idp.db"]() as session:
        rows = session.execute(
            select(AuditEvent.target, AuditEvent.result)
            .where(AuditEvent.action == action)
            .order_by(AuditEvent.id)
        )
        return [(target, result) for target, result in rows]


def fresh(model: type, ident: int) -> Any:
    """The committed row, read in a session of its own (not the fixture's cached objects)."""
    from flask import current_app

    with current_app.extensions["idp.db"]() as session:
        return session.get(model, ident)


def core_login_journey(client: FlaskClient, outbox: Any, *, phone: str, password: str) -> None:
    """The operator login of journey 4 with its main refusals, run on each store and database:
    same answer for an unknown phone, resend interval, wrong password, success, single-use
    code, logout."""
    token = login_token(client)
    sent = ask_code(client, phone, token)
    assert (sent.status_code, sent.json) == (200, SENT_ANSWER)
    unknown = ask_code(client, "13700137000", token)
    assert (unknown.status_code, unknown.json) == (200, SENT_ANSWER)
    assert [m["phone"] for m in outbox.messages()] == [phone]
    again = ask_code(client, phone, token)
    assert again.status_code == 429
    assert again.json["error"] == "sms_rate_limited"
    assert 55 <= int(again.headers["Retry-After"]) <= 60
    code = outbox.last(phone, "login")["code"]

    refused = post_login(client, phone=phone, password="Wrong-Pass-1", sms_code=code, token=token)
    assert refused.status_code == 400
    assert all_field_errors(refused.text) == {"password": [WRONG_CREDENTIALS]}
    assert session_cookie(client) is None

    done = post_login(client, phone=phone, password=password, sms_code=code, token=token)
    assert done.status_code == 302
    assert done.headers["Location"] == "/portal"
    assert session_cookie(client) is not None
    assert client.get("/portal").status_code == 200

    token = login_token(client)  # the CSRF token is renewed at login
    replay = post_login(client, phone=phone, password=password, sms_code=code, token=token)
    assert all_field_errors(replay.text) == {"sms_code": [WRONG_CODE]}

    assert client.post("/logout", data={"csrf_token": token}).status_code == 200
    portal = client.get("/portal")
    assert (portal.status_code, portal.headers["Location"]) == (302, "/login")
    masked = phone[:3] + "****" + phone[-4:]
    assert audit_events("auth.login_failed") == [
        (masked, "login_failed"),
        (masked, "sms_code_invalid"),
    ]
    assert audit_events("auth.login_succeeded") == [(masked, "success")]


def count_password_checks(monkeypatch: Any) -> list[str]:
    """Every password the login service compares from now on (thread-safe), in order."""
    from idp.auth import service

    checked: list[str] = []
    lock = threading.Lock()
    real_verify = service.verify_password

    def counting_verify(password_hash: str | None, password: str) -> bool:
        with lock:
            checked.append(password)
        return real_verify(password_hash, password)

    monkeypatch.setattr(service, "verify_password", counting_verify)
    return checked
