"""忘记密码 (/password/forgot): phone and SMS code, the name on record confirmed by the carrier
(手机二要素), a new password under the policy; every login session and token of the person
ends and an SMS tells them. Strangers learn nothing: an unknown phone answers exactly as a
known one, and a refused reset changes nothing."""

from __future__ import annotations

import html
import re

import pytest

from idp.auth.passwords import verify_password
from idp.identity.models import Account, MembershipStatus
from tests.flows import NEW_PASSWORD, PASSWORD, csrf_token, login
from tests.integration.auth.helpers import (
    SENT_ANSWER,
    WRONG_CODE,
    all_field_errors,
    allow_resend,
    audit_events,
    fresh,
    parse,
    session_cookie,
    stored_code,
)
from tests.integration.oidc.helpers import live_tokens

PHONE = "13800138000"
MASKED = "138****8000"
UNKNOWN = "13700137000"
NAME = "张三"
MISMATCH = "姓名与该手机号的登记信息不符，请重新获取验证码后再试"
CHANGED_NOTICE = "password_changed"


@pytest.fixture
def on_record(known, operator):
    """The carrier confirms that the operator's name holds the phone."""
    known(NAME, PHONE)
    return operator


def reset_token(client) -> str:
    page = client.get("/password/forgot")
    assert page.status_code == 200
    return csrf_token(page.text)


def ask_reset_code(client, phone: str, token: str | None = None):
    return client.post(
        "/password/forgot/sms-code",
        data={"phone": phone, "csrf_token": token or reset_token(client)},
    )


def reset_code(client, outbox, phone: str = PHONE) -> str:
    assert ask_reset_code(client, phone).status_code == 200
    return outbox.last(phone, "password_reset")["code"]


def post_reset(client, *, phone=PHONE, code="000000", name=NAME, new=NEW_PASSWORD, confirm=None):
    return client.post(
        "/password/forgot",
        data={
            "phone": phone,
            "sms_code": code,
            "name": name,
            "new_password": new,
            "confirm_password": new if confirm is None else confirm,
            "csrf_token": reset_token(client),
        },
    )


def form_error(page: str) -> str:
    """The boxed message above the form (about the request, not one field)."""
    found = re.search(r'<p class="field-error" id="form-error" role="alert">([^<]*)</p>', page)
    return html.unescape(found.group(1)) if found else ""


def password_is(account_id: int, password: str) -> bool:
    return verify_password(fresh(Account, account_id).password_hash, password)


# --- success ----------------------------------------------------------------------------------


def test_a_reset_sets_the_password_ends_every_session_and_token_and_tells_the_phone(
    app, client, outbox, on_record, rp
):
    from tests.integration.auth.test_credential_change import assert_dead, tokens_through

    other = app.test_client()
    assert login(other, outbox, phone=PHONE, password=PASSWORD).status_code == 302
    theirs = tokens_through(other, rp)
    version = fresh(Account, on_record.id).credential_version
    allow_resend(PHONE)  # the login's code and the reset's share the phone's resend interval

    response = post_reset(client, code=reset_code(client, outbox))

    assert response.status_code == 302
    assert response.headers["Location"] == f"/login?phone={PHONE}"
    assert "密码已重置，请使用新密码登录" in client.get(response.headers["Location"]).text
    assert password_is(on_record.id, NEW_PASSWORD)
    assert fresh(Account, on_record.id).credential_version == version + 1
    assert other.get("/portal").headers["Location"] == "/login"
    assert_dead(other, rp, theirs)
    assert live_tokens() == 0
    notice = outbox.last(PHONE)
    assert (notice["purpose"], notice["code"]) == (CHANGED_NOTICE, "")
    assert audit_events("auth.password_reset") == [(MASKED, "success")]
    assert session_cookie(client) is None  # the reset logs nobody in
    allow_resend(PHONE)
    assert login(client, outbox, phone=PHONE, password=NEW_PASSWORD).status_code == 302


def test_a_reset_lifts_the_lock(client, outbox, on_record):
    from tests.integration.auth.helpers import ask_code, post_login

    assert ask_code(client, PHONE).status_code == 200
    code = outbox.last(PHONE, "login")["code"]
    for attempt in range(6):
        post_login(client, phone=PHONE, password=f"Wrong-Pass-{attempt}", sms_code=code)
    allow_resend(PHONE)

    assert post_reset(client, code=reset_code(client, outbox)).status_code == 302

    allow_resend(PHONE)
    assert login(client, outbox, phone=PHONE, password=NEW_PASSWORD).status_code == 302


def test_the_reset_page_keeps_the_pending_authorization(client):
    page = client.get("/password/forgot?interaction=abc123")

    assert parse(page.text).inputs["interaction"]["value"] == "abc123"
    login_page = client.get("/login?interaction=abc123")
    assert 'href="/password/forgot?interaction=abc123"' in login_page.text


# --- strangers learn nothing ------------------------------------------------------------------


def test_an_unknown_phone_gets_the_identical_answer_and_no_sms(client, outbox, on_record):
    token = reset_token(client)
    known = ask_reset_code(client, PHONE, token)
    unknown = ask_reset_code(client, UNKNOWN, token)

    assert known.status_code == unknown.status_code == 200
    assert known.get_data() == unknown.get_data()
    assert known.json == SENT_ANSWER
    assert [m["phone"] for m in outbox.messages()] == [PHONE]
    assert stored_code(UNKNOWN, "password_reset") is None
    assert audit_events("auth.password_reset_code_requested") == [
        (MASKED, "success"),
        ("137****7000", "success"),
    ]


def test_an_unknown_phone_is_refused_like_a_wrong_code(client, outbox, on_record):
    code = reset_code(client, outbox)
    wrong_code = f"{(int(code) + 1) % 10**6:06d}"

    known = post_reset(client, code=wrong_code)
    unknown = post_reset(client, phone=UNKNOWN, code=code)

    assert known.status_code == unknown.status_code == 400
    assert all_field_errors(known.text) == all_field_errors(unknown.text)
    assert all_field_errors(unknown.text) == {"sms_code": [WRONG_CODE]}
    assert password_is(on_record.id, PASSWORD)


# --- refused: nothing changes -----------------------------------------------------------------


def assert_unchanged(account: Account, outbox) -> None:
    assert password_is(account.id, PASSWORD)
    assert fresh(Account, account.id).credential_version == account.credential_version
    assert all(m["purpose"] != CHANGED_NOTICE for m in outbox.messages())
    assert audit_events("auth.password_reset") == []


@pytest.mark.parametrize("name", ["李四", "张 三三"])
def test_a_wrong_name_is_refused_and_uses_the_code_up(client, outbox, on_record, name):
    code = reset_code(client, outbox)

    response = post_reset(client, code=code, name=name)
    again = post_reset(client, code=code)

    assert response.status_code == 400
    assert all_field_errors(response.text) == {"name": [MISMATCH]}
    assert all_field_errors(again.text) == {"sms_code": [WRONG_CODE]}  # each guess costs an SMS
    assert_unchanged(on_record, outbox)
    assert [r for _a, r in audit_events("auth.password_reset_failed")] == [
        "reset_name_mismatch",
        "sms_code_invalid",
    ]


def test_a_name_the_carrier_does_not_confirm_is_refused(client, outbox, operator):
    """The name on record, but the phone now belongs to someone else (no 二要素 match)."""
    response = post_reset(client, code=reset_code(client, outbox))

    assert all_field_errors(response.text) == {"name": [MISMATCH]}
    assert_unchanged(operator, outbox)


def test_the_real_name_service_down_keeps_the_code(client, outbox, on_record, realname_outage):
    code = reset_code(client, outbox)
    realname_outage(PHONE)

    response = post_reset(client, code=code)

    assert response.status_code == 503
    assert form_error(response.text) == "校验服务暂不可用，请稍后再试"
    assert all_field_errors(response.text) == {}
    assert stored_code(PHONE, "password_reset") is not None
    assert_unchanged(on_record, outbox)


@pytest.mark.parametrize(
    ("new", "confirm", "field"),
    [
        ("short", None, "new_password"),
        (f"Aa!{PHONE}", None, "new_password"),
        (PASSWORD, None, "new_password"),
        (NEW_PASSWORD, "Other-Pass-2", "confirm_password"),
    ],
    ids=["too-short", "contains-phone", "same-as-old", "not-confirmed"],
)
def test_a_password_against_the_policy_is_refused_and_keeps_the_code(
    client, outbox, on_record, new, confirm, field
):
    code = reset_code(client, outbox)

    response = post_reset(client, code=code, new=new, confirm=confirm)

    assert response.status_code == 400
    assert list(all_field_errors(response.text)) == [field]
    assert stored_code(PHONE, "password_reset") is not None
    assert_unchanged(on_record, outbox)


def test_a_login_code_does_not_reset(client, outbox, on_record):
    from tests.integration.auth.helpers import ask_code

    assert ask_code(client, PHONE).status_code == 200
    login_code = outbox.last(PHONE, "login")["code"]
    allow_resend(PHONE)
    reset_code(client, outbox)  # a live reset code too: the login's is still not one

    response = post_reset(client, code=login_code)

    assert all_field_errors(response.text) == {"sms_code": [WRONG_CODE]}
    assert_unchanged(on_record, outbox)


def test_a_reset_without_the_csrf_token_is_refused(client, outbox, on_record):
    code = reset_code(client, outbox)

    response = client.post(
        "/password/forgot",
        data={
            "phone": PHONE,
            "sms_code": code,
            "name": NAME,
            "new_password": NEW_PASSWORD,
            "confirm_password": NEW_PASSWORD,
        },
    )

    assert response.status_code == 400
    assert_unchanged(on_record, outbox)


# --- limits -----------------------------------------------------------------------------------


def test_five_wrong_codes_use_the_code_up(client, outbox, on_record):
    code = reset_code(client, outbox)
    wrong_code = f"{(int(code) + 1) % 10**6:06d}"
    for _attempt in range(5):
        post_reset(client, code=wrong_code)

    response = post_reset(client, code=code)

    assert all_field_errors(response.text) == {"sms_code": ["验证码错误次数过多，请重新获取"]}
    assert_unchanged(on_record, outbox)


def test_a_second_code_within_60_seconds_is_refused(client, outbox, on_record):
    token = reset_token(client)
    assert ask_reset_code(client, PHONE, token).status_code == 200

    again = ask_reset_code(client, PHONE, token)

    assert again.status_code == 429
    assert again.headers["Retry-After"]
    assert len([m for m in outbox.messages() if m["purpose"] == "password_reset"]) == 1


@pytest.mark.parametrize("settings_overrides", [{"login_ip_limit": 2}])
def test_the_network_limit_of_the_login_counts_resets(client, outbox, on_record):
    code = reset_code(client, outbox)
    wrong_code = f"{(int(code) + 1) % 10**6:06d}"
    for _attempt in range(2):
        post_reset(client, phone=UNKNOWN, code=wrong_code)

    response = post_reset(client, code=code)

    assert response.status_code == 429
    assert form_error(response.text) == "登录尝试过于频繁，请稍后再试"
    assert all_field_errors(response.text) == {}
    assert_unchanged(on_record, outbox)


def test_a_disabled_operator_can_reset_and_then_learns_the_state(client, outbox, on_record):
    from idp import db

    for membership in on_record.memberships:
        membership.status = MembershipStatus.DISABLED
    db.session().commit()

    assert post_reset(client, code=reset_code(client, outbox)).status_code == 302

    allow_resend(PHONE)
    response = login(client, outbox, phone=PHONE, password=NEW_PASSWORD)
    assert response.status_code == 403
    assert all_field_errors(response.text) == {"password": ["账户已停用，请联系本单位管理员"]}
