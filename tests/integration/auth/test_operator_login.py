"""POST /login (journey 4): phone + password + SMS code, what the user sees on each failure,
single-use codes, code tries, lockout (also under parallel guesses) and unusable memberships."""

from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest

from idp import db
from idp.auth.client import BROWSER_COOKIE
from idp.identity.models import Account, MembershipStatus
from tests.flows import PASSWORD, login
from tests.integration.auth.helpers import (
    DELETED,
    DISABLED,
    LOCKED,
    TOO_MANY_CODE_TRIES,
    WRONG_CODE,
    WRONG_CREDENTIALS,
    all_field_errors,
    allow_resend,
    ask_code,
    audit_events,
    count_password_checks,
    expire_code,
    field_errors,
    fresh,
    lock_ends,
    login_token,
    parse,
    post_login,
    session_cookie,
    stored_code,
)

PHONE = "13800138000"
MASKED = "138****8000"


def code_for(client, outbox, phone: str = PHONE) -> str:
    assert ask_code(client, phone).status_code == 200
    return outbox.last(phone, "login")["code"]


def same_browser(source, others) -> None:
    """Give ``others`` the browser id of ``source`` (tabs of one browser: one cookie jar)."""
    browser = source.get_cookie(BROWSER_COOKIE)
    assert browser is not None
    for other in others:
        other.set_cookie(BROWSER_COOKIE, browser.value)


def wrong(code: str) -> str:
    return f"{(int(code) + 1) % 10**6:06d}"


def assert_refused(response, *, status: int, field: str, message: str) -> None:
    """The login page again, with ``message`` next to ``field`` only, and no session."""
    assert response.status_code == status
    assert response.mimetype == "text/html"
    assert all_field_errors(response.text) == {field: [message]}
    assert "idp_session" not in response.headers.get("Set-Cookie", "")
    assert parse(response.text).inputs["phone"]["value"] == PHONE


# --- success ----------------------------------------------------------------------------------


def test_login_sets_an_httponly_lax_session_cookie_and_opens_the_portal(client, outbox, operator):
    response = login(client, outbox, phone=PHONE, password=PASSWORD)

    assert response.status_code == 302
    assert response.headers["Location"] == "/portal"
    (set_cookie,) = [c for c in response.headers.getlist("Set-Cookie") if "idp_session=" in c]
    attributes = [part.strip() for part in set_cookie.split(";")]
    assert "HttpOnly" in attributes
    assert "SameSite=Lax" in attributes
    assert "Path=/" in attributes
    assert not any(a.startswith(("Max-Age", "Expires")) for a in attributes)  # browser session
    assert "Secure" not in attributes  # the test issuer is http://localhost
    value = session_cookie(client)
    assert value is not None
    assert len(value) >= 43
    portal = client.get("/portal")
    assert portal.status_code == 200
    assert audit_events("auth.login_succeeded") == [(MASKED, "success")]
    assert audit_events("auth.login_failed") == []
    assert fresh(Account, operator.id).last_login_at is not None


def test_first_login_goes_to_the_password_change_page(client, outbox, new_operator):
    response = login(client, outbox, phone=new_operator.phone, password=PASSWORD)

    assert response.status_code == 302
    assert response.headers["Location"] == "/password/change"
    assert session_cookie(client) is not None


# --- wrong input ------------------------------------------------------------------------------


def test_wrong_password_is_refused_without_a_session(client, outbox, operator):
    code = code_for(client, outbox)

    response = post_login(client, phone=PHONE, password="Wrong-Pass-9", sms_code=code)

    assert_refused(response, status=400, field="password", message=WRONG_CREDENTIALS)
    assert "Wrong-Pass-9" not in response.text
    assert session_cookie(client) is None
    assert client.get("/portal").headers["Location"] == "/login"
    assert audit_events("auth.login_failed") == [(MASKED, "login_failed")]
    assert audit_events("auth.login_succeeded") == []
    assert fresh(Account, operator.id).last_login_at is None


def test_wrong_code_is_refused_next_to_the_code_field(client, outbox, operator):
    code = code_for(client, outbox)

    response = post_login(client, phone=PHONE, password=PASSWORD, sms_code=wrong(code))

    assert_refused(response, status=400, field="sms_code", message=WRONG_CODE)
    assert audit_events("auth.login_failed") == [(MASKED, "sms_code_invalid")]


def test_code_without_any_request_is_refused(client, outbox, operator):
    response = post_login(client, phone=PHONE, password=PASSWORD, sms_code="123456")

    assert_refused(response, status=400, field="sms_code", message=WRONG_CODE)


def test_a_code_is_single_use(client, app, outbox, operator):
    code = code_for(client, outbox)
    assert post_login(client, phone=PHONE, password=PASSWORD, sms_code=code).status_code == 302

    replay = app.test_client()
    same_browser(client, [replay])
    response = post_login(replay, phone=PHONE, password=PASSWORD, sms_code=code)

    assert_refused(response, status=400, field="sms_code", message=WRONG_CODE)
    assert session_cookie(replay) is None
    assert stored_code(PHONE) is None


def test_a_new_code_replaces_the_previous_one(client, outbox, operator):
    first = code_for(client, outbox)
    allow_resend(PHONE)
    second = code_for(client, outbox)
    if first == second:
        pytest.skip("the two random codes happen to be equal")

    old = post_login(client, phone=PHONE, password=PASSWORD, sms_code=first)
    assert_refused(old, status=400, field="sms_code", message=WRONG_CODE)
    assert post_login(client, phone=PHONE, password=PASSWORD, sms_code=second).status_code == 302


def test_five_wrong_codes_burn_the_code(client, outbox, operator):
    code = code_for(client, outbox)
    for _try in range(5):
        response = post_login(client, phone=PHONE, password=PASSWORD, sms_code=wrong(code))
        assert field_errors(response.text, "sms_code") == [WRONG_CODE]

    right = post_login(client, phone=PHONE, password=PASSWORD, sms_code=code)

    assert_refused(right, status=400, field="sms_code", message=TOO_MANY_CODE_TRIES)
    assert stored_code(PHONE) is None
    results = [result for _actor, result in audit_events("auth.login_failed")]
    assert results == ["sms_code_invalid"] * 5 + ["sms_code_tries_exceeded"]


def test_wrong_codes_do_not_lock_the_account(client, outbox, operator):
    """Anyone can post codes for a phone; only the code's own try limit applies to them."""
    code = code_for(client, outbox)
    for _try in range(7):
        post_login(client, phone=PHONE, password=PASSWORD, sms_code=wrong(code))
    allow_resend(PHONE)

    fresh_code = code_for(client, outbox)
    response = post_login(client, phone=PHONE, password=PASSWORD, sms_code=fresh_code)

    assert response.status_code == 302
    assert response.headers["Location"] == "/portal"


def test_expired_code_is_refused(client, outbox, operator):
    code = code_for(client, outbox)
    expire_code(PHONE)  # stands in for waiting 5 minutes (see helpers)

    response = post_login(client, phone=PHONE, password=PASSWORD, sms_code=code)

    assert_refused(response, status=400, field="sms_code", message=WRONG_CODE)


def test_unknown_phone_gets_the_same_answer_as_a_known_phone_with_a_guessed_code(
    client, outbox, operator
):
    # An unknown phone is never sent a code, so any attempt stops at the code check, with the
    # same page as a known phone whose code the guesser does not have: no account oracle.
    ask_code(client, "13700137000")
    unknown = post_login(client, phone="13700137000", password="Any-Pass-1", sms_code="123456")
    code_for(client, outbox)
    known = post_login(client, phone=PHONE, password="Any-Pass-1", sms_code="123456")

    assert unknown.status_code == known.status_code == 400
    assert (
        all_field_errors(unknown.text) == all_field_errors(known.text) == {"sms_code": [WRONG_CODE]}
    )
    assert session_cookie(client) is None


def test_oversized_password_is_refused_before_any_check(client, outbox, operator):
    code = code_for(client, outbox)

    response = post_login(client, phone=PHONE, password="A1-" + "x" * 197, sms_code=code)

    assert_refused(response, status=400, field="password", message="字段长度不能超过 128 个字符。")
    assert audit_events("auth.login_failed") == []
    assert post_login(client, phone=PHONE, password=PASSWORD, sms_code=code).status_code == 302


@pytest.mark.parametrize(
    ("data", "errors"),
    [
        ({}, {"phone": ["请输入手机号"], "password": ["请输入密码"], "sms_code": ["请输入验证码"]}),
        (
            {"phone": "１３８００１３８０００", "password": PASSWORD, "sms_code": "12345"},
            {"phone": ["请输入 11 位手机号"], "sms_code": ["验证码为 6 位数字"]},
        ),
        (
            {"phone": PHONE, "password": PASSWORD, "sms_code": "１２３４５６"},
            {"sms_code": ["验证码为 6 位数字"]},
        ),
    ],
)
def test_incomplete_form_shows_errors_next_to_the_fields(client, operator, data, errors):
    response = client.post("/login", data={**data, "csrf_token": login_token(client)})

    assert response.status_code == 400
    assert all_field_errors(response.text) == errors
    assert audit_events("auth.login_failed") == []


def test_login_without_csrf_token_is_refused(client, outbox, operator):
    code = code_for(client, outbox)

    response = client.post("/login", data={"phone": PHONE, "password": PASSWORD, "sms_code": code})

    assert response.status_code == 400
    assert session_cookie(client) is None
    assert audit_events("auth.login_succeeded") == []
    assert stored_code(PHONE) is not None  # the code was not spent


# --- lockout ----------------------------------------------------------------------------------


def test_five_wrong_passwords_lock_the_account_even_for_the_right_password(
    client, outbox, operator
):
    code = code_for(client, outbox)
    for attempt in range(5):
        response = post_login(client, phone=PHONE, password=f"Wrong-Pass-{attempt}", sms_code=code)
        assert field_errors(response.text, "password") == [WRONG_CREDENTIALS]
    allow_resend(PHONE)
    fresh_code = code_for(client, outbox)

    response = post_login(client, phone=PHONE, password=PASSWORD, sms_code=fresh_code)

    assert_refused(response, status=429, field="password", message=LOCKED)
    assert session_cookie(client) is None
    results = [result for _actor, result in audit_events("auth.login_failed")]
    assert results == ["login_failed"] * 5 + ["account_locked"]
    assert audit_events("auth.login_succeeded") == []


def test_four_wrong_passwords_do_not_lock_and_success_resets_the_count(client, outbox, operator):
    code = code_for(client, outbox)
    for attempt in range(4):
        post_login(client, phone=PHONE, password=f"Wrong-Pass-{attempt}", sms_code=code)
    assert post_login(client, phone=PHONE, password=PASSWORD, sms_code=code).status_code == 302

    client.post("/logout", data={"csrf_token": login_token(client)})
    allow_resend(PHONE)
    code = code_for(client, outbox)
    for attempt in range(4):
        post_login(client, phone=PHONE, password=f"Wrong-Pass-{attempt}", sms_code=code)

    assert post_login(client, phone=PHONE, password=PASSWORD, sms_code=code).status_code == 302


def test_lockout_is_per_phone(client, app, outbox, operator, new_operator):
    code = code_for(client, outbox)
    for attempt in range(6):
        post_login(client, phone=PHONE, password=f"Wrong-Pass-{attempt}", sms_code=code)

    other = app.test_client()
    response = login(other, outbox, phone=new_operator.phone, password=PASSWORD)

    assert response.status_code == 302


SHOWN = {  # audit result -> (status, field, message) the user sees
    "login_failed": (400, "password", WRONG_CREDENTIALS),
    "account_locked": (429, "password", LOCKED),
    "sms_code_tries_exceeded": (400, "sms_code", TOO_MANY_CODE_TRIES),
    "sms_code_invalid": (400, "sms_code", WRONG_CODE),
}


def shown_refusal(response) -> tuple[int, str, str]:
    ((field, [message]),) = all_field_errors(response.text).items()
    return response.status_code, field, message


@pytest.mark.parametrize(
    "settings_overrides", [{}, {"lockout_threshold": 2}], ids=["threshold-5", "threshold-2"]
)
def test_parallel_wrong_passwords_make_at_most_threshold_checks(
    app, outbox, operator, monkeypatch, settings_overrides
):
    threshold = int(settings_overrides.get("lockout_threshold", 5))
    checked = count_password_checks(monkeypatch)
    clients = [app.test_client() for _ in range(10)]
    tokens = [login_token(c) for c in clients]
    code = code_for(clients[0], outbox)
    same_browser(clients[0], clients[1:])  # parallel tabs of the browser that got the code
    start = threading.Barrier(10)

    def guess(index: int):
        start.wait()
        return post_login(
            clients[index],
            phone=PHONE,
            password=f"Wrong-Pass-{index}",
            sms_code=code,
            token=tokens[index],
        )

    with ThreadPoolExecutor(max_workers=10) as pool:
        responses = list(pool.map(guess, range(10)))

    assert len(checked) <= threshold
    results = Counter(result for _actor, result in audit_events("auth.login_failed"))
    assert sum(results.values()) == 10
    assert results["login_failed"] == len(checked)
    assert set(results) <= set(SHOWN)
    shown_to_users = Counter(shown_refusal(r) for r in responses)
    expected = Counter()
    for result, count in results.items():
        expected[SHOWN[result]] += count
    assert shown_to_users == expected
    assert all(session_cookie(c) is None for c in clients)
    assert audit_events("auth.login_succeeded") == []


# --- memberships ------------------------------------------------------------------------------


def set_membership_status(account: Account, status: MembershipStatus) -> None:
    for membership in account.memberships:
        membership.status = status
    db.session().commit()


@pytest.mark.parametrize(
    ("status", "message", "result"),
    [
        (MembershipStatus.DISABLED, DISABLED, "account_disabled"),
        (MembershipStatus.DELETED, DELETED, "account_deleted"),
    ],
)
def test_unusable_membership_is_refused_with_its_own_message(
    client, outbox, operator, status, message, result
):
    code = code_for(client, outbox)
    set_membership_status(operator, status)  # the admin acts while the code is on its way

    response = post_login(client, phone=PHONE, password=PASSWORD, sms_code=code)

    assert_refused(response, status=403, field="password", message=message)
    assert session_cookie(client) is None
    assert audit_events("auth.login_failed") == [(MASKED, result)]


@pytest.mark.parametrize("status", [MembershipStatus.DISABLED, MembershipStatus.DELETED])
def test_a_disabled_operator_gets_a_code_that_works_and_learns_the_state(
    client, outbox, operator, status
):
    set_membership_status(operator, status)  # disabled before asking for the code
    code = code_for(client, outbox)  # the SMS arrives: no "验证码已发送" without a code

    first = post_login(client, phone=PHONE, password=PASSWORD, sms_code=code)
    again = post_login(client, phone=PHONE, password=PASSWORD, sms_code=code)

    assert first.status_code == again.status_code == 403
    assert all_field_errors(first.text) == all_field_errors(again.text)
    assert list(all_field_errors(again.text)) == ["password"]  # never the code's field
    assert session_cookie(client) is None


def test_a_stranger_learns_nothing_of_a_disabled_account(client, outbox, operator):
    """Wrong password: the same page as for an active account; unknown phone: same as a wrong
    code on a known one."""
    code = code_for(client, outbox)
    active = post_login(client, phone=PHONE, password="Wrong-Pass-9", sms_code=code)
    set_membership_status(operator, MembershipStatus.DISABLED)
    disabled = post_login(client, phone=PHONE, password="Wrong-Pass-9", sms_code=code)

    assert active.status_code == disabled.status_code == 400
    assert all_field_errors(active.text) == all_field_errors(disabled.text)
    assert all_field_errors(disabled.text) == {"password": [WRONG_CREDENTIALS]}


def test_the_lock_shows_its_end_time_in_shanghai_time(client, outbox, operator, settings):
    from datetime import UTC, datetime, timedelta
    from zoneinfo import ZoneInfo

    code = code_for(client, outbox)
    for attempt in range(5):
        post_login(client, phone=PHONE, password=f"Wrong-Pass-{attempt}", sms_code=code)
    before = datetime.now(UTC)

    locked = post_login(client, phone=PHONE, password=PASSWORD, sms_code=code)
    again = post_login(client, phone=PHONE, password=PASSWORD, sms_code=code)

    assert locked.status_code == again.status_code == 429
    assert field_errors(again.text, "password") == [LOCKED]  # not "验证码错误次数过多"
    shanghai = ZoneInfo("Asia/Shanghai")
    window = timedelta(seconds=settings.lockout_seconds)
    possible = {
        (before + window - timedelta(minutes=minutes)).astimezone(shanghai).strftime("%H:%M")
        for minutes in (0, 1)
    }
    assert lock_ends(locked.text) in possible


def test_unusable_membership_with_a_wrong_password_says_only_wrong_password(
    client, outbox, operator
):
    code = code_for(client, outbox)
    set_membership_status(operator, MembershipStatus.DISABLED)

    response = post_login(client, phone=PHONE, password="Wrong-Pass-1", sms_code=code)

    assert_refused(response, status=400, field="password", message=WRONG_CREDENTIALS)


def test_another_active_membership_still_logs_in(client, outbox, org, operator):
    from sqlalchemy import select

    from idp.identity.models import Membership
    from idp.orgs.registration import add_org
    from tests.conftest import OTHER_USCC, enrol

    other = add_org(
        db.session(), uscc=OTHER_USCC, name="上海另一家审价有限公司", org_type="cost_consulting"
    )
    enrol(db.session(), other, name="张三", phone=PHONE)
    first = db.session().scalar(
        select(Membership).where(Membership.account_id == operator.id, Membership.org_id == org.id)
    )
    first.status = MembershipStatus.DELETED
    db.session().commit()

    response = login(client, outbox, phone=PHONE, password=PASSWORD)

    assert response.status_code == 302
    assert response.headers["Location"] == "/portal"
