"""Dynamic client registration (RFC 7591) behind initial access tokens, and client
configuration (RFC 7592) with the registration access token: the wire answers, the metadata
policy shared with ``idp clients add``, and the database after every refusal."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

import pytest
from flask import Flask, current_app
from flask.testing import FlaskClient
from sqlalchemy import select, update

from idp.oidc.models import Client, InitialAccessToken, RegistrationAccessToken, Token, digest
from tests.conftest import both_databases
from tests.flows import REDIRECT_URI, Pkce, authorize_params, csrf_token, query_of, token_request
from tests.integration.oidc.helpers import run_in_parallel

METADATA: dict[str, Any] = {
    "client_name": "第三方审计系统",
    "redirect_uris": [REDIRECT_URI],
    "grant_types": ["authorization_code", "refresh_token"],
    "scope": "openid profile",
}


def issue(*, days: int = 7, max_uses: int | None = None, label: str = "审计系统接入") -> str:
    from idp import db
    from idp.oidc.registration import issue_initial_token

    _token, value = issue_initial_token(
        db.session(), label=label, days=days, max_uses=max_uses, actor="test"
    )
    db.session().commit()
    return value


def bearer(value: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {value}"}


def register(client: FlaskClient, token: str | None, body: Any = None, **headers: str) -> Any:
    sent = {**(bearer(token) if token else {}), **headers}
    return client.post("/oauth/register", json=METADATA if body is None else body, headers=sent)


def clients_stored() -> list[tuple[str, dict[str, Any]]]:
    with current_app.extensions["idp.db"]() as session:
        rows = session.scalars(select(Client).order_by(Client.id))
        return [(c.client_id, c.client_metadata) for c in rows]


def stored_token(value: str) -> InitialAccessToken:
    with current_app.extensions["idp.db"]() as session:
        return session.scalars(
            select(InitialAccessToken).where(InitialAccessToken.token_hash == digest(value))
        ).one()


def change_token(value: str, **values: Any) -> None:
    with current_app.extensions["idp.db"]() as session:
        session.execute(
            update(InitialAccessToken)
            .where(InitialAccessToken.token_hash == digest(value))
            .values(**values)
        )
        session.commit()


def audit_results(action: str) -> list[str]:
    from idp.audit.models import AuditEvent

    with current_app.extensions["idp.db"]() as session:
        events = session.scalars(select(AuditEvent).where(AuditEvent.action == action))
        return [event.result for event in events]


# --- registration -----------------------------------------------------------------------------


def test_registration_answers_the_client_information_once(app: Flask, client: FlaskClient):
    token = issue()

    response = register(client, token, {**METADATA, "frobnicate": "yes"})

    assert response.status_code == 201, response.text
    assert response.headers["Cache-Control"] == "no-store"
    body = response.json
    assert body["client_name"] == "第三方审计系统"
    assert body["redirect_uris"] == [REDIRECT_URI]
    assert body["grant_types"] == ["authorization_code", "refresh_token"]
    assert body["token_endpoint_auth_method"] == "client_secret_basic"
    assert body["client_secret_expires_at"] == 0
    assert isinstance(body["client_id_issued_at"], int)
    assert "frobnicate" not in body  # unknown metadata is ignored (RFC 7591 §2)
    assert body["registration_client_uri"] == f"http://localhost/oauth/register/{body['client_id']}"
    [(client_id, metadata)] = clients_stored()
    assert client_id == body["client_id"]
    assert "frobnicate" not in metadata
    # A third party: people are asked before it learns anything (as the console's checkbox).
    assert metadata["require_consent"] is True and body["require_consent"] is True
    with current_app.extensions["idp.db"]() as session:
        row = session.scalars(select(Client)).one()
        assert row.secret_hash == digest(body["client_secret"])
        reg = session.scalars(select(RegistrationAccessToken)).one()
        assert reg.token_hash == digest(body["registration_access_token"])
    assert stored_token(token).uses == 1
    assert audit_results("oidc.client_registered") == ["success"]


def test_a_public_client_gets_no_secret(app: Flask, client: FlaskClient):
    response = register(client, issue(), {**METADATA, "token_endpoint_auth_method": "none"})

    assert response.status_code == 201, response.text
    assert "client_secret" not in response.json
    assert "client_secret_expires_at" not in response.json
    with current_app.extensions["idp.db"]() as session:
        assert session.scalars(select(Client)).one().secret_hash is None


def test_the_provider_decides_its_own_metadata(app: Flask, client: FlaskClient):
    asked = {
        **METADATA,
        "client_id": "chosen-id",
        "introspection_allowed": True,
        "disabled": True,
        "require_consent": False,
        "org_types": ["audit"],
    }

    body = register(client, issue(), asked).json

    assert body["client_id"] != "chosen-id"
    assert "introspection_allowed" not in body and "disabled" not in body
    assert body["require_consent"] is True
    assert body["org_types"] == ["audit"]  # narrowing who may enter is the client's choice


@pytest.mark.parametrize(
    ("uri", "reason"),
    [
        ("https://rp.example/cb#fragment", "must not contain a fragment"),
        ("javascript:alert(1)", "must be an absolute http(s) URI"),
        ("http://rp.example/cb", "must use https"),
    ],
)
def test_a_bad_redirect_uri_is_refused_and_nothing_is_spent(
    app: Flask, client: FlaskClient, uri: str, reason: str
):
    token = issue(max_uses=1)

    response = register(client, token, {**METADATA, "redirect_uris": [uri]})

    assert response.status_code == 400
    assert response.json["error"] == "invalid_redirect_uri"
    assert reason in response.json["error_description"]
    assert clients_stored() == []
    assert stored_token(token).uses == 0
    assert audit_results("oidc.registration_refused") == ["invalid_redirect_uri"]
    assert register(client, token).status_code == 201  # the one use is still there


@pytest.mark.parametrize(
    ("body", "description"),
    [
        ({**METADATA, "grant_types": ["password"]}, "grant_types"),
        ({**METADATA, "scope": "openid admin"}, "scope"),
        ({**METADATA, "id_token_encrypted_response_alg": "RSA-OAEP"}, "not supported"),
        (["not", "an", "object"], "JSON object"),
    ],
)
def test_bad_metadata_is_invalid_client_metadata(
    app: Flask, client: FlaskClient, body: Any, description: str
):
    response = register(client, issue(), body)

    assert response.status_code == 400
    assert response.json["error"] == "invalid_client_metadata"
    assert description in response.json["error_description"]
    assert clients_stored() == []


def test_a_body_that_is_not_json_is_invalid_client_metadata(app: Flask, client: FlaskClient):
    response = client.post(
        "/oauth/register",
        data="redirect_uris=https://rp.example/cb",
        headers={**bearer(issue()), "Content-Type": "application/x-www-form-urlencoded"},
    )

    assert response.status_code == 400 and response.json["error"] == "invalid_client_metadata"
    assert clients_stored() == []


@pytest.mark.parametrize("authorization", [None, "Basic dXNlcjpwYXNz"])
def test_without_a_bearer_token_the_answer_is_a_bare_challenge(
    app: Flask, client: FlaskClient, authorization: str | None
):
    headers = {"Authorization": authorization} if authorization else {}

    response = client.post("/oauth/register", json=METADATA, headers=headers)

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"  # RFC 6750 §3.1: no error code
    assert response.json["error"] == "invalid_token"
    assert clients_stored() == []


@pytest.mark.parametrize(
    "authorization", ["Bearer not-a-token", "Bearer", "bearer  ", "Bearer " + "x" * 600]
)
def test_a_wrong_token_is_invalid_token(app: Flask, client: FlaskClient, authorization: str):
    issue()

    response = client.post(
        "/oauth/register", json=METADATA, headers={"Authorization": authorization}
    )

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith('Bearer error="invalid_token"')
    assert response.json["error"] == "invalid_token"
    assert clients_stored() == []


@pytest.mark.parametrize(
    "state",
    [
        {"expires_at": "past"},
        {"revoked_at": "now"},
        {"max_uses": 2, "uses": 2},
    ],
    ids=["expired", "revoked", "used_up"],
)
def test_an_expired_revoked_or_used_up_token_is_invalid_token(
    app: Flask, client: FlaskClient, state: dict[str, Any]
):
    from idp.db import utcnow

    token = issue()
    values = {
        key: (utcnow() - timedelta(seconds=1) if value in ("past", "now") else value)
        for key, value in state.items()
    }
    change_token(token, **values)

    response = register(client, token)

    assert response.status_code == 401
    assert response.json["error"] == "invalid_token"
    assert clients_stored() == []
    assert audit_results("oidc.registration_refused") == ["invalid_token"]


@both_databases
def test_max_uses_is_counted_across_registrations(app: Flask, client: FlaskClient):
    token = issue(max_uses=2)

    answers = [register(client, token).status_code for _ in range(3)]

    assert answers == [201, 201, 401]
    assert len(clients_stored()) == 2
    assert stored_token(token).state == "used_up"


@both_databases
def test_parallel_registrations_do_not_exceed_max_uses(app: Flask):
    token = issue(max_uses=1)

    answers = run_in_parallel(app, 4, lambda browser: register(browser, token).status_code)

    assert sorted(answers) == [201, 401, 401, 401]
    assert len(clients_stored()) == 1
    assert stored_token(token).uses == 1


@pytest.mark.parametrize("settings_overrides", [{"registration_ip_limit": 3}])
def test_registration_is_rate_limited_per_network(app: Flask, client: FlaskClient):
    token = issue()

    answers = [register(client, "wrong").status_code for _ in range(3)]
    refused = register(client, token)

    assert set(answers) == {401}
    assert refused.status_code == 429
    assert refused.json["error"] == "too_many_requests"
    assert clients_stored() == []


def test_a_large_body_is_refused(app: Flask, client: FlaskClient):
    body = {**METADATA, "contacts": ["x" * 200] * 100}

    response = register(client, issue(), body)

    assert response.status_code == 413
    assert clients_stored() == []


def test_discovery_advertises_the_registration_endpoint(client: FlaskClient):
    metadata = client.get("/.well-known/openid-configuration").json

    assert metadata["registration_endpoint"] == "http://localhost/oauth/register"


# --- a registered client at work ----------------------------------------------------------------


def test_a_registered_client_completes_a_code_flow(app: Flask, client: FlaskClient, logged_in):
    body = register(client, issue()).json
    pkce = Pkce.new()
    params = authorize_params(body["client_id"], pkce, scope="openid profile")

    response = client.get("/authorize?" + urlencode(params))
    location = response.headers["Location"]
    assert location.startswith("/authorize/consent")  # a third party: the person is asked
    page = client.get(location)
    decided = client.post(location, data={"approve": "1", "csrf_token": csrf_token(page.text)})
    response = client.get(decided.headers["Location"])
    while not response.headers["Location"].startswith(REDIRECT_URI):
        response = client.get(response.headers["Location"])
    code = query_of(response.headers["Location"])["code"]
    tokens = token_request(
        client,
        {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT_URI,
            "code_verifier": pkce.verifier,
        },
        auth=(body["client_id"], body["client_secret"]),
    )

    assert tokens.status_code == 200, tokens.text
    assert tokens.json["id_token"] and tokens.json["refresh_token"]


# --- RFC 7592 -----------------------------------------------------------------------------------


@pytest.fixture
def registered(app: Flask, client: FlaskClient) -> dict[str, Any]:
    response = register(client, issue())
    assert response.status_code == 201
    return dict(response.json)


def manage(client: FlaskClient, registered: dict[str, Any], method: str, **kwargs: Any) -> Any:
    uri = registered["registration_client_uri"].removeprefix("http://localhost")
    headers = kwargs.pop("headers", bearer(registered["registration_access_token"]))
    return client.open(uri, method=method, headers=headers, **kwargs)


def test_read_answers_the_metadata_without_the_secret(client: FlaskClient, registered):
    response = manage(client, registered, "GET")

    assert response.status_code == 200
    body = response.json
    assert body["client_id"] == registered["client_id"]
    assert body["redirect_uris"] == [REDIRECT_URI]
    assert "client_secret" not in body
    assert body["registration_access_token"] == registered["registration_access_token"]
    assert body["registration_client_uri"] == registered["registration_client_uri"]


def test_update_replaces_the_metadata_and_rotates_the_token(client: FlaskClient, registered):
    new = {
        "client_id": registered["client_id"],
        "client_name": "改名后的系统",
        "redirect_uris": ["https://rp.example/other"],
        "require_consent": False,
    }

    response = manage(client, registered, "PUT", json=new)

    assert response.status_code == 200, response.text
    body = response.json
    assert body["client_name"] == "改名后的系统"
    assert body["redirect_uris"] == ["https://rp.example/other"]
    assert body["grant_types"] == ["authorization_code"]  # omitted: back to the default
    assert body["scope"] == "openid profile phone"
    assert body["require_consent"] is True
    [(_id, metadata)] = clients_stored()
    assert metadata["client_name"] == "改名后的系统" and metadata["grant_types"] == [
        "authorization_code"
    ]
    rotated = body["registration_access_token"]
    assert rotated != registered["registration_access_token"]
    assert manage(client, registered, "GET").status_code == 401
    assert manage(client, registered, "GET", headers=bearer(rotated)).status_code == 200


@pytest.mark.parametrize(
    ("change", "status", "error"),
    [
        ({"redirect_uris": ["javascript:alert(1)"]}, 400, "invalid_redirect_uri"),
        ({"scope": "openid admin"}, 400, "invalid_client_metadata"),
        ({"client_id": "someone-else"}, 400, "invalid_request"),
        ({"client_secret": "not-the-secret"}, 400, "invalid_request"),
        ({"registration_access_token": "x"}, 400, "invalid_request"),
        ({"token_endpoint_auth_method": "none"}, 400, "invalid_client_metadata"),
    ],
)
def test_a_bad_update_changes_nothing(
    client: FlaskClient, registered, change: dict[str, Any], status: int, error: str
):
    before = clients_stored()
    body = {"client_id": registered["client_id"], **METADATA, **change}

    response = manage(client, registered, "PUT", json=body)

    assert (response.status_code, response.json["error"]) == (status, error)
    assert clients_stored() == before
    assert manage(client, registered, "GET").status_code == 200  # the token was not rotated


def test_update_with_the_right_secret_is_accepted(client: FlaskClient, registered):
    body = {**METADATA, "client_id": registered["client_id"]}
    body["client_secret"] = registered["client_secret"]

    assert manage(client, registered, "PUT", json=body).status_code == 200


@both_databases
def test_delete_removes_the_client_and_its_tokens(app: Flask, client: FlaskClient):
    body = {**METADATA, "grant_types": ["authorization_code", "client_credentials"]}
    registered = register(client, issue(), body).json
    credentials = (registered["client_id"], registered["client_secret"])
    grant = {"grant_type": "client_credentials", "scope": "profile"}
    assert token_request(client, grant, auth=credentials).status_code == 200

    response = manage(client, registered, "DELETE")

    assert response.status_code == 204 and response.data == b""
    assert clients_stored() == []
    with current_app.extensions["idp.db"]() as session:
        assert session.scalars(select(RegistrationAccessToken)).all() == []
        assert session.scalars(select(Token)).all() == []
    assert manage(client, registered, "GET").status_code == 401
    refused = token_request(client, grant, auth=credentials)
    assert (refused.status_code, refused.json["error"]) == (401, "invalid_client")
    assert audit_results("oidc.client_removed") == ["success"]


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
def test_a_wrong_registration_token_is_refused(client: FlaskClient, registered, method: str):
    before = clients_stored()

    response = manage(client, registered, method, headers=bearer("wrong"), json=METADATA)

    assert response.status_code == 401
    assert response.json["error"] == "invalid_token"
    assert clients_stored() == before


def test_another_clients_token_does_not_tell_whether_a_client_exists(
    app: Flask, client: FlaskClient, registered
):
    other = register(client, issue()).json
    theirs = bearer(other["registration_access_token"])

    mine = client.get(f"/oauth/register/{registered['client_id']}", headers=theirs)
    nobody = client.get("/oauth/register/no-such-client", headers=theirs)
    deleted = client.delete(f"/oauth/register/{registered['client_id']}", headers=theirs)

    assert mine.status_code == nobody.status_code == deleted.status_code == 401
    assert mine.json == nobody.json
    assert len(clients_stored()) == 2


def test_a_client_registered_in_the_console_has_no_configuration_endpoint(client: FlaskClient, rp):
    response = client.get(f"/oauth/register/{rp.client_id}", headers=bearer("anything"))

    assert response.status_code == 401


def test_a_disabled_client_may_not_manage_itself(app: Flask, client: FlaskClient, registered):
    from idp import db
    from idp.oidc.clients import set_client_disabled

    set_client_disabled(db.session(), registered["client_id"], True, actor="test")
    db.session().commit()

    response = manage(client, registered, "DELETE")

    assert response.status_code == 403
    assert len(clients_stored()) == 1
