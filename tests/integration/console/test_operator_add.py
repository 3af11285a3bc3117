"""操作员管理 【增加】 (docs/design.md, manual §1.3 ②): name + phone → 手机二要素校验 → account with a random
initial password sent by SMS → the operator's first login forces a password change. Refusals
(mismatch, no verdict, duplicate phone, failed SMS, bad input, no CSRF token) save nothing."""

from __future__ import annotations

import pytest

from tests.flows import NEW_PASSWORD, PASSWORD, change_password, csrf_token, login
from tests.integration.console.helpers import (
    MISMATCH,
    SMS_FAILED,
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
)

NAME = "王小明"
PHONE = "13700137001"
NEW = "/org/operators/new"


def add(admin, name=NAME, phone=PHONE, **extra):
    return post_form(admin, NEW, {"name": name, "phone": phone, **extra})


def test_add_page_asks_for_the_id_card_name_and_its_phone(admin):
    page = admin.get(NEW)

    assert page.status_code == 200
    assert '<label for="name">姓名（身份证姓名）</label>' in page.text
    assert '<label for="phone">手机号码（身份证绑定的手机号码）</label>' in page.text
    assert ">保存</button>" in page.text
    assert "初始密码以短信方式发送" in page.text
    assert 'name="csrf_token"' in page.text


def test_added_operator_gets_the_initial_password_by_sms_and_must_change_it(
    admin, home_org, browser, known, outbox
):
    from idp.identity.models import Account, Membership

    known(NAME, PHONE)
    saved = add(admin)

    assert saved.status_code == 302
    detail = admin.get(saved.headers["Location"])
    assert detail.status_code == 200
    assert flashes(detail.text) == ["保存成功", "初始密码已通过短信发送"]
    assert dd(detail.text, "operator-name") == NAME
    assert dd(detail.text, "operator-phone") == PHONE  # in full on the detail page
    assert dd(detail.text, "operator-status") == "启用"
    assert dd(detail.text, "operator-created-by") == "企业管理员"
    assert dd(detail.text, "operator-last-login") == "—"

    account = fetch(Account, Account.phone == PHONE)
    membership = fetch(Membership, Membership.account_id == account.id)
    assert (account.name, account.must_change_password) == (NAME, True)
    assert (membership.org_id, membership.status.value) == (home_org.id, "active")
    assert membership.created_by == f"org_admin:{home_org.id}"
    assert saved.headers["Location"] == f"/org/operators/{membership.id}"

    sms = outbox.last(PHONE, "initial_password")
    password = sms["code"]
    assert f"初始密码为{password}" in sms["text"]
    assert [m["purpose"] for m in outbox.messages()] == ["initial_password"]

    # The operator's first login (phone + password + SMS code) goes to the password change.
    logged_in = login(browser, outbox, phone=PHONE, password=password)
    assert (logged_in.status_code, logged_in.headers["Location"]) == (302, "/password/change")
    changed = change_password(browser, current=password, new=NEW_PASSWORD)
    assert (changed.status_code, changed.headers["Location"]) == (302, "/portal")
    assert fetch(Account, Account.phone == PHONE).must_change_password is False
    last_login = admin.get(saved.headers["Location"])
    assert dd(last_login.text, "operator-last-login") != "—"

    masked = "137****7001"
    assert audit_rows("orgs.operator_added") == [
        (f"org_admin:{home_org.id}", f"王** {masked}", "success", home_org.id)
    ]
    assert audit_rows("orgs.initial_password_sent") == [("system", masked, "success", home_org.id)]


def test_real_name_mismatch_saves_nothing(admin, home_org, known, outbox):
    known("王大明", PHONE)
    before = people_counts()

    refused = add(admin)

    assert refused.status_code == 400
    assert form_error(refused.text) == MISMATCH
    assert people_counts() == before
    assert outbox.messages() == []
    assert 'value="王小明"' in refused.text  # what was typed stays for a second look
    assert audit_rows("orgs.operator_added") == [
        (f"org_admin:{home_org.id}", "王** 137****7001", "realname_mismatch", home_org.id)
    ]


def test_no_verdict_from_the_real_name_check_saves_nothing(
    admin, home_org, outbox, realname_outage
):
    realname_outage(PHONE)  # the carrier gives no verdict: "unknown", not a mismatch
    before = people_counts()

    refused = add(admin)

    assert refused.status_code == 503
    assert form_error(refused.text) == UNAVAILABLE
    assert people_counts() == before
    assert outbox.messages() == []
    assert audit_rows("orgs.operator_added")[-1][2] == "realname_unavailable"


def test_a_failed_initial_password_sms_saves_nothing(admin, home_org, known, settings):
    known(NAME, PHONE)
    settings.sms_outbox.mkdir()  # the outbox cannot be written: the gateway fails
    before = people_counts()

    refused = add(admin)

    assert refused.status_code == 503
    assert form_error(refused.text) == SMS_FAILED
    assert people_counts() == before
    assert audit_rows("orgs.operator_added")[-1][2] == "sms_unavailable"


def test_a_phone_that_already_is_an_active_operator_is_refused(admin, home_org, known, outbox):
    known(NAME, PHONE)
    assert add(admin).status_code == 302
    before = people_counts()

    again = add(admin)

    assert again.status_code == 409
    assert field_errors(again.text) == {"phone": ["该手机号已是本机构的操作员"]}
    assert people_counts() == before
    assert len(outbox.messages()) == 1


def test_a_disabled_operator_is_re_enabled_through_modify_not_added_again(admin, home_org, known):
    from tests.integration.console.helpers import membership_id

    known(NAME, PHONE)
    add(admin)
    ident = membership_id(PHONE, home_org.id)
    post_form(admin, f"/org/operators/{ident}/edit", {"phone": PHONE, "status": "disabled"})

    again = add(admin)

    assert again.status_code == 409
    assert field_errors(again.text) == {
        "phone": ["该手机号已是本机构的停用操作员，请通过“修改”重新启用"]
    }


def test_a_person_with_an_account_elsewhere_keeps_it_and_is_told_by_sms(
    admin, home_org, other_org, known, outbox, browser
):
    from tests.conftest import make_operator

    make_operator(other_org, name=NAME, phone=PHONE, first_login=False)
    known(NAME, PHONE)

    saved = add(admin)

    assert saved.status_code == 302
    assert flashes(admin.get(saved.headers["Location"]).text) == [
        "保存成功",
        "该手机号已有账户，已短信通知其使用现有密码登录",
    ]
    sms = outbox.last(PHONE)
    assert sms["purpose"] == "operator_added"
    assert "上海示例审计事务所有限公司" in sms["text"]
    # The same password works, now for both organisations.
    assert login(browser, outbox, phone=PHONE, password=PASSWORD).headers["Location"] == "/portal"


def test_an_account_opened_under_another_name_is_refused(admin, home_org, other_org, known):
    from tests.conftest import make_operator

    make_operator(other_org, name="王晓明", phone=PHONE, first_login=False)
    known(NAME, PHONE)
    before = people_counts()

    refused = add(admin)

    assert refused.status_code == 409
    assert field_errors(refused.text) == {
        "name": ["该手机号已登记的姓名与填写的姓名不一致，请确认信息是否填写正确。"]
    }
    assert people_counts() == before


@pytest.mark.parametrize(
    ("name", "phone", "errors"),
    [
        ("", PHONE, {"name": ["请输入姓名"]}),
        ("王" * 101, PHONE, {"name": ["姓名不能超过 100 字"]}),
        (NAME, "", {"phone": ["请输入手机号"]}),
        (NAME, "1370013700", {"phone": ["请输入 11 位手机号"]}),
        (NAME, "12700137001", {"phone": ["请输入 11 位手机号"]}),
        (NAME, "１３７００１３７００１", {"phone": ["请输入 11 位手机号"]}),
        (NAME, "13700137001\n", {}),  # stripped, then valid: the check runs
        (NAME, "13700137001x", {"phone": ["请输入 11 位手机号"]}),
        (NAME, "1" * 5000, {"phone": ["请输入 11 位手机号"]}),
    ],
)
def test_malformed_and_oversized_input_is_refused_next_to_its_field(
    admin, home_org, name, phone, errors
):
    before = people_counts()

    refused = add(admin, name=name, phone=phone)

    assert refused.status_code in (400, 503)
    assert field_errors(refused.text) == errors
    assert people_counts() == before


def test_a_name_with_control_characters_is_refused_by_the_service(app, home_org):
    from idp import db
    from idp.orgs import operators

    with pytest.raises(operators.OperatorError) as refused:
        operators.add_operator(db.session(), home_org, name="王\x00小明", phone=PHONE, actor="test")
    assert (refused.value.status, refused.value.field) == (400, "name")
    assert str(refused.value.message) == "姓名含有无效字符"


def test_a_body_over_the_size_limit_is_refused(admin, home_org):
    page = admin.get(NEW)
    before = people_counts()

    refused = admin.post(
        NEW, data={"csrf_token": csrf_token(page.text), "name": "王" * 70_000, "phone": PHONE}
    )

    assert refused.status_code == 413
    assert error_page(refused.text) == "提交的内容过大"
    assert people_counts() == before


def test_a_post_without_csrf_token_is_refused(admin, home_org, known):
    known(NAME, PHONE)
    before = people_counts()

    refused = admin.post(NEW, data={"name": NAME, "phone": PHONE})

    assert refused.status_code == 400
    assert error_page(refused.text) == "页面已过期，请刷新后重试"
    assert people_counts() == before
