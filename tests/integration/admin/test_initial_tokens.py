"""Initial access tokens in the platform console (初始访问令牌): issued after step-up with the
token shown once and only its digest stored, listed with their state, revoked after step-up;
bad input is refused next to its field and changes nothing. The issued token registers a
client at /oauth/register, a revoked one no longer does."""

from __future__ import annotations

from typing import Any

from flask import current_app
from flask.testing import FlaskClient
from sqlalchemy import select

from idp.oidc.models import InitialAccessToken, digest
from tests.flows import REDIRECT_URI
from tests.integration.admin.helpers import post_form
from tests.integration.admin.test_clients import step_up, value_of

NEW = "/admin/initial-access-tokens/new"


def tokens() -> list[InitialAccessToken]:
    with current_app.extensions["idp.db"]() as session:
        return list(session.scalars(select(InitialAccessToken).order_by(InitialAccessToken.id)))


def oidc_actions() -> list[tuple[str, str, str]]:
    from idp.audit.models import AuditEvent

    with current_app.extensions["idp.db"]() as session:
        events = session.scalars(select(AuditEvent).order_by(AuditEvent.id))
        return [(e.action, e.actor, e.result) for e in events if "initial_token" in e.action]


def register_with(client: FlaskClient, value: str) -> Any:
    return client.post(
        "/oauth/register",
        json={"client_name": "接入方", "redirect_uris": [REDIRECT_URI]},
        headers={"Authorization": f"Bearer {value}"},
    )


def issue(client: FlaskClient, secret: str, **data: str) -> Any:
    step_up(client, secret, NEW)
    return post_form(client, NEW, **{"label": "审计系统接入", "days": "30", **data})


def test_issuing_needs_step_up(client: FlaskClient, enrolled: str):
    response = client.get(NEW)

    assert response.status_code == 302
    assert response.headers["Location"].startswith("/admin/step-up?next=")
    assert tokens() == []


def test_issue_shows_the_token_once_and_stores_its_digest(client: FlaskClient, enrolled: str):
    response = issue(client, enrolled, max_uses="2")

    assert response.status_code == 200 and "令牌只显示这一次" in response.text
    value = value_of(response.text, "initial-token-value")
    [token] = tokens()
    assert token.token_hash == digest(value) and value not in token.token_hash
    assert (token.label, token.max_uses, token.uses, token.state) == (
        "审计系统接入",
        2,
        0,
        "active",
    )
    assert token.created_by == "platform_admin:ops.admin"
    assert oidc_actions() == [("oidc.initial_token_issued", "platform_admin:ops.admin", "success")]
    listed = client.get("/admin/initial-access-tokens")
    assert "审计系统接入" in listed.text and "有效" in listed.text and "0 / 2" in listed.text
    assert value not in listed.text
    assert register_with(client, value).status_code == 201
    assert "1 / 2" in client.get("/admin/initial-access-tokens").text


def test_bad_input_is_refused_next_to_its_field(client: FlaskClient, enrolled: str):
    step_up(client, enrolled, NEW)
    for data, message in (
        ({"label": "", "days": "7"}, "请输入名称"),
        ({"label": "x", "days": "0"}, "须为 1 到 365 之间的整数"),
        ({"label": "x", "days": "400"}, "须为 1 到 365 之间的整数"),
        ({"label": "x", "days": "7", "max_uses": "0"}, "须为 1 到 10000 之间的整数"),
    ):
        response = post_form(client, NEW, **data)
        assert response.status_code == 400 and message in response.text, data
    assert tokens() == []
    assert oidc_actions() == []


def test_revoke_after_step_up_ends_registration(client: FlaskClient, enrolled: str):
    value = value_of(issue(client, enrolled).text, "initial-token-value")
    [token] = tokens()
    url = f"/admin/initial-access-tokens/{token.id}/revoke"
    assert client.get(url).status_code == 200  # the step-up of the issue still holds

    response = post_form(client, url)

    assert response.headers["Location"] == "/admin/initial-access-tokens"
    [token] = tokens()
    assert token.state == "revoked"
    assert "已撤销" in client.get("/admin/initial-access-tokens").text
    assert register_with(client, value).status_code == 401
    assert [a for a, _actor, _r in oidc_actions()] == [
        "oidc.initial_token_issued",
        "oidc.initial_token_revoked",
    ]


def test_revoking_an_unknown_token_is_not_found(client: FlaskClient, enrolled: str):
    url = "/admin/initial-access-tokens/999/revoke"
    step_up(client, enrolled, url)

    assert client.get(url).status_code == 404
