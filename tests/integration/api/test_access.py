"""Who may use the management API: a route-table walk over every ``/api/v1/org/`` rule (deny by
default) with no token, a dead token, an operator's token, an admin token without the scope and
another organisation's admin token; nothing changes for any of them."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import update

from tests.conftest import make_operator, register
from tests.flows import PASSWORD, token_request
from tests.integration.api.helpers import (
    admin_tokens,
    assert_problem,
    bearer,
    operator_tokens,
)
from tests.integration.console.helpers import add_join_request, fetch

# Every API route under /api/v1/org/, so that a new one is noticed here (and walked below).
API_RULES = {
    "/api/v1/org/operators",
    "/api/v1/org/operators/<int:membership_id>",
    "/api/v1/org/reviews",
    "/api/v1/org/reviews/<int:request_id>",
    "/api/v1/org/reviews/<int:request_id>/approve",
    "/api/v1/org/reviews/<int:request_id>/reject",
}
STAFF_NAME = "钱七"
STAFF_PHONE = "13800138123"
APPLICANT_NAME = "吴十"
APPLICANT_PHONE = "13300133999"
# Valid bodies, so that only the caller decides the answer.
BODIES = {
    ("PATCH", "/api/v1/org/operators/<int:membership_id>"): {"status": "disabled"},
    ("POST", "/api/v1/org/reviews/<int:request_id>/reject"): {"reason": "信息不符"},
    ("POST", "/api/v1/org/operators"): {"name": "某某", "phone": "13700137999"},
}


@pytest.fixture
def ids(home_org) -> dict[str, int]:
    """Ids of this org's objects, for the id-carrying routes."""
    account = make_operator(home_org, name=STAFF_NAME, phone=STAFF_PHONE, first_login=False)
    return {
        "membership_id": account.memberships[0].id,
        "request_id": add_join_request(home_org.id, name=APPLICANT_NAME, phone=APPLICANT_PHONE),
    }


def api_requests(app, ids):
    """(method, url, rule) for every method of every /api/v1/org/ rule, ids from ``ids``."""
    found = []
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/v1/org/"):
            continue
        url = rule.rule
        for name in rule.arguments:
            url = url.replace(f"<int:{name}>", str(ids[name]))
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            found.append((method, url, rule.rule))
    return found


def send(client, method, url, rule, headers):
    body = BODIES.get((method, rule))
    return client.open(url, method=method, json=body, headers=headers)


def scope_of(rule: str) -> str:
    return "org.operators" if rule.startswith("/api/v1/org/operators") else "org.reviews"


def assert_unchanged(ids):
    from idp.identity.models import Account, JoinRequest, Membership

    assert fetch(Membership, Membership.id == ids["membership_id"]).status.value == "active"
    assert fetch(JoinRequest, JoinRequest.id == ids["request_id"]).status.value == "pending"
    assert fetch(Account, Account.phone == STAFF_PHONE).name == STAFF_NAME


def test_the_walk_covers_every_api_route(app, ids):
    walked = {rule for _method, _url, rule in api_requests(app, ids)}

    assert walked == API_RULES


def test_every_api_route_asks_for_a_bearer_token(app, api, ids):
    for method, url, rule in api_requests(app, ids):
        for headers in ({}, {"Authorization": "Basic dXNlcjpwYXNz"}, {"Authorization": "Bearer"}):
            response = send(api, method, url, rule, headers)
            assert_problem(response, 401, "missing_token", "需要企业管理员的访问令牌")
            challenge = response.headers["WWW-Authenticate"]
            assert challenge == f'Bearer scope="{scope_of(rule)}"', (method, url)
    assert_unchanged(ids)


def test_every_api_route_refuses_an_unknown_token(app, api, ids):
    for method, url, rule in api_requests(app, ids):
        response = send(api, method, url, rule, bearer("not-a-token"))
        assert_problem(response, 401, "invalid_token", "访问令牌无效或已过期")
        assert response.headers["WWW-Authenticate"] == (
            'Bearer error="invalid_token", error_description="token expired, revoked or '
            f'unknown", scope="{scope_of(rule)}"'
        )
    assert_unchanged(ids)


def test_every_api_route_refuses_an_operators_token(app, api, ids, api_rp, outbox):
    operator = operator_tokens(
        app.test_client(), outbox, api_rp, phone=STAFF_PHONE, password=PASSWORD
    )
    for method, url, rule in api_requests(app, ids):
        response = send(api, method, url, rule, operator.headers)
        assert_problem(response, 403, "org_admin_required", "仅企业管理员可以使用此功能")
        assert "WWW-Authenticate" not in response.headers
    assert_unchanged(ids)


@pytest.mark.parametrize(
    ("scope", "refused"),
    [
        ("openid profile phone", {"org.operators", "org.reviews"}),
        ("openid org.operators", {"org.reviews"}),
        ("openid org.reviews", {"org.operators"}),
    ],
)
def test_every_api_route_needs_its_scope(app, api, ids, pki, api_rp, scope, refused):
    tokens = admin_tokens(app.test_client(), pki, api_rp, scope=scope)
    for method, url, rule in api_requests(app, ids):
        response = send(api, method, url, rule, tokens.headers)
        if scope_of(rule) in refused:
            assert_problem(response, 403, "insufficient_scope")
            assert response.headers["WWW-Authenticate"] == (
                f'Bearer error="insufficient_scope", scope="{scope_of(rule)}"'
            )
        elif method == "GET":
            assert response.status_code == 200, (method, url, response.text)
    if refused == {"org.operators", "org.reviews"}:
        assert_unchanged(ids)


def test_every_api_route_hides_this_orgs_objects_from_another_orgs_admin(
    app, api, ids, other_admin, other_org
):
    for method, url, rule in api_requests(app, ids):
        response = send(api, method, url, rule, other_admin.headers)
        if "<" in rule:
            assert response.status_code == 404, (method, url, response.text)
            code = "operator_not_found" if "operators" in rule else "join_request_not_found"
            assert_problem(response, 404, code)
        else:
            # Lists: the other org's own (empty) lists; the add: refused by the real-name check
            # (the sandbox does not know the pair), never in this org.
            assert response.status_code in (200, 400), (method, url, response.status_code)
            for secret in (STAFF_NAME, APPLICANT_NAME, "138****8123", "133****3999"):
                assert secret not in response.text, (method, url, secret)
    assert_unchanged(ids)


def test_an_expired_or_revoked_admin_token_is_refused(app, api, ids, admin):
    from idp import db
    from idp.db import utcnow
    from idp.oidc.models import Token, digest

    assert api.get("/api/v1/org/operators", headers=admin.headers).status_code == 200
    with app.extensions["idp.db"]() as session:
        session.execute(
            update(Token)
            .where(Token.access_token_hash == digest(admin.access_token))
            .values(access_expires_at=utcnow() - timedelta(seconds=1))
        )
        session.commit()
    assert_problem(api.get("/api/v1/org/operators", headers=admin.headers), 401, "invalid_token")
    db.session().rollback()


def test_a_token_of_an_org_no_longer_registered_for_the_client_is_refused(
    app, api, ids, admin, home_org
):
    from sqlalchemy import delete

    from idp.identity.models import IdentityRegistration

    with app.extensions["idp.db"]() as session:
        session.execute(delete(IdentityRegistration))
        session.commit()

    response = api.get("/api/v1/org/operators", headers=admin.headers)

    assert_problem(response, 401, "invalid_token")
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]


def test_a_clients_own_token_is_no_org_admin(app, api, ids):
    backend = register(
        app,
        {
            "grant_types": ["client_credentials"],
            "redirect_uris": [],
            "scope": "org.operators org.reviews",
        },
    )
    issued = token_request(
        api,
        {"grant_type": "client_credentials", "scope": "org.operators"},
        auth=backend.auth,
    )
    assert issued.status_code == 200, issued.text

    response = api.get("/api/v1/org/operators", headers=bearer(issued.json["access_token"]))

    assert_problem(response, 403, "org_admin_required")
    assert_unchanged(ids)


def test_every_api_route_refuses_an_admin_token_sent_over_plain_http(app, api, ids, admin):
    """RFC 6750 §5.3: a bearer token over plain HTTP to another host than this machine is
    refused before it is read; HTTPS and this machine are served."""
    for method, url, rule in api_requests(app, ids):
        body = BODIES.get((method, rule))
        response = api.open(
            url, method=method, json=body, headers=admin.headers, base_url="http://idp.example.cn"
        )
        assert_problem(response, 400, "insecure_transport", "请通过 HTTPS 访问")
    assert_unchanged(ids)
    for base_url in ("https://idp.example.cn", "http://127.0.0.1"):
        served = api.get("/api/v1/org/operators", headers=admin.headers, base_url=base_url)
        assert served.status_code == 200, served.text


def test_the_access_token_must_come_in_the_header(api, admin):
    in_query = api.get(f"/api/v1/org/operators?access_token={admin.access_token}")
    assert_problem(in_query, 401, "missing_token")
    in_form = api.post("/api/v1/org/operators", data={"access_token": admin.access_token})
    assert_problem(in_form, 401, "missing_token")


def test_the_api_ignores_the_browsers_login_session(admin_browser):
    # The org admin's own browser, logged in to the console: no bearer token, no API.
    assert admin_browser.get("/org/operators").status_code == 200
    assert_problem(admin_browser.get("/api/v1/org/operators"), 401, "missing_token")
