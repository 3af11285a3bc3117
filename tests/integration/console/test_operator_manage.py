"""操作员管理 after 【增加】: the list (search, status filter, pages, masked phones), 【查询】,
【修改】 (only phone and status; everything else refused by the server) and 【删除】 (soft: the
record stays, tokens for this org are revoked at once, sessions and new logins end)."""

from __future__ import annotations

import re

import pytest

from tests.conftest import both_databases, make_operator
from tests.flows import (
    PASSWORD,
    REDIRECT_URI,
    Pkce,
    authorize_params,
    follow_to_code,
    login,
    token_request,
)
from tests.integration.auth.helpers import allow_resend
from tests.integration.console.helpers import (
    MISMATCH,
    READ_ONLY,
    UNAVAILABLE,
    any_csrf_token,
    audit_rows,
    dd,
    error_page,
    fetch,
    field_errors,
    flashes,
    form_error,
    post_form,
    row_ids,
)

NAME = "张三"
PHONE = "13800138000"
NEW_PHONE = "13600136000"


@pytest.fixture
def staff(app, home_org):
    """An active operator of the demo organisation who has changed the initial password."""
    account = make_operator(home_org, name=NAME, phone=PHONE, first_login=False)
    return account.memberships[0].id


def edit(admin, ident, **data):
    return post_form(admin, f"/org/operators/{ident}/edit", data)


def membership(ident):
    from idp.identity.models import Membership

    return fetch(Membership, Membership.id == ident)


def phone_of(ident):
    from idp.identity.models import Account

    return fetch(Account, Account.id == membership(ident).account_id).phone


# --- the list -------------------------------------------------------------------------------------


def test_list_shows_operators_with_masked_phones_and_the_manual_buttons(admin, staff):
    page = admin.get("/org/operators")

    assert page.status_code == 200
    assert row_ids(page.text, "operator") == [staff]
    assert "138****8000" in page.text
    assert PHONE not in page.text
    for label in ("增加", "查询", "修改", "删除"):  # button labels without the manual's 【】
        assert f">{label}</a>" in page.text
    assert "【" not in page.text
    assert 'aria-current="page">操作员管理</a>' in page.text


def test_list_searches_by_name_or_phone_filters_by_status_and_pages(admin, home_org):
    from idp import db
    from idp.orgs import operators

    idents = {}
    for n in range(23):
        account = make_operator(
            home_org, name=f"测试{n:02d}", phone=f"1390000{n:04d}", first_login=True
        )
        idents[n] = account.memberships[0].id
    operators.update_operator(db.session(), home_org, idents[5], status="disabled", actor="test")
    operators.delete_operator(db.session(), home_org, idents[6], actor="test")
    db.session().commit()

    first = admin.get("/org/operators")
    assert len(row_ids(first.text, "operator")) == 20
    assert "第 1 / 2 页，共 22 条" in first.text  # the deleted one is not listed by default
    assert row_ids(first.text, "operator")[0] == idents[22]  # newest first
    second = admin.get("/org/operators?page=2")
    assert len(row_ids(second.text, "operator")) == 2
    assert 'href="/org/operators?page=1" rel="prev"' in second.text

    assert row_ids(admin.get("/org/operators?q=测试07").text, "operator") == [idents[7]]
    assert row_ids(admin.get("/org/operators?q=00011").text, "operator") == [idents[11]]
    assert row_ids(admin.get("/org/operators?q=%25").text, "operator") == []  # LIKE escaped
    assert row_ids(admin.get("/org/operators?status=disabled").text, "operator") == [idents[5]]
    assert row_ids(admin.get("/org/operators?status=deleted").text, "operator") == [idents[6]]
    filtered = admin.get("/org/operators?status=active&q=测试1")
    assert sorted(row_ids(filtered.text, "operator")) == sorted(idents[n] for n in range(10, 20))


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("status=nonsense", "操作员状态无效"),
        ("page=0", "分页参数无效"),
        ("page=-3", "分页参数无效"),
        ("page=99999999", "分页参数无效"),
        ("q=" + "x" * 51, "查询条件不能超过 50 字"),
    ],
)
def test_list_refuses_malformed_filters(admin, staff, query, message):
    refused = admin.get(f"/org/operators?{query}")

    assert refused.status_code == 400
    assert error_page(refused.text) == message


def test_a_page_number_that_is_not_a_number_shows_the_first_page(admin, staff):
    page = admin.get("/org/operators?page=abc")

    assert page.status_code == 200
    assert row_ids(page.text, "operator") == [staff]


# --- 【查询】 ---------------------------------------------------------------------------------------


def test_detail_shows_the_operator_with_the_full_phone(admin, staff, home_org):
    page = admin.get(f"/org/operators/{staff}")

    assert page.status_code == 200
    assert dd(page.text, "operator-name") == NAME
    assert dd(page.text, "operator-phone") == PHONE
    assert dd(page.text, "operator-status") == "启用"
    assert dd(page.text, "operator-created-by") == "test"
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d", dd(page.text, "operator-created-at") or "")
    assert ">修改</a>" in page.text
    assert ">删除</a>" in page.text


def test_unknown_operator_is_404(admin, staff):
    assert admin.get("/org/operators/999999").status_code == 404
    assert error_page(admin.get("/org/operators/999999").text) == "操作员不存在"


# --- 【修改】 ---------------------------------------------------------------------------------------


def test_edit_page_offers_only_phone_and_status(admin, staff):
    page = admin.get(f"/org/operators/{staff}/edit")

    assert page.status_code == 200
    form = page.text[page.text.index('<form method="post"') :]
    form = form[: form.index("</form>")]
    assert sorted(set(re.findall(r'name="([a-z_]+)"', form))) == ["csrf_token", "phone", "status"]
    assert 'value="13800138000"' in form
    assert '<input checked id="status-0" name="status" type="radio" value="active">' in form
    assert "启用" in form
    assert "停用" in form
    assert dd(page.text, "operator-name") == NAME  # shown, read-only
    assert ">保存</button>" in page.text


def test_phone_change_is_checked_against_the_unchanged_name(admin, staff, known, home_org):
    known(NAME, NEW_PHONE)

    saved = edit(admin, staff, phone=NEW_PHONE, status="active")

    assert (saved.status_code, saved.headers["Location"]) == (302, f"/org/operators/{staff}")
    detail = admin.get(saved.headers["Location"])
    assert flashes(detail.text) == ["保存成功"]
    assert dd(detail.text, "operator-phone") == NEW_PHONE
    assert phone_of(staff) == NEW_PHONE
    (event,) = audit_rows("orgs.operator_updated")
    assert event == (
        f"org_admin:{home_org.id}",
        f"membership:{staff} 张* 138****8000",
        "success",
        home_org.id,
    )


def test_phone_change_with_a_mismatch_changes_nothing(admin, staff, known):
    known("李四", NEW_PHONE)

    refused = edit(admin, staff, phone=NEW_PHONE, status="disabled")

    assert refused.status_code == 400
    assert form_error(refused.text) == MISMATCH
    assert phone_of(staff) == PHONE
    assert membership(staff).status.value == "active"


def test_phone_change_without_a_verdict_changes_nothing(admin, staff, realname_outage):
    realname_outage(NEW_PHONE)
    refused = edit(admin, staff, phone=NEW_PHONE, status="active")

    assert refused.status_code == 503
    assert form_error(refused.text) == UNAVAILABLE
    assert phone_of(staff) == PHONE


def test_phone_of_another_account_is_refused(admin, staff, home_org, known):
    make_operator(home_org, name="李四", phone=NEW_PHONE, first_login=True)
    known(NAME, NEW_PHONE)

    refused = edit(admin, staff, phone=NEW_PHONE, status="active")

    assert refused.status_code == 409
    assert field_errors(refused.text) == {"phone": ["该手机号已被其他账户使用"]}
    assert phone_of(staff) == PHONE


def test_phone_of_an_operator_of_several_orgs_cannot_change_here(admin, staff, other_org, known):
    from idp import db
    from tests.conftest import enrol

    enrol(db.session(), other_org, name=NAME, phone=PHONE)
    db.session().commit()
    known(NAME, NEW_PHONE)

    refused = edit(admin, staff, phone=NEW_PHONE, status="active")

    assert refused.status_code == 409
    assert field_errors(refused.text) == {
        "phone": ["该操作员同时是其他机构的操作员，不能在此修改手机号码"]
    }
    assert phone_of(staff) == PHONE


@pytest.mark.parametrize(
    "extra",
    [
        {"name": "李四"},
        {"created_by": "someone"},
        {"created_at": "2020-01-01"},
        {"org_id": "2"},
        {"actor": "org_admin:999"},
        {"must_change_password": "0"},
    ],
)
def test_read_only_fields_are_refused_by_the_server(admin, staff, home_org, extra):
    refused = edit(admin, staff, phone=PHONE, status="disabled", **extra)

    assert refused.status_code == 400
    assert form_error(refused.text) == READ_ONLY
    saved = membership(staff)
    assert (saved.status.value, saved.created_by, saved.org_id) == ("active", "test", home_org.id)
    assert phone_of(staff) == PHONE
    assert audit_rows("orgs.operator_updated")[-1][2] == "read_only_field"


@pytest.mark.parametrize(
    ("data", "errors"),
    [
        ({"phone": PHONE, "status": "deleted"}, {"status": ["请选择操作员状态"]}),
        ({"phone": PHONE, "status": ""}, {"status": ["请选择操作员状态"]}),
        ({"phone": "12345", "status": "active"}, {"phone": ["请输入 11 位手机号"]}),
        ({"phone": "1" * 3000, "status": "active"}, {"phone": ["请输入 11 位手机号"]}),
    ],
)
def test_malformed_changes_are_refused_next_to_their_field(admin, staff, data, errors):
    refused = edit(admin, staff, **data)

    assert refused.status_code == 400
    assert field_errors(refused.text) == errors
    assert membership(staff).status.value == "active"


def test_the_service_refuses_statuses_other_than_active_and_disabled(app, home_org, staff):
    from idp import db
    from idp.orgs import operators

    with pytest.raises(operators.OperatorError) as refused:
        operators.update_operator(db.session(), home_org, staff, status="deleted", actor="t")
    assert str(refused.value.message) == "操作员状态只能为启用或停用"


def issue_tokens(browser, rp) -> dict:
    pkce = Pkce.new()
    params = authorize_params(rp.client_id, pkce)
    code = follow_to_code(browser, params)["code"]
    response = token_request(
        browser,
        {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": params["redirect_uri"],
            "code_verifier": pkce.verifier,
        },
        auth=rp.auth,
    )
    assert response.status_code == 200, response.text
    return response.json


def refresh(browser, rp, tokens):
    return token_request(
        browser,
        {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
        auth=rp.auth,
    )


def test_disabling_ends_sessions_and_tokens_and_enabling_restores_the_login(
    admin, staff, browser, outbox, rp
):
    assert login(browser, outbox, phone=PHONE, password=PASSWORD).status_code == 302
    tokens = issue_tokens(browser, rp)

    assert edit(admin, staff, phone=PHONE, status="disabled").status_code == 302

    assert membership(staff).status.value == "disabled"
    assert refresh(browser, rp, tokens).json["error"] == "invalid_grant"
    portal = browser.get("/portal")
    assert (portal.status_code, portal.headers["Location"]) == (302, "/login")
    detail = admin.get(f"/org/operators/{staff}")
    assert dd(detail.text, "operator-status") == "停用"

    assert edit(admin, staff, phone=PHONE, status="active").status_code == 302
    allow_resend(PHONE)
    assert login(browser, outbox, phone=PHONE, password=PASSWORD).headers["Location"] == "/portal"


@both_databases
def test_a_new_phone_ends_the_operators_sessions_codes_and_tokens(
    admin, staff, browser, outbox, rp, known
):
    """The old number may be lost or passed on: whatever it opened ends with the change."""
    from idp.audit.models import AuditEvent
    from idp.oidc.models import Token

    assert login(browser, outbox, phone=PHONE, password=PASSWORD).status_code == 302
    tokens = issue_tokens(browser, rp)
    pkce = Pkce.new()
    pending = follow_to_code(browser, authorize_params(rp.client_id, pkce))["code"]
    known(NAME, NEW_PHONE)

    assert edit(admin, staff, phone=NEW_PHONE, status="active").status_code == 302

    portal = browser.get("/portal")
    assert (portal.status_code, portal.headers.get("Location")) == (302, "/login")
    assert refresh(browser, rp, tokens).json["error"] == "invalid_grant"
    assert fetch(Token, Token.sid.is_not(None)).revoked_at is not None
    redeemed = token_request(
        browser,
        {
            "grant_type": "authorization_code",
            "code": pending,
            "redirect_uri": REDIRECT_URI,
            "code_verifier": pkce.verifier,
        },
        auth=rp.auth,
    )
    assert redeemed.json["error"] == "invalid_grant"
    assert fetch(AuditEvent, AuditEvent.action == "orgs.operator_updated").details == {
        "phone": "138****8000 -> 136****6000",
        "tokens_revoked": "1",
    }
    assert login(browser, outbox, phone=NEW_PHONE, password=PASSWORD).status_code == 302
    assert browser.get("/portal").status_code == 200


def test_saving_the_same_phone_ends_nothing(admin, staff, browser, outbox, rp):
    assert login(browser, outbox, phone=PHONE, password=PASSWORD).status_code == 302
    tokens = issue_tokens(browser, rp)

    assert edit(admin, staff, phone=PHONE, status="active").status_code == 302

    assert browser.get("/portal").status_code == 200
    assert refresh(browser, rp, tokens).status_code == 200


# --- 【删除】 ---------------------------------------------------------------------------------------


def test_delete_asks_for_confirmation_first(admin, staff):
    page = admin.get(f"/org/operators/{staff}/delete")

    assert page.status_code == 200
    assert "确定删除操作员 张三（138****8000）吗？" in page.text
    assert '<button type="submit" id="confirm-delete">删除</button>' in page.text
    assert membership(staff).status.value == "active"


def test_delete_revokes_tokens_ends_the_session_and_refuses_new_logins(
    admin, staff, browser, outbox, rp, home_org
):
    from idp.oidc.models import Token

    assert login(browser, outbox, phone=PHONE, password=PASSWORD).status_code == 302
    tokens = issue_tokens(browser, rp)
    sent_before = len(outbox.messages())

    deleted = post_form(admin, f"/org/operators/{staff}/delete", {})

    assert (deleted.status_code, deleted.headers["Location"]) == (302, "/org/operators")
    listing = admin.get("/org/operators")
    assert flashes(listing.text) == ["删除成功"]
    assert row_ids(listing.text, "operator") == []
    # The record stays, marked deleted, for the audit trail.
    gone = membership(staff)
    assert gone.status.value == "deleted"
    assert gone.deleted_at is not None
    assert fetch(Token, Token.sid.is_not(None)).revoked_at is not None
    assert row_ids(admin.get("/org/operators?status=deleted").text, "operator") == [staff]
    detail = admin.get(f"/org/operators/{staff}")
    assert dd(detail.text, "operator-status") == "已删除"
    assert "【修改】" not in detail.text

    # Refresh token refused, provider session gone, a new login refused: the code arrives, and
    # with it and the password the person learns the account was deleted.
    assert refresh(browser, rp, tokens).json["error"] == "invalid_grant"
    portal = browser.get("/portal")
    assert (portal.status_code, portal.headers["Location"]) == (302, "/login")
    token = any_csrf_token(browser)
    allow_resend(PHONE)
    assert (
        browser.post("/login/sms-code", data={"phone": PHONE, "csrf_token": token}).status_code
        == 200
    )
    assert len(outbox.messages()) == sent_before + 1
    refused = browser.post(
        "/login",
        data={
            "phone": PHONE,
            "password": PASSWORD,
            "sms_code": outbox.last(PHONE, "login")["code"],
            "csrf_token": token,
        },
    )
    assert refused.status_code == 403
    assert "账户已删除，请联系本单位管理员" in refused.text
    assert browser.get("/portal").status_code == 302

    (event,) = audit_rows("orgs.operator_deleted")
    assert event == (
        f"org_admin:{home_org.id}",
        f"membership:{staff} 张* 138****8000",
        "success",
        home_org.id,
    )


def test_deleted_operator_cannot_be_deleted_or_modified_again(admin, staff):
    post_form(admin, f"/org/operators/{staff}/delete", {})
    page = admin.get(f"/org/operators/{staff}/delete")
    assert '<p class="field-error" id="operator-deleted">该操作员已删除</p>' in page.text
    assert "confirm-delete" not in page.text

    token = any_csrf_token(admin)
    again = admin.post(f"/org/operators/{staff}/delete", data={"csrf_token": token})
    assert again.status_code == 409
    assert form_error(again.text) == "该操作员已删除"
    refused = admin.post(
        f"/org/operators/{staff}/edit",
        data={"csrf_token": token, "phone": PHONE, "status": "active"},
    )
    assert refused.status_code == 409
    assert form_error(refused.text) == "该操作员已删除"
    assert membership(staff).status.value == "deleted"


def test_a_deleted_operator_can_be_added_again(admin, staff, known, outbox, home_org):
    post_form(admin, f"/org/operators/{staff}/delete", {})
    known(NAME, PHONE)

    again = post_form(admin, "/org/operators/new", {"name": NAME, "phone": PHONE})

    assert (again.status_code, again.headers["Location"]) == (302, f"/org/operators/{staff}")
    back = membership(staff)
    assert (back.status.value, back.deleted_at) == ("active", None)
    assert outbox.last(PHONE)["purpose"] == "operator_added"  # the account kept its password
