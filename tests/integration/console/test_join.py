"""用户审核 from the applicant's side: the public /join page (USCC, name, phone, SMS code,
real-name check → "申请已提交, 请等待企业管理员审核"), then the org admin's 通过 (the operator
logs in with the initial password from the SMS) or 驳回 (the reason arrives by SMS)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from idp import db
from idp.db import utcnow
from tests.conftest import DEMO_USCC, OTHER_USCC, make_operator
from tests.flows import NEW_PASSWORD, change_password, csrf_token, login
from tests.integration.auth.helpers import allow_resend, parse
from tests.integration.console.helpers import (
    MISMATCH,
    SUBMITTED,
    UNAVAILABLE,
    audit_rows,
    dd,
    error_page,
    fetch,
    field_errors,
    flashes,
    form_error,
    people_counts,
    post_form,
    row_ids,
)

NAME = "赵六"
PHONE = "13500135000"


def ask_code(browser, phone=PHONE):
    """发送验证码 on the join page; returns (the page's CSRF token, the code from the outbox)."""
    token = csrf_token(browser.get("/join").text)
    sent = browser.post("/join/sms-code", data={"phone": phone, "csrf_token": token})
    assert sent.status_code == 200, sent.text
    return token, sent


def submit(browser, token, code, *, uscc=DEMO_USCC, name=NAME, phone=PHONE):
    return browser.post(
        "/join",
        data={"uscc": uscc, "name": name, "phone": phone, "sms_code": code, "csrf_token": token},
    )


def apply(browser, outbox, **fields):
    token, _sent = ask_code(browser, fields.get("phone", PHONE))
    code = outbox.last(fields.get("phone", PHONE), "join")["code"]
    return submit(browser, token, code, **fields)


def test_join_page_has_the_stable_field_names(browser):
    page = browser.get("/join")

    assert page.status_code == 200
    parsed = parse(page.text)
    (form,) = [f for f in parsed.forms if f.get("id") == "join-form"]
    assert form["data-sms-url"] == "/join/sms-code"
    assert parsed.inputs["phone"]["autocomplete"] == "tel"
    assert parsed.inputs["sms_code"]["autocomplete"] == "one-time-code"
    assert {"uscc", "name", "phone", "sms_code", "csrf_token"} <= set(parsed.inputs)
    assert '<label for="uscc">统一社会信用代码</label>' in page.text
    assert "发送验证码</button>" in page.text
    assert "/static/sms_code.js" in page.text


def test_join_request_end_to_end_approved(admin, home_org, browser, known, outbox, app):
    from idp.identity.models import JoinRequest

    known(NAME, PHONE)
    token, sent = ask_code(browser)
    assert sent.json == {"message": "验证码已发送，5 分钟内有效", "retry_after": 60, "sent": True}
    code = outbox.last(PHONE, "join")["code"]
    assert f"验证码为{code}" in outbox.last(PHONE, "join")["text"]

    done = submit(browser, token, code)

    assert done.status_code == 200
    assert f'<h1 id="result">{SUBMITTED}</h1>' in done.text
    row = fetch(JoinRequest, JoinRequest.phone == PHONE)
    assert (row.org_id, row.name, row.status.value) == (home_org.id, NAME, "pending")
    ttl = timedelta(seconds=app.extensions["idp"].join_request_ttl)
    assert abs(row.expires_at - (utcnow() + ttl)) < timedelta(minutes=1)
    # The code was used up.
    replay = submit(browser, token, code)
    assert field_errors(replay.text) == {"sms_code": ["验证码错误或已过期"]}

    listing = admin.get("/org/reviews")
    assert row_ids(listing.text, "join-request") == [row.id]
    assert "135****5000" in listing.text
    assert PHONE not in listing.text
    page = admin.get(f"/org/reviews/{row.id}/approve")
    assert dd(page.text, "applicant-phone") == PHONE
    approved = post_form(admin, f"/org/reviews/{row.id}/approve", {})
    assert (approved.status_code, approved.headers["Location"]) == (302, "/org/reviews")
    assert flashes(admin.get("/org/reviews").text) == [
        "已通过，操作员账号已开通",
        "初始密码已通过短信发送",
    ]
    decided = fetch(JoinRequest, JoinRequest.id == row.id)
    assert (decided.status.value, decided.decided_by) == ("approved", f"org_admin:{home_org.id}")

    password = outbox.last(PHONE, "initial_password")["code"]
    operator = app.test_client()
    allow_resend(PHONE)  # the join code went to the same phone a moment ago
    assert login(operator, outbox, phone=PHONE, password=password).headers["Location"] == (
        "/password/change"
    )
    assert change_password(operator, current=password, new=NEW_PASSWORD).status_code == 302
    assert [r[2] for r in audit_rows("orgs.join_requested")] == ["success"]
    assert audit_rows("orgs.join_approved") == [
        (
            f"org_admin:{home_org.id}",
            f"join_request:{row.id} 赵* 135****5000",
            "success",
            home_org.id,
        )
    ]


def test_join_request_rejected_with_a_reason_by_sms(admin, home_org, browser, known, outbox):
    from idp.identity.models import JoinRequest

    known(NAME, PHONE)
    assert apply(browser, outbox).status_code == 200
    row = fetch(JoinRequest, JoinRequest.phone == PHONE)
    page = admin.get(f"/org/reviews/{row.id}/reject")
    assert '<label for="reason">驳回原因</label>' in page.text

    rejected = post_form(admin, f"/org/reviews/{row.id}/reject", {"reason": "非本单位员工"})

    assert (rejected.status_code, rejected.headers["Location"]) == (302, "/org/reviews")
    assert flashes(admin.get("/org/reviews").text) == ["已驳回，已短信通知申请人"]
    sms = outbox.last(PHONE)
    assert sms["purpose"] == "join_rejected"
    assert "原因：非本单位员工" in sms["text"]
    assert "上海示例审计事务所有限公司" in sms["text"]
    decided = fetch(JoinRequest, JoinRequest.id == row.id)
    assert (decided.status.value, decided.reason) == ("rejected", "非本单位员工")
    assert people_counts()["Account"] == 0
    assert "非本单位员工" in admin.get("/org/reviews?status=rejected").text


def test_a_mismatch_saves_nothing_and_the_code_stays_usable(home_org, browser, known, outbox):
    known(NAME, PHONE)
    token, _sent = ask_code(browser)
    code = outbox.last(PHONE, "join")["code"]
    before = people_counts()

    refused = submit(browser, token, code, name="赵七")

    assert refused.status_code == 400
    assert form_error(refused.text) == MISMATCH
    assert people_counts() == before
    assert audit_rows("orgs.join_requested")[-1][2:] == ("realname_mismatch", home_org.id)
    assert submit(browser, token, code).status_code == 200


def test_no_verdict_saves_nothing(home_org, browser, outbox, realname_outage):
    realname_outage(PHONE)
    before = people_counts()

    refused = apply(browser, outbox)

    assert refused.status_code == 503
    assert form_error(refused.text) == UNAVAILABLE
    assert people_counts() == before


@pytest.mark.parametrize(
    ("uscc", "status", "errors"),
    [
        (OTHER_USCC, 404, {"uscc": ["该统一社会信用代码未注册"]}),
        ("91310000MA1K000010", 400, {"uscc": ["统一社会信用代码无效"]}),
        ("9131000", 400, {"uscc": ["统一社会信用代码为 18 位数字或大写字母"]}),
        ("", 400, {"uscc": ["请输入统一社会信用代码"]}),
    ],
)
def test_unknown_or_invalid_uscc_is_refused(home_org, browser, known, outbox, uscc, status, errors):
    known(NAME, PHONE)
    before = people_counts()

    refused = apply(browser, outbox, uscc=uscc)

    assert refused.status_code == status
    assert field_errors(refused.text) == errors
    assert people_counts() == before


def test_a_suspended_organisation_takes_no_request(home_org, browser, known, outbox):
    from idp.orgs.suspension import suspend_org

    known(NAME, PHONE)
    suspend_org(db.session(), DEMO_USCC, reason="违反平台使用规定", actor="test")
    db.session().commit()
    before = people_counts()

    refused = apply(browser, outbox)

    assert refused.status_code == 403
    assert field_errors(refused.text) == {"uscc": ["该机构已被平台暂停使用，暂不接受加入申请"]}
    assert people_counts() == before
    assert audit_rows("orgs.join_requested")[-1][2:] == ("org_suspended_join", home_org.id)


def test_lower_case_uscc_is_accepted(home_org, browser, known, outbox):
    known(NAME, PHONE)

    assert apply(browser, outbox, uscc=DEMO_USCC.lower()).status_code == 200


def test_wrong_or_missing_code_is_refused(home_org, browser, known, outbox):
    known(NAME, PHONE)
    token, _sent = ask_code(browser)
    code = outbox.last(PHONE, "join")["code"]
    wrong = "000000" if code != "000000" else "111111"

    refused = submit(browser, token, wrong)
    assert refused.status_code == 400
    assert field_errors(refused.text) == {"sms_code": ["验证码错误或已过期"]}
    missing = submit(browser, token, "")
    assert field_errors(missing.text) == {"sms_code": ["请输入验证码"]}
    other_phone = submit(browser, token, code, phone="13500135001")
    assert field_errors(other_phone.text) == {"sms_code": ["验证码错误或已过期"]}
    assert people_counts()["JoinRequest"] == 0


def test_a_login_code_is_not_a_join_code(home_org, browser, known, outbox, operator):
    from tests.flows import request_sms_code

    known(operator.name, operator.phone)
    request_sms_code(browser, operator.phone)
    code = outbox.last(operator.phone, "login")["code"]
    token = csrf_token(browser.get("/join").text)

    refused = submit(browser, token, code, name=operator.name, phone=operator.phone)

    assert field_errors(refused.text) == {"sms_code": ["验证码错误或已过期"]}


def test_a_second_pending_request_is_refused(home_org, browser, known, outbox):
    known(NAME, PHONE)
    assert apply(browser, outbox).status_code == 200
    allow_resend(PHONE)

    again = apply(browser, outbox)

    assert again.status_code == 409
    assert form_error(again.text) == "您已提交过申请，请等待企业管理员审核"
    assert people_counts()["JoinRequest"] == 1


def test_an_operator_of_the_org_is_told_to_log_in(home_org, browser, known, outbox):
    make_operator(home_org, name=NAME, phone=PHONE, first_login=False)
    known(NAME, PHONE)

    refused = apply(browser, outbox)

    assert refused.status_code == 409
    assert form_error(refused.text) == "您已是该机构的操作员，请直接登录"


@pytest.mark.parametrize(
    ("name", "errors"),
    [("", {"name": ["请输入姓名"]}), ("赵" * 101, {"name": ["姓名不能超过 100 字"]})],
)
def test_malformed_names_are_refused(home_org, browser, known, outbox, name, errors):
    refused = apply(browser, outbox, name=name)

    assert refused.status_code == 400
    assert field_errors(refused.text) == errors


def test_code_request_checks_the_phone_and_the_resend_interval(home_org, browser):
    token = csrf_token(browser.get("/join").text)

    bad = browser.post("/join/sms-code", data={"phone": "1350013500", "csrf_token": token})
    assert (bad.status_code, bad.json["field"]) == (400, "phone")
    assert (
        browser.post("/join/sms-code", data={"phone": PHONE, "csrf_token": token}).status_code
        == 200
    )
    again = browser.post("/join/sms-code", data={"phone": PHONE, "csrf_token": token})
    assert (again.status_code, again.json["error"]) == (429, "sms_rate_limited")
    assert 55 <= int(again.headers["Retry-After"]) <= 60


def test_join_without_csrf_token_is_refused(home_org, browser, known, outbox):
    known(NAME, PHONE)
    _token, _sent = ask_code(browser)
    code = outbox.last(PHONE, "join")["code"]

    refused = browser.post(
        "/join", data={"uscc": DEMO_USCC, "name": NAME, "phone": PHONE, "sms_code": code}
    )

    assert refused.status_code == 400
    assert error_page(refused.text) == "页面已过期，请刷新后重试"
    assert people_counts()["JoinRequest"] == 0
