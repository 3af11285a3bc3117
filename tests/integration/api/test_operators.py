"""操作员管理 through the management API: list, 【增加】, 【查询】, 【修改】, 【删除】 do what the
console pages do (the same rows, SMS and audit events, compared side by side), the refusals
change nothing, and a deleted operator's tokens, session and logins end."""

from __future__ import annotations

from typing import Any

import pytest
from flask import current_app

from tests.conftest import make_operator
from tests.flows import PASSWORD, token_request
from tests.integration.api.helpers import assert_problem, operator_tokens
from tests.integration.auth.helpers import allow_resend
from tests.integration.console.helpers import (
    MISMATCH,
    READ_ONLY,
    UNAVAILABLE,
    any_csrf_token,
    audit_rows,
    fetch,
    people_counts,
    post_form,
)

OPERATORS = "/api/v1/org/operators"
NAME = "张三"
PHONE = "13800138000"
NEW_PHONE = "13600136000"


@pytest.fixture
def staff(home_org) -> int:
    """An active operator of the demo organisation who has changed the initial password."""
    return make_operator(home_org, name=NAME, phone=PHONE, first_login=False).memberships[0].id


def membership(ident):
    from idp.identity.models import Membership

    return fetch(Membership, Membership.id == ident)


def account_of(phone):
    from idp.identity.models import Account

    return fetch(Account, Account.phone == phone)


def audit_since(mark: int) -> list[tuple[str, str, str, int | None]]:
    """(action, actor, result, org_id) of the audit events after the first ``mark`` ones."""
    from sqlalchemy import select

    from idp.audit.models import AuditEvent

    with current_app.extensions["idp.db"]() as session:
        rows = session.execute(
            select(AuditEvent.action, AuditEvent.actor, AuditEvent.result, AuditEvent.org_id)
            .order_by(AuditEvent.id)
            .offset(mark)
        )
        return [tuple(row) for row in rows]


def audit_count() -> int:
    from idp.audit.models import AuditEvent
    from tests.integration.console.helpers import count

    return count(AuditEvent)


def effects(phone: str) -> dict[str, Any]:
    """What an action left for one person, without what tells two people apart."""
    from sqlalchemy import select

    from idp.identity.models import Account, Membership

    with current_app.extensions["idp.db"]() as session:
        account, row = session.execute(
            select(Account, Membership)
            .join(Membership, Membership.account_id == Account.id)
            .where(Account.phone == phone)
        ).one()
        return {
            "must_change_password": account.must_change_password,
            "status": row.status.value,
            "created_by": row.created_by,
            "updated": row.updated_at is not None,
            "deleted": row.deleted_at is not None,
        }


def sms_purposes(outbox, phone: str) -> list[str]:
    return [m["purpose"] for m in outbox.messages() if m["phone"] == phone]


# --- the list and 【查询】 ---------------------------------------------------------------------


def test_list_searches_filters_pages_and_masks_phones(api, admin, home_org, staff):
    for n in range(3):
        make_operator(home_org, name=f"测试{n}", phone=f"1390000000{n}", first_login=True)

    listed = api.get(OPERATORS, headers=admin.headers)

    assert listed.status_code == 200
    assert listed.mimetype == "application/json"
    assert listed.headers["Cache-Control"] == "no-store"
    body = listed.json
    assert (body["total"], body["page"], body["per_page"], body["pages"]) == (4, 1, 20, 1)
    first = body["items"][-1]
    assert first == {
        "id": staff,
        "name": NAME,
        "masked_phone": "138****8000",
        "status": "active",
        "created_by": "test",
        "created_at": first["created_at"],
        "last_login_at": None,
    }
    assert PHONE not in listed.text
    found = api.get(OPERATORS, query_string={"query": "测试1"}, headers=admin.headers).json
    assert [item["name"] for item in found["items"]] == ["测试1"]
    by_phone = api.get(OPERATORS, query_string={"query": "8000"}, headers=admin.headers).json
    assert [item["id"] for item in by_phone["items"]] == [staff]
    paged = api.get(OPERATORS, query_string={"per_page": 3, "page": 2}, headers=admin.headers)
    assert (paged.json["pages"], len(paged.json["items"])) == (2, 1)


def test_status_filter_and_deleted_operators(api, admin, staff):
    api.delete(f"{OPERATORS}/{staff}", headers=admin.headers)

    assert api.get(OPERATORS, headers=admin.headers).json["items"] == []
    deleted = api.get(OPERATORS, query_string={"status": "deleted"}, headers=admin.headers)
    assert [item["id"] for item in deleted.json["items"]] == [staff]
    active = api.get(OPERATORS, query_string={"status": "active"}, headers=admin.headers)
    assert active.json["total"] == 0


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"status": "gone"}, "status"),
        ({"status": ""}, "status"),
        ({"page": "0"}, "page"),
        ({"page": "abc"}, "page"),
        ({"page": "-1"}, "page"),
        ({"per_page": "101"}, "per_page"),
        ({"query": "x" * 51}, "query"),
        ({"query": "a\x00b"}, "query"),
        ({"page": ["1", "2"]}, "page"),
    ],
)
def test_bad_list_parameters_are_refused(api, admin, staff, query, field):
    body = assert_problem(
        api.get(OPERATORS, query_string=query, headers=admin.headers), 400, "invalid_parameter"
    )
    assert body["field"] == field


def test_detail_has_the_full_phone(api, admin, staff):
    detail = api.get(f"{OPERATORS}/{staff}", headers=admin.headers)

    assert detail.status_code == 200
    assert detail.json["phone"] == PHONE
    assert detail.json["masked_phone"] == "138****8000"
    assert (detail.json["status"], detail.json["deleted_at"]) == ("active", None)


@pytest.mark.parametrize("ident", ["999999", "0", str(2**31), "99999999999999999999999"])
def test_unknown_operator_is_404(api, admin, staff, ident):
    assert_problem(
        api.get(f"{OPERATORS}/{ident}", headers=admin.headers),
        404,
        "operator_not_found",
        "操作员不存在",
    )


# --- 【增加】 -----------------------------------------------------------------------------------


def test_add_does_what_the_page_does(api, admin, admin_browser, home_org, known, outbox):
    known("王小明", "13700137001")
    known("王小红", "13700137002")
    mark = audit_count()
    saved = post_form(
        admin_browser, "/org/operators/new", {"name": "王小明", "phone": "13700137001"}
    )
    assert saved.status_code == 302
    by_page = audit_since(mark)
    mark = audit_count()

    added = api.post(
        OPERATORS, json={"name": "王小红", "phone": "13700137002"}, headers=admin.headers
    )

    assert added.status_code == 201, added.text
    operator = added.json["operator"]
    assert added.headers["Location"] == f"{OPERATORS}/{operator['id']}"
    assert added.json["initial_password_sent"] is True
    assert (operator["name"], operator["phone"], operator["status"]) == (
        "王小红",
        "13700137002",
        "active",
    )
    assert operator["created_by"] == f"org_admin:{home_org.id}"
    assert (
        effects("13700137002")
        == effects("13700137001")
        == {
            "must_change_password": True,
            "status": "active",
            "created_by": f"org_admin:{home_org.id}",
            "updated": False,
            "deleted": False,
        }
    )
    assert audit_since(mark) == by_page
    assert [a for a, *_ in by_page] == ["orgs.initial_password_sent", "orgs.operator_added"]
    assert (
        sms_purposes(outbox, "13700137002")
        == sms_purposes(outbox, "13700137001")
        == ["initial_password"]
    )
    assert api.get(added.headers["Location"], headers=admin.headers).json == operator


def test_add_shows_the_real_name_mismatch_and_saves_nothing(api, admin, home_org, known, outbox):
    known("王大明", "13700137001")
    before = people_counts()

    refused = api.post(
        OPERATORS, json={"name": "王小明", "phone": "13700137001"}, headers=admin.headers
    )

    assert_problem(refused, 400, "realname_mismatch", MISMATCH)
    assert people_counts() == before
    assert outbox.messages() == []
    assert audit_rows("orgs.operator_added") == [
        (f"org_admin:{home_org.id}", "王** 137****7001", "realname_mismatch", home_org.id)
    ]


def test_add_without_a_verdict_is_503_and_saves_nothing(
    api, admin, home_org, outbox, realname_outage
):
    realname_outage("13700137001")
    before = people_counts()

    refused = api.post(
        OPERATORS, json={"name": "王小明", "phone": "13700137001"}, headers=admin.headers
    )

    assert_problem(refused, 503, "realname_unavailable", UNAVAILABLE)
    assert people_counts() == before
    assert audit_rows("orgs.operator_added")[-1][2] == "realname_unavailable"


def test_add_of_an_existing_operator_is_409(api, admin, staff, known):
    known(NAME, PHONE)
    before = people_counts()

    refused = api.post(OPERATORS, json={"name": NAME, "phone": PHONE}, headers=admin.headers)

    body = assert_problem(refused, 409, "operator_exists", "该手机号已是本机构的操作员")
    assert body["field"] == "phone"
    assert people_counts() == before


@pytest.mark.parametrize(
    ("body", "code", "field", "detail"),
    [
        ({"phone": "13700137001"}, "invalid_operator", "name", "请输入姓名"),
        ({"name": "王小明"}, "invalid_operator", "phone", "请输入 11 位手机号"),
        (
            {"name": "王小明", "phone": "1370013700"},
            "invalid_operator",
            "phone",
            "请输入 11 位手机号",
        ),
        ({"name": " ", "phone": "13700137001"}, "invalid_operator", "name", "请输入姓名"),
        (
            {"name": "王" * 101, "phone": "13700137001"},
            "invalid_parameter",
            "name",
            "name 不能超过 100 个字符",
        ),
        (
            {"name": "王小明", "phone": "1" * 3000},
            "invalid_parameter",
            "phone",
            "phone 不能超过 11 个字符",
        ),
        ({"name": 5, "phone": "13700137001"}, "invalid_parameter", "name", "name 须为字符串"),
        ({"name": None, "phone": "13700137001"}, "invalid_parameter", "name", "name 须为字符串"),
        ({"name": ["王"], "phone": "13700137001"}, "invalid_parameter", "name", "name 须为字符串"),
        (
            {"name": "王\x00明", "phone": "13700137001"},
            "invalid_parameter",
            "name",
            "name 含有无效字符",
        ),
        (
            {"name": "王\ud800", "phone": "13700137001"},
            "invalid_parameter",
            "name",
            "name 含有无效字符",
        ),
        (
            {"name": "王小明", "phone": "13700137001", "status": "active"},
            "unknown_field",
            "status",
            "不支持的字段：status",
        ),
    ],
)
def test_add_refuses_bad_input_clearly_and_saves_nothing(
    api, admin, known, outbox, body, code, field, detail
):
    known("王小明", "13700137001")
    before = people_counts()

    refused = api.post(OPERATORS, json=body, headers=admin.headers)

    problem = assert_problem(refused, 400, code, detail)
    assert problem["field"] == field
    assert people_counts() == before
    assert outbox.messages() == []


@pytest.mark.parametrize(
    ("data", "content_type", "status", "code"),
    [
        (b"{not json", "application/json", 400, "malformed_json"),
        (b"", "application/json", 400, "malformed_json"),
        (b'["a"]', "application/json", 400, "malformed_json"),
        (b'"text"', "application/json", 400, "malformed_json"),
        (b"null", "application/json", 400, "malformed_json"),
        (b"[" * 5_000 + b"]" * 5_000, "application/json", 400, "malformed_json"),
        (b"\xff\xfe", "application/json", 400, "malformed_json"),
        (b'{"name": "x", "phone": "13700137001"}', "text/plain", 415, "unsupported_media_type"),
        (
            b"name=x&phone=13700137001",
            "application/x-www-form-urlencoded",
            415,
            "unsupported_media_type",
        ),
        (
            b'{"name": "' + b"x" * 20_000 + b'"}',
            "application/json",
            413,
            "request_entity_too_large",
        ),
    ],
    ids=[
        "syntax",
        "empty",
        "array",
        "string",
        "null",
        "deep",
        "bytes",
        "text",
        "form",
        "too-large",
    ],
)
def test_malformed_bodies_are_refused_clearly_and_save_nothing(
    api, admin, known, data, content_type, status, code
):
    known("x", "13700137001")
    before = people_counts()

    refused = api.post(OPERATORS, data=data, content_type=content_type, headers=admin.headers)

    assert_problem(refused, status, code)
    assert refused.json["detail"]
    assert people_counts() == before


def test_no_body_at_all_is_refused(api, admin):
    assert_problem(api.post(OPERATORS, headers=admin.headers), 415, "unsupported_media_type")


# --- 【修改】 -----------------------------------------------------------------------------------


def test_phone_change_does_what_the_page_does(api, admin, admin_browser, home_org, known):
    other = make_operator(home_org, name="李四", phone="13900139000", first_login=False)
    other_id = other.memberships[0].id
    known("李四", "13600136001")
    known(NAME, NEW_PHONE)
    mark = audit_count()
    edited = post_form(
        admin_browser,
        f"/org/operators/{other_id}/edit",
        {"phone": "13600136001", "status": "active"},
    )
    assert edited.status_code == 302
    by_page = audit_since(mark)
    staff = make_operator(home_org, name=NAME, phone=PHONE, first_login=False).memberships[0].id
    mark = audit_count()

    changed = api.patch(f"{OPERATORS}/{staff}", json={"phone": NEW_PHONE}, headers=admin.headers)

    assert changed.status_code == 200, changed.text
    assert (changed.json["phone"], changed.json["status"]) == (NEW_PHONE, "active")
    assert changed.json["updated_at"] is not None
    assert account_of(NEW_PHONE).name == NAME
    assert effects(NEW_PHONE) == effects("13600136001")
    assert (
        audit_since(mark)
        == by_page
        == [("orgs.operator_updated", f"org_admin:{home_org.id}", "success", home_org.id)]
    )


def test_disabling_does_what_the_page_does_and_ends_the_operators_tokens(
    app, api, admin, admin_browser, home_org, api_rp, outbox, staff
):
    other = make_operator(home_org, name="李四", phone="13900139000", first_login=False)
    other_id = other.memberships[0].id
    post_form(
        admin_browser,
        f"/org/operators/{other_id}/edit",
        {"phone": "13900139000", "status": "disabled"},
    )
    operator = operator_tokens(app.test_client(), outbox, api_rp, phone=PHONE, password=PASSWORD)

    changed = api.patch(f"{OPERATORS}/{staff}", json={"status": "disabled"}, headers=admin.headers)

    assert changed.status_code == 200
    assert changed.json["status"] == "disabled"
    assert effects(PHONE) == effects("13900139000")
    assert api.get("/oauth/userinfo", headers=operator.headers).status_code == 401
    again = api.patch(f"{OPERATORS}/{staff}", json={"status": "active"}, headers=admin.headers)
    assert again.json["status"] == "active"


def test_an_empty_change_changes_nothing(api, admin, staff):
    unchanged = api.patch(f"{OPERATORS}/{staff}", json={}, headers=admin.headers)

    assert unchanged.status_code == 200
    assert unchanged.json["updated_at"] is None
    assert membership(staff).updated_at is None


@pytest.mark.parametrize(
    "extra",
    [
        {"name": "李四"},
        {"created_by": "someone"},
        {"created_at": "2020-01-01T00:00:00Z"},
        {"org_id": 2},
        {"id": 5},
        {"actor": "org_admin:999"},
        {"must_change_password": False},
        {"deleted_at": None},
    ],
)
def test_read_only_fields_are_refused_and_nothing_changes(api, admin, staff, home_org, extra):
    refused = api.patch(
        f"{OPERATORS}/{staff}", json={"status": "disabled", **extra}, headers=admin.headers
    )

    assert_problem(refused, 400, "read_only_field", READ_ONLY)
    saved = membership(staff)
    assert (saved.status.value, saved.created_by, saved.org_id) == ("active", "test", home_org.id)
    assert (account_of(PHONE).name, saved.updated_at) == (NAME, None)
    # Recorded as the org admin's refused attempt, never under a posted actor.
    assert audit_rows("orgs.operator_updated")[-1] == (
        f"org_admin:{home_org.id}",
        f"membership:{staff}",
        "read_only_field",
        home_org.id,
    )


@pytest.mark.parametrize(
    ("body", "status", "code", "field"),
    [
        ({"status": "deleted"}, 400, "invalid_operator", "status"),
        ({"status": ""}, 400, "invalid_operator", "status"),
        ({"status": True}, 400, "invalid_parameter", "status"),
        ({"status": None}, 400, "invalid_parameter", "status"),
        ({"phone": "12345"}, 400, "invalid_operator", "phone"),
        ({"phone": 13600136000}, 400, "invalid_parameter", "phone"),
        ({"phone": "1" * 12}, 400, "invalid_parameter", "phone"),
    ],
)
def test_bad_changes_are_refused_and_nothing_changes(api, admin, staff, body, status, code, field):
    refused = api.patch(f"{OPERATORS}/{staff}", json=body, headers=admin.headers)

    assert assert_problem(refused, status, code)["field"] == field
    assert membership(staff).status.value == "active"
    assert account_of(PHONE).phone == PHONE


def test_phone_change_with_a_mismatch_or_no_verdict_changes_nothing(
    api, admin, staff, known, settings
):
    known("李四", NEW_PHONE)
    outage = settings.realname_sandbox_file.read_text(encoding="utf-8")
    settings.realname_sandbox_file.write_text(f"{outage}!unavailable,{NEW_PHONE}\n")
    refused = api.patch(
        f"{OPERATORS}/{staff}",
        json={"phone": NEW_PHONE, "status": "disabled"},
        headers=admin.headers,
    )
    assert_problem(refused, 503, "realname_unavailable", UNAVAILABLE)
    settings.realname_sandbox_file.write_text(outage)  # the carrier answers again
    refused = api.patch(
        f"{OPERATORS}/{staff}",
        json={"phone": NEW_PHONE, "status": "disabled"},
        headers=admin.headers,
    )
    assert_problem(refused, 400, "realname_mismatch", MISMATCH)
    assert account_of(PHONE).phone == PHONE
    assert membership(staff).status.value == "active"


def test_phone_of_another_account_is_409(api, admin, staff, home_org, known):
    make_operator(home_org, name="李四", phone=NEW_PHONE, first_login=True)
    known(NAME, NEW_PHONE)

    refused = api.patch(f"{OPERATORS}/{staff}", json={"phone": NEW_PHONE}, headers=admin.headers)

    assert_problem(refused, 409, "phone_taken", "该手机号已被其他账户使用")
    assert account_of(PHONE).phone == PHONE


# --- 【删除】 -----------------------------------------------------------------------------------


def test_delete_does_what_the_page_does(api, admin, admin_browser, home_org, staff):
    other = make_operator(home_org, name="李四", phone="13900139000", first_login=False)
    mark = audit_count()
    assert (
        post_form(admin_browser, f"/org/operators/{other.memberships[0].id}/delete", {}).status_code
        == 302
    )
    by_page = audit_since(mark)
    mark = audit_count()

    deleted = api.delete(f"{OPERATORS}/{staff}", headers=admin.headers)

    assert deleted.status_code == 200
    assert (deleted.json["id"], deleted.json["status"]) == (staff, "deleted")
    assert deleted.json["deleted_at"] is not None
    assert (
        effects(PHONE)
        == effects("13900139000")
        == {
            "must_change_password": False,
            "status": "deleted",
            "created_by": "test",
            "updated": True,
            "deleted": True,
        }
    )
    assert (
        audit_since(mark)
        == by_page
        == [("orgs.operator_deleted", f"org_admin:{home_org.id}", "success", home_org.id)]
    )


def test_a_deleted_operators_tokens_session_and_logins_end(app, api, admin, staff, api_rp, outbox):
    browser = app.test_client()
    operator = operator_tokens(browser, outbox, api_rp, phone=PHONE, password=PASSWORD)
    assert api.get("/oauth/userinfo", headers=operator.headers).status_code == 200

    assert api.delete(f"{OPERATORS}/{staff}", headers=admin.headers).status_code == 200

    assert api.get("/oauth/userinfo", headers=operator.headers).status_code == 401
    refreshed = token_request(
        api,
        {"grant_type": "refresh_token", "refresh_token": operator.refresh_token},
        auth=(api_rp.client_id, api_rp.secret),
    )
    assert refreshed.json["error"] == "invalid_grant"
    portal = browser.get("/portal")
    assert (portal.status_code, portal.headers["Location"]) == (302, "/login")
    # A new login is refused: the code arrives, and with it and the password the form says
    # the account was deleted.
    sent_before = len(outbox.messages())
    token = any_csrf_token(browser)
    allow_resend(PHONE)
    browser.post("/login/sms-code", data={"phone": PHONE, "csrf_token": token})
    assert len(outbox.messages()) == sent_before + 1
    code = outbox.last(PHONE, "login")["code"]
    refused = browser.post(
        "/login",
        data={"phone": PHONE, "password": PASSWORD, "sms_code": code, "csrf_token": token},
    )
    assert refused.status_code == 403
    assert "账户已删除，请联系本单位管理员" in refused.text


def test_deleting_twice_is_409(api, admin, staff):
    api.delete(f"{OPERATORS}/{staff}", headers=admin.headers)

    again = api.delete(f"{OPERATORS}/{staff}", headers=admin.headers)

    assert_problem(again, 409, "operator_deleted", "该操作员已删除")
    refused = api.patch(f"{OPERATORS}/{staff}", json={"status": "active"}, headers=admin.headers)
    assert_problem(refused, 409, "operator_deleted")
    assert membership(staff).status.value == "deleted"


@pytest.fixture
def two_mismatches(settings_overrides: dict[str, object]) -> None:
    settings_overrides["realname_admin_mismatch_limit"] = 2


@pytest.mark.usefixtures("two_mismatches")
def test_the_api_shares_the_admins_real_name_limit_with_the_console(
    api, admin, admin_browser, home_org, staff, outbox
):
    """Adding and phone changes through the API count against the same per-admin limit as the
    console pages; over it the vendor is not asked and nothing changes."""
    mismatched = api.post(
        OPERATORS, json={"name": "王小明", "phone": "13700137011"}, headers=admin.headers
    )
    assert_problem(mismatched, 400, "realname_mismatch", MISMATCH)
    page = post_form(
        admin_browser, "/org/operators/new", {"name": "王小明", "phone": "13700137012"}
    )
    assert MISMATCH in page.text
    before = people_counts()

    added = api.post(
        OPERATORS, json={"name": "王小明", "phone": "13700137013"}, headers=admin.headers
    )
    changed = api.patch(
        f"{OPERATORS}/{staff}", json={"phone": "13700137014"}, headers=admin.headers
    )

    for refused in (added, changed):
        assert_problem(refused, 429, "realname_limited", "手机二要素校验次数过多，请稍后再试")
    assert people_counts() == before
    assert len(audit_rows("orgs.realname_limited")) == 2
