"""Platform admin login: password, then TOTP (enrolled at the first login, with recovery codes
shown once), lockout shared with the operators' counting, a code used twice refused, short
sessions, step-up before destructive actions, and the audit trail of each."""

from __future__ import annotations

from dataclasses import replace

import pytest
from flask.testing import FlaskClient

from idp.admin.models import PlatformAdmin
from tests.flows import csrf_token
from tests.integration.admin.helpers import (
    ADMIN,
    audit_actions,
    count,
    enrol,
    fetch_admin,
    log_in,
    password_step,
    post_form,
    secret_on_page,
    totp,
)


def test_the_first_login_enrols_the_authenticator_and_shows_recovery_codes_once(
    client: FlaskClient, platform_admin
):
    assert password_step(client).headers["Location"] == "/admin/enrol"
    page = client.get("/admin/enrol")
    assert page.status_code == 200
    assert "绑定身份验证器" in page.text and "<svg" in page.text
    assert secret_on_page(client.get("/admin/enrol").text) == secret_on_page(page.text)

    secret, codes, response = enrol(client)

    assert response.status_code == 200 and "恢复码只显示这一次" in response.text
    assert len(set(codes)) == 10
    stored = fetch_admin()
    assert stored.totp_confirmed and stored.totp_secret == secret
    assert len(stored.recovery_codes) == 10 and not set(codes) & set(stored.recovery_codes)
    home = client.get("/admin/")
    assert home.status_code == 200 and ADMIN in home.text
    assert "admin.totp_enrolled" in audit_actions() and "admin.login_succeeded" in audit_actions()


def test_a_wrong_enrolment_code_binds_nothing(client: FlaskClient, platform_admin):
    password_step(client)
    page = client.get("/admin/enrol")
    response = client.post(
        "/admin/enrol", data={"csrf_token": csrf_token(page.text), "code": "000000"}
    )

    assert response.status_code == 400 and "动态验证码错误或已使用" in response.text
    stored = fetch_admin()
    assert not stored.totp_confirmed and stored.recovery_codes == []
    assert client.get("/admin/").headers["Location"] == "/admin/login"


def test_login_with_password_and_totp(client: FlaskClient, enrolled: str):
    client.post("/admin/logout", data={"csrf_token": csrf_token(client.get("/admin/").text)})
    assert client.get("/admin/").headers["Location"] == "/admin/login"

    response = log_in(client, enrolled)

    assert response.status_code == 302 and response.headers["Location"] == "/admin/"
    assert client.get("/admin/").status_code == 200
    assert fetch_admin().last_login_at is not None


def test_the_code_used_at_enrolment_cannot_log_in_again(client: FlaskClient, enrolled: str, app):
    other = app.test_client()
    password_step(other)

    response = post_form(other, "/admin/login/code", code=totp(enrolled, 0))

    assert response.status_code == 400 and "动态验证码错误或已使用" in response.text
    assert other.get("/admin/").headers["Location"] == "/admin/login"


def test_a_code_is_refused_the_second_time(client: FlaskClient, enrolled: str, app):
    first, second = app.test_client(), app.test_client()
    code = totp(enrolled, 1)  # once: a 30 s boundary between two reads would give another code
    password_step(first)
    assert post_form(first, "/admin/login/code", code=code).headers["Location"] == "/admin/"

    password_step(second)
    replayed = post_form(second, "/admin/login/code", code=code)

    assert replayed.status_code == 400
    assert second.get("/admin/").headers["Location"] == "/admin/login"
    assert "admin.totp_failed" in audit_actions()


def test_a_recovery_code_logs_in_once(client: FlaskClient, platform_admin, app):
    _secret, codes, _response = enrol(client)
    browser = app.test_client()
    password_step(browser)
    assert post_form(browser, "/admin/login/code", code=codes[3]).headers["Location"] == "/admin/"
    assert len(fetch_admin().recovery_codes) == 9

    again = app.test_client()
    password_step(again)
    response = post_form(again, "/admin/login/code", code=codes[3])

    assert response.status_code == 400 and len(fetch_admin().recovery_codes) == 9


@pytest.mark.parametrize(
    ("username", "password"),
    [(ADMIN, "Wrong-Password-1"), ("nobody", "Platform-Admin-9"), (ADMIN, "")],
)
def test_a_wrong_password_goes_no_further(
    client: FlaskClient, enrolled: str, app, username, password
):
    browser = app.test_client()
    response = password_step(browser, username, password)

    assert response.status_code == 400
    assert browser.get("/admin/login/code").headers["Location"] == "/admin/login"
    assert browser.get("/admin/enrol").headers["Location"] == "/admin/login"


def test_wrong_passwords_lock_the_account(client: FlaskClient, enrolled: str, app):
    browser = app.test_client()
    for _ in range(5):
        assert password_step(browser, password="Wrong-Password-1").status_code == 400

    locked = password_step(browser)

    assert locked.status_code == 429 and "账户已锁定" in locked.text
    assert browser.get("/admin/login/code").headers["Location"] == "/admin/login"
    assert audit_actions().count("admin.login_failed") == 6


def test_wrong_codes_count_towards_the_lockout(client: FlaskClient, enrolled: str, app):
    browser = app.test_client()
    password_step(browser)
    for _ in range(4):
        assert post_form(browser, "/admin/login/code", code="123456").status_code == 400
    post_form(browser, "/admin/login/code", code="654321")

    response = post_form(browser, "/admin/login/code", code=totp(enrolled, 1))

    assert response.status_code == 429
    assert browser.get("/admin/").headers["Location"] == "/admin/login"


def test_the_session_ends_after_the_admin_idle_lifetime(client: FlaskClient, enrolled: str, app):
    from idp.admin import session as admin_session
    from idp.store import store

    session_id = client.get_cookie("idp_admin", path="/admin").value
    store().delete(f"admin_session:{session_id}")  # what the idle TTL does in the store

    assert client.get("/admin/").headers["Location"] == "/admin/login"
    assert admin_session.COOKIE == "idp_admin"


def test_admin_session_lifetimes_are_their_own_settings(settings):
    assert settings.admin_session_idle_ttl < settings.session_idle_ttl
    assert settings.admin_session_absolute_ttl < settings.session_absolute_ttl


def test_new_recovery_codes_need_a_fresh_totp_code(
    client: FlaskClient, enrolled: str, monkeypatch, settings, app
):
    # the login's code has expired for step-up
    monkeypatch.setitem(app.extensions, "idp", replace(settings, admin_step_up_seconds=0))
    old = list(fetch_admin().recovery_codes)

    asked = client.get("/admin/recovery-codes")
    assert asked.headers["Location"].startswith("/admin/step-up?next=/admin/recovery-codes")
    wrong = post_form(client, asked.headers["Location"], code="000000")
    assert wrong.status_code == 400 and fetch_admin().recovery_codes == old

    monkeypatch.setitem(app.extensions, "idp", settings)
    confirmed = post_form(client, asked.headers["Location"], code=totp(enrolled, 1))
    assert confirmed.headers["Location"] == "/admin/recovery-codes"
    issued = post_form(client, "/admin/recovery-codes")

    assert issued.status_code == 200 and "恢复码只显示这一次" in issued.text
    assert fetch_admin().recovery_codes != old and len(fetch_admin().recovery_codes) == 10


def test_step_up_only_returns_to_admin_pages(client: FlaskClient, enrolled: str):
    response = post_form(client, "/admin/step-up?next=//evil.example/", code=totp(enrolled, 1))

    assert response.headers["Location"] == "/admin/"


def test_a_removed_admin_session_ends(client: FlaskClient, enrolled: str):
    from idp import db
    from idp.admin.accounts import remove_admin

    remove_admin(db.session(), username=ADMIN, actor="test")
    db.session().commit()

    assert client.get("/admin/").headers["Location"] == "/admin/login"
    assert count(PlatformAdmin) == 0
