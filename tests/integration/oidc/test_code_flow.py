"""The authorization code flow end to end through the real app."""

from __future__ import annotations

from joserfc import jwt
from joserfc.jwk import KeySet

from tests.flows import (
    PASSWORD,
    Pkce,
    authorize_params,
    follow_to_code,
    login,
    query_of,
    token_request,
)


def test_full_code_flow_issues_role_scoped_id_token(client, outbox, operator, rp):
    pkce = Pkce.new()
    params = authorize_params(rp.client_id, pkce)
    first = client.get("/authorize", query_string=params)
    assert first.status_code == 302
    assert first.headers["Location"].startswith("/login?interaction=")
    interaction = query_of(first.headers["Location"])["interaction"]

    done = login(client, outbox, phone=operator.phone, password=PASSWORD, interaction=interaction)
    assert done.status_code == 302, done.text
    result = follow_to_code(client, {**params, "interaction": interaction})
    assert result["state"] == params["state"]
    assert result["iss"] == "http://localhost"

    response = token_request(
        client,
        {
            "grant_type": "authorization_code",
            "code": result["code"],
            "redirect_uri": params["redirect_uri"],
            "code_verifier": pkce.verifier,
        },
        auth=rp.auth,
    )
    assert response.status_code == 200, response.text
    body = response.json
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 600
    jwks = KeySet.import_key_set(client.get("/.well-known/jwks.json").json)
    token = jwt.decode(body["id_token"], jwks)
    claims = token.claims
    assert token.header["alg"] == "ES256"
    assert "kid" in token.header
    assert claims["iss"] == "http://localhost"
    assert claims["aud"] == rp.client_id
    assert claims["azp"] == rp.client_id
    assert claims["nonce"] == params["nonce"]
    assert claims["amr"] == ["pwd", "sms", "mfa"]
    assert claims["name"] == "张三"
    assert claims["org"]["uscc"] == "91310000MA1K000019"
    assert claims["org_type"] == "audit"
    assert claims["role"] == "operator"
    assert claims["sub"] == operator.subject
    assert {"exp", "iat", "auth_time", "at_hash", "sid", "acr"} <= set(claims)

    info = client.get(
        "/oauth/userinfo", headers={"Authorization": f"Bearer {body['access_token']}"}
    )
    assert info.status_code == 200
    assert info.json["sub"] == operator.subject
    assert info.json["phone_number"] == "+8613800138000"


def test_a_code_claimed_by_an_exchange_that_then_fails_is_on_record(client, rp, logged_in):
    """The claim is committed before the tokens are issued; its audit event goes with it, so a
    code used up by an exchange that failed afterwards (here: a wrong PKCE verifier; in
    production also a worker killed mid-exchange) is still on record with its client."""
    from sqlalchemy import select

    from idp import db
    from idp.audit.models import AuditEvent
    from idp.oidc.models import AuthorizationCode

    pkce = Pkce.new()
    params = authorize_params(rp.client_id, pkce)
    code = follow_to_code(client, params)["code"]
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": params["redirect_uri"],
    }

    failed = token_request(client, {**data, "code_verifier": Pkce.new().verifier}, auth=rp.auth)
    retried = token_request(client, {**data, "code_verifier": pkce.verifier}, auth=rp.auth)

    assert (failed.status_code, failed.json["error"]) == (400, "invalid_grant")
    assert (retried.status_code, retried.json["error"]) == (400, "invalid_grant")
    (claimed,) = db.session().scalars(select(AuthorizationCode)).all()
    events = db.session().execute(
        select(AuditEvent.action, AuditEvent.actor, AuditEvent.target)
        .where(AuditEvent.action.in_(["oidc.code_redeemed", "oidc.code_reused"]))
        .order_by(AuditEvent.id)
    )
    assert [tuple(e) for e in events] == [
        ("oidc.code_redeemed", f"client:{rp.client_id}", f"code:{claimed.id}"),
        ("oidc.code_reused", f"client:{rp.client_id}", f"code:{claimed.id}"),
    ]
