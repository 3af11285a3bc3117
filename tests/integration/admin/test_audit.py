"""The platform console's audit view: every event, newest first, filtered by action, actor,
target, result and (Beijing) dates; phones and addresses masked; bad filters refused."""

from __future__ import annotations

from datetime import UTC, datetime

from flask.testing import FlaskClient

from idp import db
from idp.audit.models import AuditEvent


def add_event(
    action: str,
    *,
    actor: str,
    target: str = "",
    result: str = "success",
    ip: str = "203.0.113.7",
    time: datetime | None = None,
) -> None:
    event = AuditEvent(action=action, actor=actor, target=target, result=result, ip=ip, details={})
    if time is not None:
        event.time = time
    db.session().add(event)
    db.session().commit()


def rows(page: str) -> int:
    return page.count('<tr id="audit-event-')


def test_every_event_newest_first_with_words(client: FlaskClient, enrolled: str):
    add_event("oidc.client_removed", actor="platform", target="client:old-rp")

    page = client.get("/admin/audit")

    assert page.status_code == 200
    table = page.text[page.text.index('id="audit-events"') :]
    assert table.index("删除应用") < table.index("平台管理员登录")
    assert "client:old-rp" in table


def test_filters_narrow_the_trail(client: FlaskClient, enrolled: str):
    add_event("auth.login_failed", actor="138****8000", result="account_locked")
    add_event("auth.login_succeeded", actor="139****9000")

    failed = client.get(
        "/admin/audit", query_string={"result": "failed", "action": "auth.login_failed"}
    )
    by_actor = client.get("/admin/audit", query_string={"actor": "139****"})
    by_target = client.get("/admin/audit", query_string={"target": "nothing-like-this"})

    assert rows(failed.text) == 1 and "138****8000" in failed.text
    assert rows(by_actor.text) == 1 and "139****9000" in by_actor.text
    assert rows(by_target.text) == 0 and "没有符合条件的日志" in by_target.text


def test_dates_are_beijing_days(client: FlaskClient, enrolled: str):
    # 2026-03-01 23:30 in Beijing is 15:30 UTC on the same day; 2026-03-02 01:00 Beijing is
    # 17:00 UTC on March 1st
    add_event(
        "oidc.client_updated",
        actor="platform",
        target="client:a",
        time=datetime(2026, 3, 1, 15, 30, tzinfo=UTC),
    )
    add_event(
        "oidc.client_updated",
        actor="platform",
        target="client:b",
        time=datetime(2026, 3, 1, 17, 0, tzinfo=UTC),
    )

    first = client.get("/admin/audit", query_string={"since": "2026-03-01", "until": "2026-03-01"})
    second = client.get("/admin/audit", query_string={"since": "2026-03-02", "until": "2026-03-02"})

    assert rows(first.text) == 1 and "client:a" in first.text
    assert rows(second.text) == 1 and "client:b" in second.text


def test_personal_data_is_masked(client: FlaskClient, enrolled: str):
    add_event(
        "orgs.operator_added",
        actor="org:1",
        target="membership:3 李* 13800138000",
        ip="198.51.100.23",
    )
    add_event("auth.login_failed", actor="138****0000", ip="2001:db8:1234:5678::1")

    page = client.get("/admin/audit").text

    assert "13800138000" not in page and "138****8000" in page
    assert "198.51.100.23" not in page and "198.51.100.*" in page
    assert "2001:db8:1234:5678::1" not in page and "2001:db8:1234::/48" in page


def test_bad_filters_are_refused(client: FlaskClient, enrolled: str):
    for query in (
        {"since": "2026-13-01"},
        {"until": "yesterday"},
        {"action": "no.such_action"},
        {"result": "maybe"},
    ):
        response = client.get("/admin/audit", query_string=query)
        assert response.status_code == 400, query
        assert rows(response.text) == 0
    assert "日期格式应为 YYYY-MM-DD" in client.get("/admin/audit", query_string={"since": "x"}).text
    assert client.get("/admin/audit", query_string={"page": "0"}).status_code == 400
