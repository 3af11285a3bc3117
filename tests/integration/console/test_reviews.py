"""用户审核 from the org admin's side: the list and its filter, expiry after
``IDP_JOIN_REQUEST_TTL``, and the refusals of 通过 / 驳回 (decided or expired requests, a missing
or oversized reason, a failed initial-password SMS), each changing nothing; a rejection's SMS is
queued, and its failed delivery shows in the org's audit log. The /join page is in test_join.py."""

from __future__ import annotations

from datetime import timedelta

import pytest
from flask import current_app

from idp.db import utcnow
from tests.conftest import DEMO_USCC, drain_sms_queue, make_operator
from tests.integration.console.helpers import (
    SMS_FAILED,
    add_join_request,
    age_join_request,
    any_csrf_token,
    audit_rows,
    dd,
    error_page,
    fetch,
    field_errors,
    form_error,
    people_counts,
    post_form,
    row_ids,
)

NAME = "孙八"
PHONE = "13300133000"


@pytest.fixture
def pending(home_org) -> int:
    return add_join_request(home_org.id, name=NAME, phone=PHONE)


def request_row(ident):
    from idp.identity.models import JoinRequest

    return fetch(JoinRequest, JoinRequest.id == ident)


def test_list_shows_pending_requests_by_default_and_filters(admin, home_org, pending):
    decided = add_join_request(home_org.id, name="周九", phone="13300133001")
    post_form(admin, f"/org/reviews/{decided}/reject", {"reason": "重复申请"})

    assert row_ids(admin.get("/org/reviews").text, "join-request") == [pending]
    assert row_ids(admin.get("/org/reviews?status=rejected").text, "join-request") == [decided]
    assert row_ids(admin.get("/org/reviews?status=").text, "join-request") == [decided, pending]
    page = admin.get("/org/reviews")
    assert "待审核" in page.text
    assert f'href="/org/reviews/{pending}/approve">通过</a>' in page.text
    assert f'href="/org/reviews/{pending}/reject">驳回</a>' in page.text
    refused = admin.get("/org/reviews?status=bogus")
    assert (refused.status_code, error_page(refused.text)) == (400, "申请状态无效")


def test_expired_requests_are_shown_as_expired_and_cannot_be_decided(
    admin, home_org, pending, outbox
):
    age_join_request(pending)
    page = admin.get(f"/org/reviews/{pending}/approve")
    assert dd(page.text, "applicant-status") == "已过期"
    assert "confirm-approve" not in page.text

    token = any_csrf_token(admin)
    approved = admin.post(f"/org/reviews/{pending}/approve", data={"csrf_token": token})
    rejected = admin.post(
        f"/org/reviews/{pending}/reject", data={"csrf_token": token, "reason": "过期"}
    )

    for refused in (approved, rejected):
        assert refused.status_code == 409
        assert form_error(refused.text) == "该申请已过期"
    assert row_ids(admin.get("/org/reviews").text, "join-request") == []
    assert row_ids(admin.get("/org/reviews?status=expired").text, "join-request") == [pending]
    assert request_row(pending).status.value == "expired"
    assert people_counts()["Account"] == 0
    assert outbox.messages() == []
    assert audit_rows("orgs.join_expired") == [
        ("system", f"join_request:{pending} 孙* 133****3000", "success", home_org.id)
    ]
    assert [r[2] for r in audit_rows("orgs.join_approved")] == ["join_request_expired"]


def test_a_decided_request_cannot_be_decided_again(admin, pending, outbox):
    assert post_form(admin, f"/org/reviews/{pending}/approve", {}).status_code == 302
    token = any_csrf_token(admin)
    sent = len(outbox.messages())

    again = admin.post(f"/org/reviews/{pending}/approve", data={"csrf_token": token})
    reject = admin.post(
        f"/org/reviews/{pending}/reject", data={"csrf_token": token, "reason": "改主意了"}
    )

    for refused in (again, reject):
        assert refused.status_code == 409
        assert form_error(refused.text) == "该申请已处理，不能重复操作"
    assert request_row(pending).status.value == "approved"
    assert len(outbox.messages()) == sent


@pytest.mark.parametrize(
    ("reason", "errors"),
    [
        ("", {"reason": ["请填写驳回原因"]}),
        ("   ", {"reason": ["请填写驳回原因"]}),
        ("原" * 201, {"reason": ["驳回原因不能超过 200 字"]}),
    ],
)
def test_reject_needs_a_reason_of_at_most_200_characters(admin, pending, outbox, reason, errors):
    refused = post_form(admin, f"/org/reviews/{pending}/reject", {"reason": reason})

    assert refused.status_code == 400
    assert field_errors(refused.text) == errors
    assert request_row(pending).status.value == "pending"
    assert outbox.messages() == []


def test_the_service_refuses_a_missing_or_oversized_reason(app, home_org, pending):
    from idp import db
    from idp.orgs import reviews

    for reason in ("", "原" * 201, None):
        with pytest.raises(reviews.JoinRequestError) as refused:
            reviews.reject(db.session(), home_org, pending, reason=reason, actor="test")
        assert refused.value.field == "reason"


def test_a_failed_initial_password_sms_changes_nothing(admin, pending, settings):
    settings.sms_outbox.mkdir()  # the outbox cannot be written: the gateway fails
    before = people_counts()

    refused = post_form(admin, f"/org/reviews/{pending}/approve", {})

    assert refused.status_code == 503
    assert form_error(refused.text) == SMS_FAILED
    assert request_row(pending).status.value == "pending"
    assert people_counts() == before


def test_a_rejection_stands_and_its_failed_sms_shows_in_the_orgs_audit_log(
    admin, home_org, pending, settings
):
    settings.sms_outbox.mkdir()  # the outbox cannot be written: the gateway fails

    done = post_form(admin, f"/org/reviews/{pending}/reject", {"reason": "不符合条件"})
    drain_sms_queue(current_app)  # the worker tries, retries, and gives up

    assert done.status_code == 302
    assert request_row(pending).status.value == "rejected"
    masked = PHONE[:3] + "****" + PHONE[-4:]
    assert audit_rows("sms.delivery_failed") == [("system", masked, "sms_unavailable", home_org.id)]
    log = admin.get("/org/audit")
    assert "短信发送失败" in log.text


def test_approving_someone_who_already_became_an_operator_is_refused(admin, home_org, pending):
    make_operator(home_org, name=NAME, phone=PHONE, first_login=False)

    refused = post_form(admin, f"/org/reviews/{pending}/approve", {})

    assert refused.status_code == 409
    assert form_error(refused.text) == "该手机号已是本机构的操作员"
    assert request_row(pending).status.value == "pending"


@pytest.mark.parametrize("settings_overrides", [{"join_request_ttl": 3600}])
def test_requests_expire_after_the_configured_time(app, home_org, known):
    from idp import db
    from idp.orgs import reviews

    known(NAME, PHONE)
    view = reviews.submit_join_request(db.session(), uscc=DEMO_USCC, name=NAME, phone=PHONE)
    db.session().commit()

    assert abs(view.expires_at - (utcnow() + timedelta(hours=1))) < timedelta(minutes=1)
    assert view.status == "pending"


def test_unknown_request_is_404(admin, pending):
    page = admin.get("/org/reviews/999999/approve")

    assert page.status_code == 404
    assert error_page(page.text) == "申请不存在"
