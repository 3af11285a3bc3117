"""/account (我的账户): the profile, the operator's password change, the login sessions with
退出, and the recent sign-ins, for operators and organisation admins; each action only on the
person's own things, each refused without its CSRF token. (Remembered consents and 撤销授权:
tests/integration/oidc/test_remembered_consent.py.)"""

from __future__ import annotations

import re
from urllib.parse import urlencode

import pytest
from sqlalchemy import select

from idp import db
from idp.auth import session as login_session
from idp.auth.passwords import verify_password
from idp.identity.models import Account
from tests.conftest import DEMO_USCC, make_operator, register_for
from tests.flows import (
    NEW_PASSWORD,
    PASSWORD,
    REDIRECT_URI,
    Pkce,
    authorize_params,
    csrf_token,
    follow_to_code,
    login,
    query_of,
)
from tests.integration.auth.helpers import allow_resend
from tests.integration.oidc.helpers import audit_count, redeem, refresh
from tests.integration.orgs.helpers import cert_login

CHROME_ON_WINDOWS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)


@pytest.fixture
def me(client, outbox, operator):
    """``client`` is the operator's browser, logged in."""
    assert login(client, outbox, phone=operator.phone, password=PASSWORD).status_code == 302
    return operator


@pytest.fixture
def second_browser(app, outbox, operator, me):
    """Another browser (Chrome on Windows) where the same operator is logged in too."""
    browser = app.test_client()
    browser.environ_base["HTTP_USER_AGENT"] = CHROME_ON_WINDOWS
    allow_resend(operator.phone)
    assert login(browser, outbox, phone=operator.phone, password=PASSWORD).status_code == 302
    return browser


def sids_on_page(html: str) -> list[str]:
    return re.findall(r'id="session-([A-Za-z0-9_-]+)"', html)


def sessions_of(account) -> list[login_session.LoginSession]:
    return login_session.sessions_of(f"sessions:account:{account.id}")


def post(client, path: str, data: dict[str, str]):
    page = client.get("/account")
    assert page.status_code == 200, page.text
    return client.post(path, data={**data, "csrf_token": csrf_token(page.text)})


def tokens_for(client, rp) -> dict:
    pkce = Pkce.new()
    result = follow_to_code(client, authorize_params(rp.client_id, pkce))
    response = redeem(client, rp, result["code"], pkce.verifier)
    assert response.status_code == 200, response.text
    return response.json


# --- access and profile -----------------------------------------------------------------------


def test_account_page_needs_a_login(client):
    response = client.get("/account")

    assert response.status_code == 302
    assert response.headers["Location"] == "/login"


def test_a_first_login_changes_the_password_before_the_account_page(client, outbox, new_operator):
    login(client, outbox, phone=new_operator.phone, password=PASSWORD)

    response = client.get("/account")

    assert response.status_code == 302
    assert response.headers["Location"].startswith("/password/change")


def test_profile_shows_name_masked_phone_organisation_and_role(client, me, org):
    page = client.get("/account")

    assert page.status_code == 200
    assert "我的账户" in page.text
    assert '<dd id="profile-name">张三</dd>' in page.text
    assert "138****8000" in page.text
    assert "13800138000" not in page.text
    assert org.name in page.text and "审计单位" in page.text and "操作员" in page.text


def test_profile_lists_every_organisation_of_the_operator(client, me, org):
    from tests.conftest import add_other_org, enrol

    other = add_other_org("some-client")
    enrol(db.session(), other, name="张三", phone=me.phone)
    db.session().commit()

    page = client.get("/account")

    assert org.name in page.text and other.name in page.text
    assert "代理记账公司" in page.text


def test_portal_and_console_link_to_the_account_page(client, me, app, org, rp):
    assert 'href="/account"' in client.get("/portal").text
    admin = app.test_client()
    register_for(org, rp.client_id)
    cert_login(admin, uscc=DEMO_USCC, org_id=org.id)
    assert 'href="/account"' in admin.get("/org/operators").text


def test_english_page(client, me):
    page = client.get("/account?lang=en")

    assert "My account" in page.text
    assert "Sign out" in page.text  # 退出 on the session row


# --- sessions ---------------------------------------------------------------------------------


def test_sessions_lists_every_login_with_this_one_marked(client, me, second_browser):
    page = client.get("/account")

    assert len(sids_on_page(page.text)) == 2
    mine = client.get("/account").text
    current_rows = re.findall(r'<tr id="session-[^"]+" class="current"', mine)
    assert len(current_rows) == 1
    assert "当前会话" in mine
    assert "Chrome · Windows" in mine
    assert "127.0.0.1" in mine
    # The other browser sees the same two sessions, its own marked.
    assert sorted(sids_on_page(second_browser.get("/account").text)) == sorted(
        sids_on_page(page.text)
    )


def test_ending_another_session_logs_that_browser_out_and_ends_its_tokens(
    client, me, second_browser, rp
):
    theirs = tokens_for(second_browser, rp)
    mine = tokens_for(client, rp)
    (other,) = [s for s in sessions_of(me) if "Chrome" in s.user_agent]

    response = post(client, "/account/sessions/end", {"sid": other.sid})

    assert response.status_code == 302
    assert response.headers["Location"] == "/account"
    assert client.get("/account").status_code == 200  # this browser stays logged in
    gone = second_browser.get("/account")
    assert gone.status_code == 302 and gone.headers["Location"] == "/login"
    assert refresh(second_browser, rp, theirs["refresh_token"]).json["error"] == "invalid_grant"
    assert refresh(client, rp, mine["refresh_token"]).status_code == 200
    assert len(sessions_of(me)) == 1
    assert audit_count("auth.session_ended") == 1
    assert audit_count("oidc.tokens_ended_at_logout") == 1


def test_the_flash_says_the_session_ended(client, me, second_browser):
    (other,) = [s for s in sessions_of(me) if "Chrome" in s.user_agent]

    response = post(client, "/account/sessions/end", {"sid": other.sid})

    assert "已退出该登录会话。" in client.get(response.headers["Location"]).text


def test_ending_this_session_logs_this_browser_out(client, me):
    (mine,) = sessions_of(me)

    response = post(client, "/account/sessions/end", {"sid": mine.sid})

    assert response.status_code == 302
    assert response.headers["Location"] == "/login"
    assert client.get("/account").headers["Location"] == "/login"
    assert sessions_of(me) == []


def test_another_persons_session_is_refused_and_stays(app, client, me, org, outbox):
    stranger = make_operator(org, name="王五", phone="13700137000", first_login=False)
    browser = app.test_client()
    assert login(browser, outbox, phone=stranger.phone, password=PASSWORD).status_code == 302
    (theirs,) = sessions_of(stranger)

    refused = post(client, "/account/sessions/end", {"sid": theirs.sid})

    assert refused.status_code == 404
    assert "没有找到该登录会话" in refused.text
    assert browser.get("/account").status_code == 200
    assert [s.sid for s in sessions_of(stranger)] == [theirs.sid]
    assert audit_count("auth.session_ended") == 1  # the refusal, with its reason


def test_unknown_or_missing_session_id_is_refused(client, me):
    assert post(client, "/account/sessions/end", {"sid": "no-such-session"}).status_code == 404
    assert post(client, "/account/sessions/end", {}).status_code == 404
    assert len(sessions_of(me)) == 1


def test_ending_a_session_needs_the_csrf_token(client, me, second_browser):
    (other,) = [s for s in sessions_of(me) if "Chrome" in s.user_agent]

    refused = client.post("/account/sessions/end", data={"sid": other.sid})

    assert refused.status_code == 400
    assert second_browser.get("/account").status_code == 200


# --- password ---------------------------------------------------------------------------------


def change(client, current: str, new: str, confirm: str | None = None):
    return post(
        client,
        "/account/password",
        {"current_password": current, "new_password": new, "confirm_password": confirm or new},
    )


def stored_hash(account) -> str:
    with db.engine().connect() as conn:
        return str(conn.scalar(select(Account.password_hash).where(Account.id == account.id)))


def test_wrong_current_password_is_an_error_and_changes_nothing(client, me, second_browser):
    before = stored_hash(me)

    response = change(client, "Not-The-Password-9", NEW_PASSWORD)

    assert response.status_code == 400
    assert "原密码错误" in response.text
    assert stored_hash(me) == before
    assert second_browser.get("/account").status_code == 200
    assert len(sessions_of(me)) == 2


def test_a_password_against_the_policy_is_refused(client, me):
    before = stored_hash(me)

    response = change(client, PASSWORD, "short")

    assert response.status_code == 400
    assert stored_hash(me) == before


def test_confirmation_must_match(client, me):
    response = change(client, PASSWORD, NEW_PASSWORD, confirm=NEW_PASSWORD + "x")

    assert response.status_code == 400
    assert "两次输入的密码不一致" in response.text
    assert verify_password(stored_hash(me), PASSWORD)


def test_password_change_ends_the_other_sessions_and_their_tokens(
    client, me, second_browser, rp, outbox
):
    theirs = tokens_for(second_browser, rp)

    response = change(client, PASSWORD, NEW_PASSWORD)

    assert response.status_code == 302
    assert response.headers["Location"] == "/account"
    assert "密码已修改" in client.get("/account").text
    assert verify_password(stored_hash(me), NEW_PASSWORD)
    assert second_browser.get("/account").headers["Location"] == "/login"
    assert refresh(second_browser, rp, theirs["refresh_token"]).json["error"] == "invalid_grant"
    (left,) = sessions_of(me)
    assert 'class="current"' in client.get("/account").text
    assert left.sid in client.get("/account").text
    assert audit_count("auth.password_changed") == 1
    # The session that made the change still gets codes without a new login.
    pkce = Pkce.new()
    location = client.get("/authorize?" + urlencode(authorize_params(rp.client_id, pkce))).headers[
        "Location"
    ]
    assert location.startswith(REDIRECT_URI) and "code" in query_of(location)


def test_password_change_needs_the_csrf_token(client, me):
    response = client.post(
        "/account/password",
        data={
            "current_password": PASSWORD,
            "new_password": NEW_PASSWORD,
            "confirm_password": NEW_PASSWORD,
        },
    )

    assert response.status_code == 400
    assert verify_password(stored_hash(me), PASSWORD)


# --- recent sign-ins --------------------------------------------------------------------------


def test_recent_sign_ins_show_successes_and_failures(app, client, me, outbox):
    browser = app.test_client()
    allow_resend(me.phone)
    assert login(browser, outbox, phone=me.phone, password="Wrong-Pass-1").status_code == 400

    page = client.get("/account").text

    section = page[page.index('id="sign-ins"') :]
    assert section.count("密码＋短信验证码") == 2
    assert "成功" in section
    assert "手机号或密码错误" in section
    assert '<tr class="failed">' in section


# --- organisation admins ----------------------------------------------------------------------


@pytest.fixture
def admin(client, org, rp):
    register_for(org, rp.client_id)
    cert_login(client, uscc=DEMO_USCC, org_id=org.id)
    return client


def test_org_admin_sees_the_organisation_and_no_password_form(admin, org):
    page = admin.get("/account")

    assert page.status_code == 200
    assert org.name in page.text and "企业管理员" in page.text
    assert 'id="password"' not in page.text
    assert len(sids_on_page(page.text)) == 1


def test_org_admin_has_no_password_to_change(admin):
    response = post(
        admin,
        "/account/password",
        {"current_password": "x", "new_password": NEW_PASSWORD, "confirm_password": NEW_PASSWORD},
    )

    assert response.status_code == 403
    assert "没有密码可修改" in response.text


def test_org_admin_sessions_are_the_organisations(app, admin, org, operator, outbox):
    other_admin = app.test_client()
    cert_login(other_admin, uscc=DEMO_USCC, org_id=org.id)
    operator_browser = app.test_client()
    login(operator_browser, outbox, phone=operator.phone, password=PASSWORD)

    sids = sids_on_page(admin.get("/account").text)

    assert len(sids) == 2
    # The operator of the same organisation is another person: their session is not listed.
    (operators,) = sessions_of(operator)
    assert operators.sid not in sids
