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
