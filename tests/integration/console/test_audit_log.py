"""操作日志: the org admin browses their own organisation's audit events (actor, action, masked
target, time, source IP, result), newest first, in pages; other organisations' events stay out."""

from __future__ import annotations

import re

from flask import current_app

from tests.integration.console.helpers import post_form, row_ids


def add_events(org_id: int | None, count: int, action: str = "orgs.operator_updated") -> None:
    from idp.audit.models import AuditEvent

    with current_app.extensions["idp.db"]() as session:
        for n in range(count):
            session.add(
                AuditEvent(
                    action=action, actor="test", target=f"membership:{n}", org_id=org_id, ip="::1"
                )
            )
        session.commit()


def test_actions_appear_in_the_orgs_audit_log_with_masked_targets(admin, home_org, known):
    known("王小明", "13700137001")
    post_form(admin, "/org/operators/new", {"name": "王小明", "phone": "13700137001"})
    post_form(admin, "/org/operators/new", {"name": "王小明", "phone": "13700137001"})

    page = admin.get("/org/audit")

    assert page.status_code == 200
    rows = re.findall(r'<tr id="audit-event-\d+" data-action="([a-z_.]+)">', page.text)
    assert rows[:3] == [
        "orgs.operator_added",  # the refused second attempt, newest first
        "orgs.operator_added",
        "orgs.initial_password_sent",
    ]
    # In words: the action with whom it concerned, and a refusal with its own message.
    assert "新增操作员 王** 137****7001" in page.text
    assert "该手机号已是本机构的操作员" in page.text
    assert "短信发送初始密码" in page.text
    visible = re.sub(r"<[^>]+>", " ", page.text)
    assert not re.search(r"\b(orgs|auth|oidc|sms)\.[a-z_]+", visible)
    assert "membership:" not in visible and "operator_exists" not in visible
    assert "13700137001" not in page.text
    assert "企业管理员" in page.text
    assert "127.0.0.1" in page.text


def test_the_log_is_paged_and_shows_no_other_orgs_events(admin, home_org, other_org):
    from idp.audit.models import AuditEvent
    from tests.integration.console.helpers import count

    assert count(AuditEvent, AuditEvent.org_id == home_org.id) == 1  # orgs.org_added
    add_events(home_org.id, 24)
    add_events(other_org.id, 3, action="orgs.operator_deleted")
    add_events(None, 3, action="auth.login_failed")

    first = admin.get("/org/audit")
    second = admin.get("/org/audit?page=2")

    assert len(row_ids(first.text, "audit-event")) == 20
    assert len(row_ids(second.text, "audit-event")) == 5
    assert "第 1 / 2 页，共 25 条" in first.text
    ids = row_ids(first.text, "audit-event") + row_ids(second.text, "audit-event")
    assert ids == sorted(ids, reverse=True)
    for page in (first, second):
        assert "orgs.operator_deleted" not in page.text
        assert "auth.login_failed" not in page.text


def test_a_refused_registration_appears_in_the_orgs_log_in_words(admin, home_org, rp):
    from tests.integration.orgs.helpers import add_legacy, register_details

    add_legacy(rp.client_id, org_type="cost_consulting")
    refused = post_form(
        admin, "/register/cost_consulting/new", {**register_details(), "platforms": rp.client_id}
    )
    assert refused.status_code == 409

    page = admin.get("/org/audit").text

    assert "机构注册未成功" in page
    assert "维修资金系统已经存在统一社会信用代码" in page
