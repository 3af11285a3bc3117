"""The login session cookie lasts as long as the browser session; its id is renewed at login,
after registration and after a password change; the CSRF token is renewed at login and
expires after an hour."""

from __future__ import annotations

import time

from itsdangerous.timed import TimestampSigner

from tests.flows import NEW_PASSWORD, PASSWORD, change_password, csrf_token, login
from tests.integration.auth.helpers import session_cookie

PHONE = "13800138000"


def session_set_cookie(response) -> str:
    return next(h for h in response.headers.getlist("Set-Cookie") if h.startswith("idp_session="))


def logout_with(client, token: str):
    return client.post("/logout", data={"csrf_token": token})


def test_session_cookie_is_a_browser_session_cookie(client, outbox, operator):
    response = login(client, outbox, phone=PHONE, password=PASSWORD)
    cookie = session_set_cookie(response)
    assert "Max-Age" not in cookie
    assert "Expires" not in cookie
    assert "HttpOnly" in cookie


def test_csrf_token_of_before_the_login_is_refused_after_it(client, outbox, operator):
    before = csrf_token(client.get("/login").text)
    assert login(client, outbox, phone=PHONE, password=PASSWORD).status_code == 302
    refused = logout_with(client, before)
    assert refused.status_code == 400
    assert "页面已过期" in refused.text
    assert client.get("/portal").status_code == 200  # still logged in
    after = csrf_token(client.get("/logout").text)
    assert after != before
    assert logout_with(client, after).status_code == 200
    assert client.get("/portal").status_code == 302


def test_csrf_token_expires_after_an_hour(client, outbox, operator, monkeypatch):
    assert login(client, outbox, phone=PHONE, password=PASSWORD).status_code == 302
    hour_ago = int(time.time()) - 3601
    with monkeypatch.context() as patch:
        patch.setattr(TimestampSigner, "get_timestamp", lambda self: hour_ago)
        old = csrf_token(client.get("/logout").text)
    refused = logout_with(client, old)
    assert refused.status_code == 400
    assert "页面已过期" in refused.text
    assert client.get("/portal").status_code == 200


def test_password_change_renews_the_session_id(client, app, outbox, new_operator):
    assert login(client, outbox, phone=new_operator.phone, password=PASSWORD).status_code == 302
    before = session_cookie(client)
    changed = change_password(client, current=PASSWORD, new=NEW_PASSWORD)
    assert changed.status_code == 302
    after = session_cookie(client)
    assert after and after != before
    assert client.get("/portal").status_code == 200
    stale = app.test_client()
    stale.set_cookie("idp_session", before)
    assert stale.get("/portal").status_code == 302
