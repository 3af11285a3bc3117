"""Who may use the console: a route-table walk over every ``/org/`` rule (deny by default) and
cross-org isolation with another org's admin holding this org's ids."""

from __future__ import annotations

import pytest

from tests.conftest import make_operator
from tests.flows import PASSWORD, login
from tests.integration.console.helpers import (
    add_join_request,
    any_csrf_token,
    error_page,
    fetch,
    row_ids,
)
from tests.integration.orgs.helpers import cert_login

# Every console route, so that a new one is noticed here (and walked below).
CONSOLE_RULES = {
    "/org/",
    "/org/operators",
    "/org/operators/new",
    "/org/operators/<int:membership_id>",
    "/org/operators/<int:membership_id>/edit",
    "/org/operators/<int:membership_id>/delete",
    "/org/reviews",
    "/org/reviews/<int:request_id>/approve",
    "/org/reviews/<int:request_id>/reject",
    "/org/audit",
}
STAFF_NAME = "钱七"
STAFF_PHONE = "13800138123"
APPLICANT_NAME = "吴十"
APPLICANT_PHONE = "13300133999"


@pytest.fixture
def ids(home_org) -> dict[str, int]:
    """Ids of this org's objects, for the id-carrying routes."""
    account = make_operator(home_org, name=STAFF_NAME, phone=STAFF_PHONE, first_login=False)
    return {
        "membership_id": account.memberships[0].id,
        "request_id": add_join_request(home_org.id, name=APPLICANT_NAME, phone=APPLICANT_PHONE),
    }


def console_requests(app, ids):
    """(method, url, rule) for every method of every /org/ rule, ids filled from ``ids``."""
    found = []
    for rule in app.url_map.iter_rules():
        if not (rule.rule == "/org" or rule.rule.startswith("/org/")):
            continue
        url = rule.rule
        for name in rule.arguments:
            url = url.replace(f"<int:{name}>", str(ids[name]))
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            found.append((method, url, rule.rule))
    return found


def send(client, method, url):
    if method == "GET":
        return client.get(url)
    data = {"csrf_token": any_csrf_token(client), "phone": STAFF_PHONE, "status": "disabled"}
    data["reason"] = "x"
    return client.open(url, method=method, data=data)


def test_the_walk_covers_every_console_route(app, ids):
    walked = {rule for _method, _url, rule in console_requests(app, ids)}

    assert walked == CONSOLE_RULES


def test_every_console_route_sends_anonymous_users_to_the_ukey_login(app, client, ids):
    for method, url, _rule in console_requests(app, ids):
        response = send(client, method, url)
        assert (response.status_code, response.headers.get("Location")) == (
            302,
            "/login?method=cert",
        ), (method, url)


def test_every_console_route_refuses_an_operator(app, client, outbox, ids):
    assert login(client, outbox, phone=STAFF_PHONE, password=PASSWORD).status_code == 302

    for method, url, _rule in console_requests(app, ids):
        response = send(client, method, url)
        assert response.status_code == 403, (method, url)
        assert error_page(response.text) == "仅企业管理员可以使用此功能，请使用企业 UKey 登录"
    assert_unchanged(ids)


def test_every_console_route_hides_this_orgs_objects_from_another_orgs_admin(app, other_admin, ids):
    for method, url, rule in console_requests(app, ids):
        response = send(other_admin, method, url)
        if "<" in rule:
            assert response.status_code == 404, (method, url)
        else:
            assert response.status_code in (200, 302, 400), (method, url, response.status_code)
            for secret in (STAFF_NAME, APPLICANT_NAME, "138****8123", "133****3999"):
                assert secret not in response.text, (method, url, secret)
    assert_unchanged(ids)


def assert_unchanged(ids):
    from idp.identity.models import JoinRequest, Membership

    assert fetch(Membership, Membership.id == ids["membership_id"]).status.value == "active"
    assert fetch(JoinRequest, JoinRequest.id == ids["request_id"]).status.value == "pending"


def test_an_admin_of_an_unregistered_org_is_sent_to_the_registration(app, client, org):
    # ``org`` exists (it has an operator) but holds no registration for any relying party.
    account = make_operator(org, name=STAFF_NAME, phone=STAFF_PHONE, first_login=False)
    ids = {
        "membership_id": account.memberships[0].id,
        "request_id": add_join_request(org.id, name=APPLICANT_NAME, phone=APPLICANT_PHONE),
    }
    cert_login(client, org_id=org.id)

    for method, url, _rule in console_requests(app, ids):
        response = send(client, method, url)
        assert (response.status_code, response.headers.get("Location")) == (302, "/register")
    assert_unchanged(ids)


def test_a_certificate_login_without_an_org_is_sent_to_the_registration(client, home_org):
    cert_login(client, org_id=None)

    response = client.get("/org/operators")

    assert (response.status_code, response.headers["Location"]) == (302, "/register")


def test_another_orgs_admin_sees_only_their_own_operators(admin, other_admin, ids, other_org):
    make_operator(other_org, name="郑十一", phone="13800138999", first_login=True)

    mine = admin.get("/org/operators")
    theirs = other_admin.get("/org/operators")

    assert row_ids(mine.text, "operator") == [ids["membership_id"]]
    assert STAFF_NAME not in theirs.text
    assert "郑十一" in theirs.text
    assert row_ids(other_admin.get("/org/reviews").text, "join-request") == []
    assert row_ids(admin.get("/org/reviews").text, "join-request") == [ids["request_id"]]


def test_the_service_treats_another_orgs_ids_as_unknown(app, other_org, ids):
    from idp import db
    from idp.errors import NotFoundError
    from idp.orgs import operators, reviews

    session = db.session()
    calls = [
        lambda: operators.get_operator(session, other_org, ids["membership_id"]),
        lambda: operators.update_operator(
            session, other_org, ids["membership_id"], status="disabled", actor="x"
        ),
        lambda: operators.delete_operator(session, other_org, ids["membership_id"], actor="x"),
        lambda: reviews.get_join_request(session, other_org, ids["request_id"]),
        lambda: reviews.approve(session, other_org, ids["request_id"], actor="x"),
        lambda: reviews.reject(session, other_org, ids["request_id"], reason="x", actor="x"),
    ]
    for call in calls:
        with pytest.raises(NotFoundError):
            call()
    session.rollback()
    assert_unchanged(ids)


def test_the_portal_links_the_console_for_org_admins_only(admin, client, app, outbox, ids):
    page = admin.get("/portal")
    assert 'href="/org/operators">操作员管理</a>' in page.text
    assert 'href="/org/reviews">用户审核</a>' in page.text
    assert 'href="/org/audit">操作日志</a>' in page.text

    operator = app.test_client()
    login(operator, outbox, phone=STAFF_PHONE, password=PASSWORD)
    assert "/org/operators" not in operator.get("/portal").text


def test_ids_beyond_the_database_integer_range_are_not_found(admin):
    response = admin.get("/org/operators/99999999999999999999")
    assert response.status_code == 404


def test_review_ids_beyond_the_database_integer_range_are_not_found(admin):
    assert admin.get("/org/reviews/99999999999999999999/approve").status_code == 404
