"""Deny by default: a walk over every ``/admin`` rule of the app's route table. Only the login
pages answer without a platform admin session; anonymous users, operators and org admins are
sent to the admin login and nothing changes."""

from __future__ import annotations

from flask import Flask
from flask.testing import FlaskClient

from tests.conftest import DEMO_USCC
from tests.flows import PASSWORD, csrf_token, login
from tests.integration.admin.helpers import audit_actions, fetch_admin
from tests.integration.orgs.helpers import cert_login

LOGIN_RULES = {"/admin/login", "/admin/login/code", "/admin/enrol"}
# Every console route, so that a new one is noticed here (and walked below).
ADMIN_RULES = LOGIN_RULES | {
    "/admin/",
    "/admin/logout",
    "/admin/step-up",
    "/admin/recovery-codes",
}


def admin_requests(app: Flask) -> list[tuple[str, str]]:
    found = []
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/admin") and rule.rule not in LOGIN_RULES:
            for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
                found.append((method, rule.rule))
    return found


def assert_refused_everywhere(app: Flask, browser: FlaskClient) -> None:
    token = csrf_token(browser.get("/admin/login").text)
    before = fetch_admin().recovery_codes
    for method, url in admin_requests(app):
        response = browser.open(url, method=method, data={"csrf_token": token, "code": "1"})
        assert (response.status_code, response.headers.get("Location")) == (
            302,
            "/admin/login",
        ), (method, url)
    assert fetch_admin().recovery_codes == before
    assert "admin.recovery_codes_issued" not in audit_actions()[1:]


def test_the_walk_covers_every_admin_route(app: Flask):
    walked = {rule.rule for rule in app.url_map.iter_rules() if rule.rule.startswith("/admin")}

    assert walked == ADMIN_RULES
    assert {url for _method, url in admin_requests(app)} == ADMIN_RULES - LOGIN_RULES


def test_anonymous_users_are_sent_to_the_admin_login(
    app: Flask, client: FlaskClient, platform_admin
):
    assert_refused_everywhere(app, client)


def test_an_operator_is_not_a_platform_admin(
    app: Flask, client: FlaskClient, outbox, operator, platform_admin
):
    assert login(client, outbox, phone=operator.phone, password=PASSWORD).status_code == 302

    assert_refused_everywhere(app, client)


def test_an_org_admin_is_not_a_platform_admin(app: Flask, client: FlaskClient, org, platform_admin):
    cert_login(client, uscc=DEMO_USCC, org_id=org.id)
    assert client.get("/org/").status_code in (200, 302)

    assert_refused_everywhere(app, client)


def test_a_session_cookie_of_an_operator_is_no_admin_cookie(
    app: Flask, client: FlaskClient, outbox, operator, platform_admin
):
    login(client, outbox, phone=operator.phone, password=PASSWORD)
    session_id = client.get_cookie("idp_session").value
    client.set_cookie("idp_admin", session_id, path="/admin")

    assert_refused_everywhere(app, client)
