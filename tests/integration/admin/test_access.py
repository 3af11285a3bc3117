"""Deny by default: a walk over every ``/admin`` rule of the app's route table. Only the login
pages answer without a platform admin session; anonymous users, operators and org admins are
sent to the admin login and nothing changes."""

from __future__ import annotations

import io

import pytest
from flask import Flask, current_app
from flask.testing import FlaskClient
from sqlalchemy import select

from idp.identity.models import LegacyAccount, Organisation
from idp.oidc.models import Client, InitialAccessToken
from tests.conftest import DEMO_USCC
from tests.flows import PASSWORD, csrf_token, login
from tests.integration.admin.helpers import audit_actions, fetch_admin
from tests.integration.orgs.helpers import cert_login


@pytest.fixture
def client_id(rp, org) -> str:
    """A registered relying party and an initial access token (id 1), for the routes that act
    on one (and an organisation, for those that act on one)."""
    from idp import db
    from idp.oidc.registration import issue_initial_token

    issue_initial_token(db.session(), label="walked", days=1, max_uses=None, actor="test")
    db.session().commit()
    return str(rp.client_id)


LOGIN_RULES = {"/admin/login", "/admin/login/code", "/admin/enrol"}
# Every console route, so that a new one is noticed here (and walked below).
ADMIN_RULES = LOGIN_RULES | {
    "/admin/",
    "/admin/logout",
    "/admin/step-up",
    "/admin/recovery-codes",
    "/admin/clients",
    "/admin/audit",
    "/admin/clients/new",
    "/admin/clients/<client_id>",
    "/admin/clients/<client_id>/disable",
    "/admin/clients/<client_id>/enable",
    "/admin/clients/<client_id>/rotate-secret",
    "/admin/clients/<client_id>/remove",
    "/admin/initial-access-tokens",
    "/admin/initial-access-tokens/new",
    "/admin/initial-access-tokens/<int:token_id>/revoke",
    "/admin/orgs",
    "/admin/orgs/<uscc>",
    "/admin/orgs/<uscc>/suspend",
    "/admin/orgs/<uscc>/reactivate",
    "/admin/legacy",
}
# what the walk posts: a complete, valid relying party, so only the guard can refuse it
CLIENT_FORM = {
    "client_id": "walked-client",
    "client_name": "Walked",
    "redirect_uris": "https://walked.example/cb",
    "grant_types": "authorization_code",
    "scopes": "openid",
    "token_endpoint_auth_method": "client_secret_basic",
    "refresh_token_reuse_interval": "0",
    "label": "walked token",
    "days": "7",
    "reason": "walked",
}
# what the walk uploads to the legacy import: a valid file, so only the guard can refuse it
LEGACY_CSV = (
    "client_id,uscc,org_type,legacy_account,totp_secret,legacy_key\n"
    f"{{client_id}},{DEMO_USCC},audit,WALKED-1,,walked-key\n"
)


def admin_requests(
    app: Flask, client_id: str = "any", token_id: int = 1
) -> list[tuple[str, str, str]]:
    """(method, url, rule) of every /admin rule but the login pages, ids filled in."""
    found = []
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/admin") and rule.rule not in LOGIN_RULES:
            url = (
                rule.rule.replace("<client_id>", client_id)
                .replace("<int:token_id>", str(token_id))
                .replace("<uscc>", DEMO_USCC)
            )
            for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
                found.append((method, url, rule.rule))
    return found


def client_state() -> list[tuple[object, ...]]:
    """The relying parties and the initial access tokens, as stored."""
    with current_app.extensions["idp.db"]() as session:
        rows = session.scalars(select(Client).order_by(Client.id))
        tokens = session.scalars(select(InitialAccessToken).order_by(InitialAccessToken.id))
        return [(c.client_id, c.client_metadata, c.secret_hash) for c in rows] + [
            (t.id, t.label, t.revoked_at) for t in tokens
        ]


def org_state() -> list[tuple[str, object, object]]:
    """Each organisation's suspension state, and the legacy accounts imported."""
    with current_app.extensions["idp.db"]() as session:
        orgs = session.scalars(select(Organisation).order_by(Organisation.id))
        legacy = session.scalars(select(LegacyAccount.account_ref)).all()
        return [(o.uscc, o.suspended_at, o.sessions_ended_at) for o in orgs] + [
            ("legacy", legacy, None)
        ]


def assert_refused_everywhere(app: Flask, browser: FlaskClient, client_id: str) -> None:
    token = csrf_token(browser.get("/admin/login").text)
    before = (fetch_admin().recovery_codes, client_state(), org_state())
    for method, url, _rule in admin_requests(app, client_id):
        data: dict[str, object] = {"csrf_token": token, "code": "1", **CLIENT_FORM}
        if method == "POST":
            upload = LEGACY_CSV.format(client_id=client_id).encode()
            data["file"] = (io.BytesIO(upload), "accounts.csv")
        response = browser.open(url, method=method, data=data)
        assert (response.status_code, response.headers.get("Location")) == (
            302,
            "/admin/login",
        ), (method, url)
    assert (fetch_admin().recovery_codes, client_state(), org_state()) == before
    assert audit_actions() == ["admin.account_added"]


def test_the_walk_covers_every_admin_route(app: Flask):
    walked = {rule.rule for rule in app.url_map.iter_rules() if rule.rule.startswith("/admin")}

    assert walked == ADMIN_RULES
    assert {rule for _method, _url, rule in admin_requests(app)} == ADMIN_RULES - LOGIN_RULES


def test_anonymous_users_are_sent_to_the_admin_login(
    app: Flask, client: FlaskClient, platform_admin, client_id
):
    assert_refused_everywhere(app, client, client_id)


def test_an_operator_is_not_a_platform_admin(
    app: Flask, client: FlaskClient, outbox, operator, platform_admin, client_id
):
    assert login(client, outbox, phone=operator.phone, password=PASSWORD).status_code == 302

    assert_refused_everywhere(app, client, client_id)


def test_an_org_admin_is_not_a_platform_admin(
    app: Flask, client: FlaskClient, org, platform_admin, client_id
):
    cert_login(client, uscc=DEMO_USCC, org_id=org.id)
    assert client.get("/org/").status_code in (200, 302)

    assert_refused_everywhere(app, client, client_id)


def test_a_session_cookie_of_an_operator_is_no_admin_cookie(
    app: Flask, client: FlaskClient, outbox, operator, platform_admin, client_id
):
    login(client, outbox, phone=operator.phone, password=PASSWORD)
    session_id = client.get_cookie("idp_session").value
    client.set_cookie("idp_admin", session_id, path="/admin")

    assert_refused_everywhere(app, client, client_id)
