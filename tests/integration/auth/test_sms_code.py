"""POST /login/sms-code: the same answer for every phone, 6-digit codes in the outbox, limits per
phone (60 s, 10 a day) and per IP, bad input and a failing gateway."""

from __future__ import annotations

import re
import socket

import pytest
from flask import current_app

from tests.conftest import drain_sms_queue
from tests.integration.auth.helpers import (
    SENT_ANSWER,
    allow_resend,
    ask_code,
    audit_events,
    audit_targets,
    login_token,
    store_keys,
    stored_code,
)

UNKNOWN = "13700137000"
RATE_LIMITED = "发送过于频繁，请稍后再试"


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


ALIYUN_DOWN = {
    "sms_backend": "aliyun",
    "sms_endpoint": f"http://127.0.0.1:{closed_port()}/",
    "sms_access_key_id": "test-key-id",
    "sms_access_key_secret": "test-key-secret",
    "sms_sign_name": "统一认证登录平台",
    "sms_template_login": "SMS_000001",
    "sms_template_password": "SMS_000002",
}


def test_known_phone_gets_a_six_digit_login_code(client, outbox, operator):
    response = ask_code(client, operator.phone)

    assert response.status_code == 200
    assert response.mimetype == "application/json"
    assert response.json == SENT_ANSWER
    (message,) = outbox.messages()
    assert set(message) == {"time", "phone", "purpose", "text", "code"}
    assert message["phone"] == "13800138000"
    assert message["purpose"] == "login"
    assert re.fullmatch(r"[0-9]{6}", message["code"])
    assert message["text"] == (
        f"【统一认证登录平台】您的登录验证码为{message['code']}，5分钟内有效。如非本人操作，请忽略本短信。"
    )
    assert audit_events("auth.sms_code_requested") == [("138****8000", "success")]
    assert audit_events("sms.delivered") == [("system", "success")]


def test_the_code_is_stored_hashed(client, outbox, operator):
    ask_code(client, operator.phone)

    code = outbox.last(operator.phone, "login")["code"]
    raw = stored_code(operator.phone)
    assert raw is not None
    assert code.encode() not in raw


def test_unknown_phone_gets_the_identical_answer_and_no_sms(client, outbox, operator):
    known = ask_code(client, operator.phone)
    unknown = ask_code(client, UNKNOWN)

    assert unknown.status_code == known.status_code == 200
    assert unknown.get_data() == known.get_data()
    assert unknown.headers["Content-Type"] == known.headers["Content-Type"]
    assert [m["phone"] for m in outbox.messages()] == [operator.phone]
    assert stored_code(UNKNOWN) is None  # the worker withdrew it
    assert audit_events("auth.sms_code_requested") == [
        ("138****8000", "success"),
        ("137****7000", "success"),
    ]
    assert audit_targets("sms.delivered") == [("138****8000", "success")]
    assert audit_targets("sms.not_sent") == [("137****7000", "no_account")]


def test_disabled_membership_gets_the_identical_answer_and_its_code(client, outbox, operator):
    """The owner of a disabled account gets a code that works: the login then says why it
    cannot go on (never "验证码已发送" followed by a code that never arrives)."""
    from idp import db
    from idp.identity.models import MembershipStatus

    (membership,) = operator.memberships
    membership.status = MembershipStatus.DISABLED
    db.session().commit()

    response = ask_code(client, operator.phone)

    assert response.status_code == 200
    assert response.json == SENT_ANSWER
    assert [m["phone"] for m in outbox.messages()] == [operator.phone]


@pytest.mark.parametrize("phone", ["13800138000", UNKNOWN])
def test_second_request_within_60_seconds_is_refused(client, outbox, operator, phone):
    token = login_token(client)
    assert ask_code(client, phone, token).status_code == 200

    again = ask_code(client, phone, token)

    assert again.status_code == 429
    retry_after = int(again.headers["Retry-After"])
    assert 55 <= retry_after <= 60
    assert again.json == {
        "error": "sms_rate_limited",
        "error_description": RATE_LIMITED,
        "retry_after": retry_after,
    }
    assert len(outbox.messages()) == (1 if phone == operator.phone else 0)


def test_another_phone_is_not_held_up_by_the_interval(client, outbox, operator, new_operator):
    assert ask_code(client, operator.phone).status_code == 200
    assert ask_code(client, new_operator.phone).status_code == 200

    assert [m["phone"] for m in outbox.messages()] == [operator.phone, new_operator.phone]


@pytest.mark.parametrize("phone", ["13800138000", UNKNOWN])
def test_eleventh_send_of_the_day_is_refused(client, outbox, operator, phone):
    # allow_resend stands in for waiting out the 60 s interval between sends.
    token = login_token(client)
    for _send in range(10):
        assert ask_code(client, phone, token).status_code == 200
        allow_resend(phone)

    eleventh = ask_code(client, phone, token)

    assert eleventh.status_code == 429
    assert eleventh.headers["Retry-After"] == "86400"
    assert eleventh.json == {
        "error": "sms_rate_limited",
        "error_description": RATE_LIMITED,
        "retry_after": 86400,
    }
    assert len(outbox.messages()) == (10 if phone == operator.phone else 0)


@pytest.mark.parametrize("settings_overrides", [{"sms_ip_hourly_limit": 3}])
def test_requests_per_ip_are_limited(app, outbox, operator):
    client = app.test_client()
    token = login_token(client)
    phones = ["13700137001", "13700137002", operator.phone, "13700137003"]
    answers = [ask_code(client, phone, token) for phone in phones]

    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert answers[3].headers["Retry-After"] == "3600"
    assert answers[3].json == {
        "error": "sms_rate_limited",
        "error_description": RATE_LIMITED,
        "retry_after": 3600,
    }
    other_ip = app.test_client()
    other_ip.environ_base["REMOTE_ADDR"] = "127.0.2.7"
    assert ask_code(other_ip, "13700137003").status_code == 200
    assert [m["phone"] for m in outbox.messages()] == [operator.phone]


@pytest.mark.parametrize(
    ("phone", "message"),
    [
        ("1380013800a", "请输入 11 位手机号"),
        ("１３８００１３８０００", "请输入 11 位手机号"),
        ("1380013800", "请输入 11 位手机号"),
        ("138001380001", "请输入 11 位手机号"),
        ("12800138000", "请输入 11 位手机号"),
        ("13800138000\n", "请输入 11 位手机号"),
        (" 13800138000", "请输入 11 位手机号"),
        ("", "请输入手机号"),
    ],
)
def test_bad_phone_is_refused_with_a_field_error(client, outbox, operator, phone, message):
    response = ask_code(client, phone)

    assert response.status_code == 400
    assert response.json == {
        "error": "invalid_phone",
        "error_description": message,
        "field": "phone",
    }
    assert outbox.messages() == []
    assert store_keys("sms:interval:13800138000:") == []
    assert audit_events("auth.sms_code_requested") == []


def test_missing_phone_field_is_refused(client, outbox, operator):
    response = client.post("/login/sms-code", data={"csrf_token": login_token(client)})

    assert response.status_code == 400
    assert response.json["error_description"] == "请输入手机号"
    assert outbox.messages() == []


@pytest.mark.parametrize("token", [None, "not-a-token"])
def test_request_without_a_valid_csrf_token_sends_nothing(client, outbox, operator, token):
    login_token(client)  # the browser has a CSRF session, the attacker's form lacks the token
    data = {"phone": operator.phone} | ({"csrf_token": token} if token else {})

    response = client.post("/login/sms-code", data=data)

    assert response.status_code == 400
    assert outbox.messages() == []
    assert stored_code(operator.phone) is None
    assert store_keys(f"sms:interval:{operator.phone}:") == []
    assert audit_events("auth.sms_code_requested") == []


def test_a_valid_token_without_the_browsers_cookie_sends_nothing(app, client, outbox, operator):
    """The CSRF token holds only with the cookie of the browser it was given to: a request with
    no cookie at all (a script replaying the form) is refused as a forged one is."""
    token = login_token(client)
    cookieless = app.test_client()

    response = cookieless.post(
        "/login/sms-code", data={"phone": operator.phone, "csrf_token": token}
    )

    assert response.status_code == 400
    assert outbox.messages() == []
    assert stored_code(operator.phone) is None
    assert audit_events("auth.sms_code_requested") == []


def test_get_is_not_allowed(client, outbox, operator):
    response = client.get("/login/sms-code", query_string={"phone": operator.phone})

    assert response.status_code == 405
    assert outbox.messages() == []


@pytest.mark.parametrize("settings_overrides", [ALIYUN_DOWN | {"sms_retries": 2}])
def test_a_failing_gateway_is_retried_then_audited_and_leaves_no_live_code(
    client, outbox, operator
):
    token = login_token(client)

    first = ask_code(client, operator.phone, token)

    assert first.status_code == 200  # the request does not wait for the vendor
    assert stored_code(operator.phone) is not None
    drain_sms_queue(current_app)  # the worker tries three times, then gives up
    assert audit_targets("sms.delivery_retrying") == [("138****8000", "sms_unavailable")] * 2
    assert audit_targets("sms.delivery_failed") == [("138****8000", "sms_unavailable")]
    assert audit_targets("sms.delivered") == []
    assert stored_code(operator.phone) is None
    assert store_keys(f"sms:interval:{operator.phone}:") == []

    again = ask_code(client, operator.phone, token)  # at once: not 429, the interval is free
    assert again.status_code == 200
