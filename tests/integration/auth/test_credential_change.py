"""A credential change ends what the old credential opened: a new password (set by the person)
or a new phone (set by the org admin, 【修改】) ends every other login session, code and token of
the account; the session that changed the password stays, and the phone is told by SMS.

Races are forced with a pause point: a login, a code redemption, a refresh or a request of the
other session is held at a chosen step while the password changes, then let go."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from idp.auth import service
from idp.auth import session as login_session
from idp.auth.passwords import verify_password
from idp.identity.models import Account
from idp.oidc import grants
from idp.sms import SmsError
from tests.conftest import both_databases
from tests.flows import NEW_PASSWORD, PASSWORD, Pkce, change_password, login
from tests.integration.auth.helpers import (
    WRONG_CREDENTIALS,
    all_field_errors,
    allow_resend,
    audit_events,
    fresh,
    session_cookie,
)
from tests.integration.oidc.helpers import (
    PausePoint,
    live_tokens,
    mint_code,
    redeem,
    refresh,
    userinfo_status,
)

PHONE = "13800138000"
MASKED = "138****8000"
NOTICE = "【统一认证登录平台】您的账号密码已修改，其他设备上的登录已全部退出。如非本人操作，请立即联系企业管理员。"


@pytest.fixture
def this_browser(client, outbox, operator):
    """The browser that will change the password, logged in."""
    assert login(client, outbox, phone=PHONE, password=PASSWORD).status_code == 302
    return client


@pytest.fixture
def other_browser(app, outbox, operator, this_browser):
    """Another browser of the same person (or of whoever knows the password), logged in."""
    browser = app.test_client()
    allow_resend(PHONE)
    assert login(browser, outbox, phone=PHONE, password=PASSWORD).status_code == 302
    return browser


def tokens_through(browser, rp) -> dict:
    pkce = Pkce.new()
    response = redeem(browser, rp, mint_code(browser, rp, pkce), pkce.verifier)
    assert response.status_code == 200, response.text
    return response.json


def assert_logged_out(browser) -> None:
    portal = browser.get("/portal")
    assert (portal.status_code, portal.headers.get("Location")) == (302, "/login")


def assert_dead(browser, rp, tokens: dict) -> None:
    assert userinfo_status(browser, tokens["access_token"]) == 401
    assert refresh(browser, rp, tokens["refresh_token"]).json["error"] == "invalid_grant"


def stored_session(session_id: str) -> bytes | None:
    from idp.store import store

    return store().get(f"session:{session_id}")


def change(browser):
    response = change_password(browser, current=PASSWORD, new=NEW_PASSWORD)
    assert (response.status_code, response.headers.get("Location")) == (302, "/portal")
    return response


# --- the password change ----------------------------------------------------------------------


@both_databases
def test_a_password_change_ends_other_sessions_and_every_token_and_keeps_this_session(
    this_browser, other_browser, rp, outbox, operator
):
    theirs = tokens_through(other_browser, rp)
    mine = tokens_through(this_browser, rp)
    their_session = session_cookie(other_browser)

    change(this_browser)

    assert_logged_out(other_browser)
    assert stored_session(their_session) is None
    assert_dead(other_browser, rp, theirs)
    assert_dead(this_browser, rp, mine)
    assert live_tokens() == 0
    assert this_browser.get("/portal").status_code == 200
    assert userinfo_status(this_browser, tokens_through(this_browser, rp)["access_token"]) == 200
    notice = outbox.last(PHONE)
    assert (notice["purpose"], notice["text"], notice["code"]) == ("password_changed", NOTICE, "")
    assert audit_events("auth.password_changed") == [(MASKED, "success")]
    assert audit_events("auth.password_change_notice_sent") == [("system", "success")]


def test_the_forced_first_change_ends_the_other_sessions_too(app, client, outbox, new_operator):
    phone = new_operator.phone
    other = app.test_client()
    assert login(other, outbox, phone=phone, password=PASSWORD).status_code == 302
    allow_resend(phone)
    assert login(client, outbox, phone=phone, password=PASSWORD).status_code == 302

    response = change_password(client, current=PASSWORD, new=NEW_PASSWORD)

    assert response.status_code == 302
    assert client.get("/portal").status_code == 200
    other_portal = other.get("/portal")
    assert (other_portal.status_code, other_portal.headers.get("Location")) == (302, "/login")
    assert outbox.last(phone)["purpose"] == "password_changed"


@pytest.mark.parametrize(
    ("current", "new", "field"),
    [("Wrong-Pass-1", NEW_PASSWORD, "current_password"), (PASSWORD, "short", "new_password")],
    ids=["wrong-current", "policy"],
)
def test_a_refused_change_ends_nothing_and_sends_nothing(
    this_browser, other_browser, rp, outbox, current, new, field
):
    theirs = tokens_through(other_browser, rp)
    sent = len(outbox.messages())

    response = change_password(this_browser, current=current, new=new)

    assert response.status_code == 400
    assert list(all_field_errors(response.text)) == [field]
    assert other_browser.get("/portal").status_code == 200
    assert userinfo_status(other_browser, theirs["access_token"]) == 200
    assert live_tokens() == 1
    assert len(outbox.messages()) == sent


def test_the_change_stands_when_the_notice_cannot_be_sent(
    app, this_browser, other_browser, outbox, operator, monkeypatch
):
    def failing_send(_message) -> None:
        raise SmsError(detail="gateway down")

    monkeypatch.setattr(app.extensions["idp.sms"], "send", failing_send)

    change(this_browser)

    assert verify_password(fresh(Account, operator.id).password_hash, NEW_PASSWORD)
    assert_logged_out(other_browser)
    assert this_browser.get("/portal").status_code == 200
    assert audit_events("auth.password_change_notice_sent") == [("system", "sms_unavailable")]


# --- races with the change --------------------------------------------------------------------


@both_databases
def test_a_login_with_the_old_password_in_flight_gets_no_lasting_session(
    app, this_browser, outbox, operator, monkeypatch
):
    """The login checked the old password before the change and opens its session after."""
    late = app.test_client()
    allow_resend(PHONE)
    pause = PausePoint()
    monkeypatch.setattr(login_session, "start", pause.wrap(login_session.start))

    logged_in, _ = pause.race(
        lambda: login(late, outbox, phone=PHONE, password=PASSWORD),
        lambda: change(this_browser),
    )

    assert logged_in.status_code == 302
    assert_logged_out(late)
    assert this_browser.get("/portal").status_code == 200


@both_databases
def test_a_login_in_flight_cannot_put_the_old_password_back_when_rehashing(
    app, this_browser, outbox, operator, monkeypatch
):
    """A login that rehashes the old password (new hash parameters) after the change committed
    leaves the new password in place."""
    late = app.test_client()
    allow_resend(PHONE)
    pause = PausePoint()  # held where the login has verified the old password and will rehash it
    monkeypatch.setattr(service, "needs_rehash", pause.wrap(lambda _hash: True))

    pause.race(
        lambda: login(late, outbox, phone=PHONE, password=PASSWORD),
        lambda: change(this_browser),
    )

    stored = fresh(Account, operator.id).password_hash
    assert verify_password(stored, NEW_PASSWORD)
    assert not verify_password(stored, PASSWORD)
    allow_resend(PHONE)
    old = login(app.test_client(), outbox, phone=PHONE, password=PASSWORD)
    assert all_field_errors(old.text) == {"password": [WRONG_CREDENTIALS]}


def test_a_login_rehashes_an_outdated_hash(app, client, outbox, operator, monkeypatch):
    before = fresh(Account, operator.id).password_hash
    monkeypatch.setattr(service, "needs_rehash", lambda _hash: True)

    assert login(client, outbox, phone=PHONE, password=PASSWORD).status_code == 302

    after = fresh(Account, operator.id).password_hash
    assert after != before
    assert verify_password(after, PASSWORD)


@both_databases
def test_a_request_of_the_other_session_in_flight_cannot_keep_it_alive(
    this_browser, other_browser, monkeypatch
):
    """The other session's request read its session before the change and writes it back
    (touching its idle lifetime) after: the session is still over."""
    pause = PausePoint()
    monkeypatch.setattr(login_session, "TOUCH_INTERVAL_MAX", 0)  # every request writes it back
    monkeypatch.setattr(login_session, "save", pause.wrap(login_session.save))

    portal, _ = pause.race(lambda: other_browser.get("/portal"), lambda: change(this_browser))

    assert portal.status_code == 200  # it was in flight before the change
    assert_logged_out(other_browser)
    assert this_browser.get("/portal").status_code == 200


@both_databases
def test_a_code_of_the_other_session_is_useless_after_the_change(this_browser, other_browser, rp):
    pkce = Pkce.new()
    code = mint_code(other_browser, rp, pkce)

    change(this_browser)

    refused = redeem(other_browser, rp, code, pkce.verifier)
    assert refused.json["error"] == "invalid_grant"
    assert live_tokens() == 0


@both_databases
def test_a_code_redeemed_while_the_password_changes_issues_no_live_token(
    app, this_browser, other_browser, rp, monkeypatch
):
    pkce = Pkce.new()
    code = mint_code(other_browser, rp, pkce)
    pause = PausePoint()
    grant = grants.AuthorizationCodeGrant
    monkeypatch.setattr(grant, "authenticate_user", pause.wrap(grant.authenticate_user))

    redeemed, _ = pause.race(
        lambda: redeem(app.test_client(), rp, code, pkce.verifier),
        lambda: change(this_browser),
    )

    assert redeemed.json["error"] == "invalid_grant"
    assert live_tokens() == 0


@both_databases
def test_a_refresh_while_the_password_changes_issues_no_live_token(
    app, this_browser, other_browser, rp, monkeypatch
):
    theirs = tokens_through(other_browser, rp)
    pause = PausePoint()
    grant = grants.RefreshTokenGrant
    monkeypatch.setattr(grant, "authenticate_user", pause.wrap(grant.authenticate_user))

    refreshed, _ = pause.race(
        lambda: refresh(app.test_client(), rp, theirs["refresh_token"]),
        lambda: change(this_browser),
    )

    assert refreshed.json["error"] == "invalid_grant"
    assert live_tokens() == 0


def test_tokens_revoked_by_the_change_are_counted_in_the_audit_trail(
    app, this_browser, other_browser, rp
):
    tokens_through(other_browser, rp)
    tokens_through(other_browser, rp)

    change(this_browser)

    from idp.audit.models import AuditEvent

    with app.extensions["idp.db"]() as session:
        details = session.scalar(
            select(AuditEvent.details).where(AuditEvent.action == "auth.password_changed")
        )
        versions = session.scalar(select(func.max(Account.credential_version)))
    assert details == {"tokens_revoked": "2"}
    assert versions == 1
