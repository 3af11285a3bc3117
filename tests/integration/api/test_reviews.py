"""用户审核 through the management API: the list and its filter, a request's details, 通过 and
驳回 doing what the console pages do (compared side by side), and the refusals (decided or
expired requests, a missing or oversized reason, malformed bodies) changing nothing."""

from __future__ import annotations

import pytest
from flask import current_app
from sqlalchemy import select

from tests.integration.api.helpers import assert_problem
from tests.integration.console.helpers import (
    add_join_request,
    age_join_request,
    fetch,
    people_counts,
    post_form,
)

REVIEWS = "/api/v1/org/reviews"
NAME = "孙八"
PHONE = "13300133000"


@pytest.fixture
def pending(home_org) -> int:
    return add_join_request(home_org.id, name=NAME, phone=PHONE)


def request_state(ident) -> tuple[str, str, bool, str]:
    from idp.identity.models import JoinRequest

    row = fetch(JoinRequest, JoinRequest.id == ident)
    return row.status.value, row.reason, row.decided_at is not None, row.decided_by


def audit_since(mark: int) -> list[tuple[str, str, str, int | None]]:
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


def operator_state(phone: str) -> tuple[str, str, bool]:
    from idp.identity.models import Account, Membership

    with current_app.extensions["idp.db"]() as session:
        account, row = session.execute(
            select(Account, Membership)
            .join(Membership, Membership.account_id == Account.id)
            .where(Account.phone == phone)
        ).one()
        return row.status.value, row.created_by, account.must_change_password


def test_list_shows_pending_requests_by_default_and_filters(api, admin, home_org, pending):
    decided = add_join_request(home_org.id, name="周九", phone="13300133001")
    api.post(f"{REVIEWS}/{decided}/reject", json={"reason": "重复申请"}, headers=admin.headers)

    listed = api.get(REVIEWS, headers=admin.headers)

    assert listed.status_code == 200
    (item,) = listed.json["items"]
    assert item == {
        "id": pending,
        "name": NAME,
        "masked_phone": "133****3000",
        "status": "pending",
        "reason": "",
        "created_at": item["created_at"],
        "expires_at": item["expires_at"],
        "decided_at": None,
        "decided_by": "",
    }
    assert PHONE not in listed.text
    rejected = api.get(REVIEWS, query_string={"status": "rejected"}, headers=admin.headers).json
    assert [(i["id"], i["reason"]) for i in rejected["items"]] == [(decided, "重复申请")]
    everything = api.get(REVIEWS, query_string={"status": "all"}, headers=admin.headers).json
    assert [i["id"] for i in everything["items"]] == [decided, pending]
    refused = api.get(REVIEWS, query_string={"status": "bogus"}, headers=admin.headers)
    assert assert_problem(refused, 400, "invalid_parameter")["field"] == "status"


def test_detail_has_the_full_phone(api, admin, pending):
    detail = api.get(f"{REVIEWS}/{pending}", headers=admin.headers)

    assert detail.status_code == 200
    assert (detail.json["phone"], detail.json["status"]) == (PHONE, "pending")


def test_approve_does_what_the_page_does(api, admin, admin_browser, home_org, pending, outbox):
    by_page_id = add_join_request(home_org.id, name="周九", phone="13300133001")
    mark = audit_count()
    assert post_form(admin_browser, f"/org/reviews/{by_page_id}/approve", {}).status_code == 302
    by_page = audit_since(mark)
    mark = audit_count()

    approved = api.post(f"{REVIEWS}/{pending}/approve", headers=admin.headers)

    assert approved.status_code == 200, approved.text
    assert approved.json["initial_password_sent"] is True
    operator = approved.json["operator"]
    assert (operator["name"], operator["phone"], operator["status"]) == (NAME, PHONE, "active")
    actor = f"org_admin:{home_org.id}"
    assert operator_state(PHONE) == operator_state("13300133001") == ("active", actor, True)
    assert request_state(pending)[::2] == request_state(by_page_id)[::2] == ("approved", True)
    assert request_state(pending)[3] == actor
    assert audit_since(mark) == by_page
    assert [action for action, *_ in by_page] == [
        "orgs.initial_password_sent",
        "orgs.operator_added",
        "orgs.join_approved",
    ]
    assert outbox.last(PHONE, "initial_password")["code"]
    detail = api.get(f"/api/v1/org/operators/{operator['id']}", headers=admin.headers)
    assert detail.json == operator


def test_reject_does_what_the_page_does(api, admin, admin_browser, home_org, pending, outbox):
    by_page_id = add_join_request(home_org.id, name="周九", phone="13300133001")
    mark = audit_count()
    rejected_by_page = post_form(
        admin_browser, f"/org/reviews/{by_page_id}/reject", {"reason": "信息 不符"}
    )
    assert rejected_by_page.status_code == 302
    by_page = audit_since(mark)
    mark = audit_count()

    rejected = api.post(
        f"{REVIEWS}/{pending}/reject", json={"reason": "信息\n不符"}, headers=admin.headers
    )

    assert rejected.status_code == 200, rejected.text
    assert (rejected.json["status"], rejected.json["reason"]) == ("rejected", "信息 不符")
    assert request_state(pending)[:3] == request_state(by_page_id)[:3]
    assert audit_since(mark) == by_page
    assert "信息 不符" in outbox.last(PHONE, "join_rejected")["text"]
    assert people_counts()["Account"] == 0


def test_decided_and_expired_requests_cannot_be_decided_again(
    api, admin, home_org, pending, outbox
):
    api.post(f"{REVIEWS}/{pending}/reject", json={"reason": "重复申请"}, headers=admin.headers)
    aged = add_join_request(home_org.id, name="周九", phone="13300133001")
    age_join_request(aged)
    sent = len(outbox.messages())
    before = people_counts()

    for ident, code, detail in [
        (pending, "join_request_decided", "该申请已处理，不能重复操作"),
        (aged, "join_request_expired", "该申请已过期"),
    ]:
        approved = api.post(f"{REVIEWS}/{ident}/approve", headers=admin.headers)
        assert_problem(approved, 409, code, detail)
        rejected = api.post(
            f"{REVIEWS}/{ident}/reject", json={"reason": "再驳回"}, headers=admin.headers
        )
        assert_problem(rejected, 409, code, detail)

    assert people_counts() == before
    assert len(outbox.messages()) == sent
    assert request_state(pending)[:2] == ("rejected", "重复申请")
    assert api.get(f"{REVIEWS}/{aged}", headers=admin.headers).json["status"] == "expired"


@pytest.mark.parametrize(
    ("body", "code", "detail"),
    [
        ({}, "invalid_join_request", "请填写驳回原因"),
        ({"reason": "  \n "}, "invalid_join_request", "请填写驳回原因"),
        ({"reason": "长" * 201}, "invalid_parameter", "reason 不能超过 200 个字符"),
        ({"reason": 5}, "invalid_parameter", "reason 须为字符串"),
        ({"reason": "a\x00b"}, "invalid_parameter", "reason 含有无效字符"),
        ({"reason": "x", "status": "approved"}, "unknown_field", "不支持的字段：status"),
    ],
)
def test_bad_rejections_are_refused_and_change_nothing(
    api, admin, pending, outbox, body, code, detail
):
    refused = api.post(f"{REVIEWS}/{pending}/reject", json=body, headers=admin.headers)

    assert_problem(refused, 400, code, detail)
    assert request_state(pending) == ("pending", "", False, "")
    assert outbox.messages() == []


def test_malformed_rejection_bodies_are_refused(api, admin, pending):
    for data, content_type, status, code in [
        (b"[]", "application/json", 400, "malformed_json"),
        (b"reason=x", "application/x-www-form-urlencoded", 415, "unsupported_media_type"),
        (
            b'{"reason": "' + b"x" * 17_000 + b'"}',
            "application/json",
            413,
            "request_entity_too_large",
        ),
    ]:
        refused = api.post(
            f"{REVIEWS}/{pending}/reject",
            data=data,
            content_type=content_type,
            headers=admin.headers,
        )
        assert_problem(refused, status, code)
    assert request_state(pending)[0] == "pending"


def test_unknown_requests_are_404(api, admin, pending):
    for ident in (pending + 100, 2**40):
        for method, url in [
            ("GET", f"{REVIEWS}/{ident}"),
            ("POST", f"{REVIEWS}/{ident}/approve"),
        ]:
            response = api.open(url, method=method, headers=admin.headers)
            assert_problem(response, 404, "join_request_not_found", "申请不存在")
