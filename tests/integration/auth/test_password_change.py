"""The password change: the forced one at first login (the portal waits for it, the policy's
errors appear next to the new password, only a valid change clears the flag), the voluntary one,
and wrong current passwords counting toward the account's lockout like wrong logins."""

from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest

from idp.auth.passwords import verify_password
from idp.identity.models import Account
from tests.conftest import both_databases
from tests.flows import NEW_PASSWORD, PASSWORD, csrf_token, login
from tests.integration.auth.helpers import (
    LOCKED,
    WRONG_CREDENTIALS,
    all_field_errors,
    allow_resend,
    audit_events,
    count_password_checks,
    fresh,
    login_token,
    parse,
    post_login,
)

WRONG_CURRENT = "原密码错误"

FORCED_NOTICE = "首次登录需更换密码，修改后才能继续。"


@pytest.fixture
def first_login(client, outbox, new_operator) -> Account:
    """``new_operator`` logged in and sent to the password change page."""
    response = login(client, outbox, phone=new_operator.phone, password=PASSWORD)
    assert response.headers["Location"] == "/password/change"
    return new_operator


def post_change(client, *, current: str, new: str, confirm: str | None = None):
    page = client.get("/password/change")
    return client.post(
        "/password/change",
        data={
            "current_password": current,
            "new_password": new,
            "confirm_password": new if confirm is None else confirm,
            "csrf_token": csrf_token(page.text),
        },
    )


def assert_unchanged(account: Account) -> None:
    stored = fresh(Account, account.id)
    assert stored.must_change_password is True
    assert stored.password_hash == account.password_hash
    assert stored.password_changed_at is None


def test_portal_sends_a_first_login_to_the_password_change(client, first_login):
    portal = client.get("/portal")

    assert portal.status_code == 302
    assert portal.headers["Location"] == "/password/change"
    page = client.get("/password/change")
    assert page.status_code == 200
    assert FORCED_NOTICE in page.text
    inputs = parse(page.text).inputs
    assert inputs["current_password"]["autocomplete"] == "current-password"
    assert inputs["new_password"]["autocomplete"] == "new-password"
    assert inputs["confirm_password"]["autocomplete"] == "new-password"
    assert inputs["csrf_token"]["type"] == "hidden"


@pytest.mark.parametrize(
    ("new", "errors"),
    [
        ("Ab-1", ["密码至少 8 位"]),
        ("abcdefghij", ["密码须包含大写字母、小写字母、数字、符号中的至少三类"]),
        ("ABCDEFGH12", ["密码须包含大写字母、小写字母、数字、符号中的至少三类"]),
        ("Ab-13900139000", ["密码不能包含手机号"]),
        (PASSWORD, ["新密码不能与原密码相同"]),
        ("Ab-1" + "x" * 125, ["密码最多 128 位"]),
        ("abc", ["密码至少 8 位", "密码须包含大写字母、小写字母、数字、符号中的至少三类"]),
    ],
    ids=["short", "one-class", "two-classes", "phone", "same", "long", "short-and-one-class"],
)
def test_policy_errors_are_shown_next_to_the_new_password(client, first_login, new, errors):
    response = post_change(client, current=PASSWORD, new=new)

    assert response.status_code == 400
    assert all_field_errors(response.text) == {"new_password": errors}
    assert FORCED_NOTICE in response.text
    assert_unchanged(first_login)
    assert client.get("/portal").headers["Location"] == "/password/change"
    assert audit_events("auth.password_changed") == []


def test_mismatched_confirmation_is_refused(client, first_login):
    response = post_change(client, current=PASSWORD, new=NEW_PASSWORD, confirm=NEW_PASSWORD + "x")

    assert response.status_code == 400
    assert all_field_errors(response.text) == {"confirm_password": ["两次输入的密码不一致"]}
    assert_unchanged(first_login)


def test_wrong_current_password_is_refused(client, first_login):
    response = post_change(client, current="Wrong-Pass-1", new=NEW_PASSWORD)

    assert response.status_code == 400
    assert all_field_errors(response.text) == {"current_password": ["原密码错误"]}
    assert_unchanged(first_login)
    assert audit_events("auth.password_change_failed") == [("139****9000", "wrong_password")]


def test_empty_form_names_every_missing_field(client, first_login):
    response = client.post("/password/change", data={"csrf_token": login_token(client)})

    assert response.status_code == 400
    assert all_field_errors(response.text) == {
        "current_password": ["请输入原密码"],
        "new_password": ["请输入新密码"],
        "confirm_password": ["请再次输入新密码"],
    }
    assert_unchanged(first_login)


def test_change_without_csrf_token_is_refused(client, first_login):
    response = client.post(
        "/password/change",
        data={
            "current_password": PASSWORD,
            "new_password": NEW_PASSWORD,
            "confirm_password": NEW_PASSWORD,
        },
    )

    assert response.status_code == 400
    assert_unchanged(first_login)


def test_valid_change_clears_the_flag_and_opens_the_portal(client, outbox, first_login):
    response = post_change(client, current=PASSWORD, new=NEW_PASSWORD)

    assert response.status_code == 302
    assert response.headers["Location"] == "/portal"
    stored = fresh(Account, first_login.id)
    assert stored.must_change_password is False
    assert stored.password_changed_at is not None
    assert stored.password_hash != first_login.password_hash
    assert stored.password_hash.startswith("$argon2id$")
    assert verify_password(stored.password_hash, NEW_PASSWORD)
    assert not verify_password(stored.password_hash, PASSWORD)
    assert client.get("/portal").status_code == 200
    assert audit_events("auth.password_changed") == [("139****9000", "success")]


def test_after_the_change_only_the_new_password_logs_in(client, app, outbox, first_login):
    post_change(client, current=PASSWORD, new=NEW_PASSWORD)
    allow_resend(first_login.phone)

    old = login(app.test_client(), outbox, phone=first_login.phone, password=PASSWORD)
    assert old.status_code == 400
    assert all_field_errors(old.text) == {"password": [WRONG_CREDENTIALS]}
    allow_resend(first_login.phone)
    new = login(app.test_client(), outbox, phone=first_login.phone, password=NEW_PASSWORD)
    assert new.status_code == 302
    assert new.headers["Location"] == "/portal"


def test_password_change_needs_a_login(client, new_operator):
    assert client.get("/password/change").headers["Location"] == "/login"
    response = client.post(
        "/password/change",
        data={
            "current_password": PASSWORD,
            "new_password": NEW_PASSWORD,
            "confirm_password": NEW_PASSWORD,
            "csrf_token": login_token(client),
        },
    )
    assert response.status_code == 302
    assert response.headers["Location"] == "/login"
    assert_unchanged(new_operator)


def test_an_operator_may_change_the_password_voluntarily(client, outbox, operator):
    login(client, outbox, phone=operator.phone, password=PASSWORD)

    page = client.get("/password/change")
    assert page.status_code == 200
    assert FORCED_NOTICE not in page.text
    response = post_change(client, current=PASSWORD, new=NEW_PASSWORD)

    assert response.status_code == 302
    assert response.headers["Location"] == "/portal"
    assert verify_password(fresh(Account, operator.id).password_hash, NEW_PASSWORD)


# --- lockout ----------------------------------------------------------------------------------


def test_wrong_current_passwords_lock_the_account_even_for_the_right_one(
    client, app, outbox, first_login
):
    for attempt in range(5):
        response = post_change(client, current=f"Wrong-Pass-{attempt}", new=NEW_PASSWORD)
        assert response.status_code == 400
        assert all_field_errors(response.text) == {"current_password": [WRONG_CURRENT]}

    locked = post_change(client, current=PASSWORD, new=NEW_PASSWORD)

    assert locked.status_code == 429
    assert all_field_errors(locked.text) == {"current_password": [LOCKED]}
    assert_unchanged(first_login)
    results = [result for _actor, result in audit_events("auth.password_change_failed")]
    assert results == ["wrong_password"] * 5 + ["account_locked"]
    allow_resend(first_login.phone)
    login_elsewhere = login(app.test_client(), outbox, phone=first_login.phone, password=PASSWORD)
    assert login_elsewhere.status_code == 429
    assert all_field_errors(login_elsewhere.text) == {"password": [LOCKED]}


def test_wrong_logins_and_wrong_current_passwords_add_up(client, app, outbox, first_login):
    other = app.test_client()
    allow_resend(first_login.phone)
    assert (
        other.post(
            "/login/sms-code",
            data={"phone": first_login.phone, "csrf_token": login_token(other)},
        ).status_code
        == 200
    )
    code = outbox.last(first_login.phone, "login")["code"]
    for attempt in range(3):
        refused = post_login(
            other, phone=first_login.phone, password=f"Bad-{attempt}", sms_code=code
        )
        assert all_field_errors(refused.text) == {"password": [WRONG_CREDENTIALS]}
    for attempt in range(2):
        post_change(client, current=f"Wrong-Pass-{attempt}", new=NEW_PASSWORD)

    locked = post_change(client, current=PASSWORD, new=NEW_PASSWORD)

    assert locked.status_code == 429
    assert all_field_errors(locked.text) == {"current_password": [LOCKED]}
    assert_unchanged(first_login)


def test_the_right_current_password_resets_the_count(client, first_login):
    for attempt in range(4):
        post_change(client, current=f"Wrong-Pass-{attempt}", new=NEW_PASSWORD)
    assert post_change(client, current=PASSWORD, new="short").status_code == 400  # policy only

    for attempt in range(4):
        post_change(client, current=f"Wrong-Again-{attempt}", new=NEW_PASSWORD)
    response = post_change(client, current=PASSWORD, new=NEW_PASSWORD)

    assert response.status_code == 302
    assert verify_password(fresh(Account, first_login.id).password_hash, NEW_PASSWORD)


@both_databases
def test_parallel_wrong_current_passwords_make_at_most_threshold_checks(
    client, app, first_login, monkeypatch
):
    """Ten guesses from one session at once: the count comes before the check, so at most five
    passwords are ever compared, and the rest are told the account is locked."""
    checked = count_password_checks(monkeypatch)
    token = csrf_token(client.get("/password/change").text)
    cookies = {name: client.get_cookie(name).value for name in ("idp_session", "idp_csrf")}
    start = threading.Barrier(10)

    def guess(index: int):
        browser = app.test_client()
        for name, value in cookies.items():
            browser.set_cookie(name, value)
        start.wait()
        return browser.post(
            "/password/change",
            data={
                "current_password": f"Wrong-Pass-{index}",
                "new_password": NEW_PASSWORD,
                "confirm_password": NEW_PASSWORD,
                "csrf_token": token,
            },
        )

    with ThreadPoolExecutor(max_workers=10) as pool:
        responses = list(pool.map(guess, range(10)))

    assert len(checked) == 5
    shown = Counter(
        (r.status_code, tuple(all_field_errors(r.text)["current_password"])) for r in responses
    )
    assert shown == Counter({(400, (WRONG_CURRENT,)): 5, (429, (LOCKED,)): 5})
    assert_unchanged(first_login)
