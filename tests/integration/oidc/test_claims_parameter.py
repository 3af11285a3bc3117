"""The ``claims`` request parameter (OIDC Core §5.5): individual claims for the ID token and
userinfo, kept with the code for the token endpoint, userinfo and refresh; essential ``acr``
(§5.5.1.1); malformed values refused; unknown claims ignored."""

from __future__ import annotations

import json
from urllib.parse import urlencode

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet

from tests.conftest import register
from tests.flows import (
    PASSWORD,
    REDIRECT_URI,
    Pkce,
    authorize_params,
    csrf_token,
    follow_to_code,
    login,
    query_of,
)
from tests.integration.oidc.helpers import redeem, refresh

OPERATOR_ACR = "urn:idp:acr:operator"
UKEY_ACR = "urn:idp:acr:ukey"


def id_token_claims(client, token: str) -> dict:
    keys = KeySet.import_key_set(client.get("/.well-known/jwks.json").json)
    return dict(jwt.decode(token, keys).claims)


def flow(client, rp, claims: object, scope: str = "openid") -> dict:
    pkce = Pkce.new()
    code = follow_to_code(
        client,
        authorize_params(rp.client_id, pkce, scope=scope, claims=json.dumps(claims)),
    )["code"]
    response = redeem(client, rp, code, pkce.verifier)
    assert response.status_code == 200, response.text
    return response.json


def userinfo(client, access_token: str) -> dict:
    response = client.get("/oauth/userinfo", headers={"Authorization": f"Bearer {access_token}"})
    assert response.status_code == 200, response.text
    return dict(response.json)


def authorize_error(client, rp, claims: str, **extra: str) -> dict[str, str]:
    params = authorize_params(rp.client_id, Pkce.new(), claims=claims, **extra)
    response = client.get("/authorize?" + urlencode(params))
    assert response.status_code == 302, response.text
    location = response.headers["Location"]
    assert location.startswith(REDIRECT_URI), location
    return query_of(location)


def test_discovery_advertises_the_claims_parameter_and_every_claim_issued(client, rp, logged_in):
    metadata = client.get("/.well-known/openid-configuration").json
    assert metadata["claims_parameter_supported"] is True
    assert metadata["acr_values_supported"] == [OPERATOR_ACR, UKEY_ACR]
    body = flow(
        client,
        rp,
        {"userinfo": {"acr": None, "auth_time": None, "amr": None}},
        scope="openid profile phone",
    )
    issued = set(id_token_claims(client, body["id_token"])) | set(
        userinfo(client, body["access_token"])
    )
    assert issued <= set(metadata["claims_supported"])
    assert {"name", "phone_number", "acr", "sid", "org_type", "role"} <= issued


def test_claims_asked_for_the_id_token_only_are_in_the_id_token_only(client, rp, logged_in):
    body = flow(client, rp, {"id_token": {"name": None, "phone_number": {"essential": True}}})
    claims = id_token_claims(client, body["id_token"])
    assert claims["name"] == "张三"
    assert claims["phone_number"] == "+8613800138000"
    info = userinfo(client, body["access_token"])
    assert "name" not in info
    assert "phone_number" not in info
    assert info["role"] == "operator"


def test_claims_asked_for_userinfo_reach_userinfo_and_survive_refresh(client, rp, logged_in):
    body = flow(client, rp, {"userinfo": {"name": None, "acr": None, "auth_time": None}})
    assert "name" not in id_token_claims(client, body["id_token"])
    info = userinfo(client, body["access_token"])
    assert info["name"] == "张三"
    assert info["acr"] == OPERATOR_ACR
    assert isinstance(info["auth_time"], int)


def test_requested_claims_apply_after_refresh(client, logged_in, app):
    rp = register(
        app,
        {
            "client_name": "刷新",
            "redirect_uris": [REDIRECT_URI],
            "grant_types": ["authorization_code", "refresh_token"],
            "scope": "openid profile phone",
        },
    )
    body = flow(client, rp, {"id_token": {"name": None}, "userinfo": {"phone_number": None}})
    refreshed = refresh(client, rp, body["refresh_token"])
    assert refreshed.status_code == 200, refreshed.text
    claims = id_token_claims(client, refreshed.json["id_token"])
    assert claims["name"] == "张三"
    assert claims["acr"] == OPERATOR_ACR  # the login's acr, also in a refreshed ID token
    assert userinfo(client, refreshed.json["access_token"])["phone_number"] == "+8613800138000"


def test_claims_of_a_scope_the_client_is_not_registered_for_are_not_released(
    client, app, logged_in
):
    narrow = register(
        app,
        {"client_name": "只有 openid", "redirect_uris": [REDIRECT_URI], "scope": "openid"},
    )
    body = flow(client, narrow, {"id_token": {"phone_number": {"essential": True}, "name": None}})
    claims = id_token_claims(client, body["id_token"])
    assert "phone_number" not in claims
    assert "name" not in claims
    assert claims["role"] == "operator"


def test_unknown_claims_and_members_are_ignored(client, rp, logged_in):
    body = flow(
        client,
        rp,
        {
            "id_token": {"email": {"essential": True}, "https://x.example/c": None, "name": None},
            "userinfo": {"address": None},
            "other": {"name": None},
        },
    )
    claims = id_token_claims(client, body["id_token"])
    assert claims["name"] == "张三"
    assert "email" not in claims
    assert "address" not in userinfo(client, body["access_token"])


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        ("{not json", "not valid JSON"),
        ('["name"]', "must be a JSON object"),
        ('{"id_token": ["name"]}', "claims.id_token must be a JSON object"),
        ('{"userinfo": {"name": true}}', "must be null or a JSON object"),
        ('{"id_token": {"acr": {"essential": "yes"}}}', "essential must be true or false"),
        ('{"id_token": {"acr": {"values": "urn:idp:acr:ukey"}}}', "values must be"),
        ('{"id_token": {"acr": {"value": "a", "values": ["a"]}}}', "not both"),
    ],
)
def test_a_malformed_claims_parameter_is_invalid_request(client, rp, logged_in, claims, reason):
    params = authorize_error(client, rp, claims)
    assert params["error"] == "invalid_request"
    assert reason in params["error_description"]
    assert "code" not in params


def test_an_essential_acr_the_session_has_is_met(client, rp, logged_in):
    body = flow(
        client, rp, {"id_token": {"acr": {"essential": True, "values": [OPERATOR_ACR, UKEY_ACR]}}}
    )
    assert id_token_claims(client, body["id_token"])["acr"] == OPERATOR_ACR


def test_an_essential_acr_the_session_lacks_asks_for_the_ukey_login(client, rp, logged_in):
    claims = json.dumps({"id_token": {"acr": {"essential": True, "value": UKEY_ACR}}})
    params = authorize_params(rp.client_id, Pkce.new(), claims=claims)
    response = client.get("/authorize?" + urlencode(params))
    assert response.status_code == 302
    location = response.headers["Location"]
    assert location.startswith("/login?"), location
    assert query_of(location)["method"] == "cert"


def test_a_login_made_for_the_request_that_still_lacks_the_acr_fails_it(
    client, rp, outbox, operator
):
    claims = json.dumps({"id_token": {"acr": {"essential": True, "value": UKEY_ACR}}})
    params = authorize_params(rp.client_id, Pkce.new(), claims=claims)
    first = client.get("/authorize?" + urlencode(params))
    interaction = query_of(first.headers["Location"])["interaction"]
    done = login(client, outbox, phone=operator.phone, password=PASSWORD, interaction=interaction)
    assert done.status_code == 302, done.text
    result = follow_to_code(client, {**params, "interaction": interaction})
    assert result["error"] == "unmet_authentication_requirements"
    assert result["state"] == params["state"]
    assert "code" not in result


def test_an_unmet_essential_acr_with_prompt_none_is_login_required(client, rp, logged_in):
    claims = json.dumps({"userinfo": {"acr": {"essential": True, "values": [UKEY_ACR]}}})
    assert authorize_error(client, rp, claims, prompt="none")["error"] == "login_required"


def test_an_essential_acr_no_login_here_gives_fails_at_once(client, rp, logged_in):
    claims = json.dumps({"id_token": {"acr": {"essential": True, "value": "urn:other:gold"}}})
    assert authorize_error(client, rp, claims)["error"] == "unmet_authentication_requirements"


def test_a_voluntary_acr_value_does_not_change_the_login(client, rp, logged_in):
    body = flow(client, rp, {"id_token": {"acr": {"values": [UKEY_ACR]}}})
    assert id_token_claims(client, body["id_token"])["acr"] == OPERATOR_ACR


def test_sub_with_a_value_is_answered_only_by_that_persons_session(client, rp, logged_in):
    body = flow(client, rp, {"id_token": {"name": None}})
    sub = id_token_claims(client, body["id_token"])["sub"]
    same = flow(client, rp, {"id_token": {"sub": {"value": sub}}})
    assert id_token_claims(client, same["id_token"])["sub"] == sub
    claims = json.dumps({"id_token": {"sub": {"value": "someone-else"}}})
    assert authorize_error(client, rp, claims, prompt="none")["error"] == "login_required"


def test_claims_of_a_scope_not_requested_are_on_the_consent_page_and_need_a_new_consent(
    client, app, logged_in
):
    """A consent given for ``openid`` does not cover the phone number asked for one by one."""
    consenting = register(
        app,
        {
            "client_name": "需同意",
            "redirect_uris": [REDIRECT_URI],
            "scope": "openid profile phone",
            "require_consent": True,
        },
    )

    def consent_page(claims: dict | None) -> tuple[str, object]:
        extra = {"claims": json.dumps(claims)} if claims else {}
        params = authorize_params(consenting.client_id, Pkce.new(), scope="openid", **extra)
        response = client.get("/authorize?" + urlencode(params))
        location = response.headers["Location"]
        return location, client.get(location) if location.startswith("/authorize/") else None

    location, page = consent_page(None)
    assert location.startswith("/authorize/consent")
    assert "手机号" not in page.text
    approved = client.post(location, data={"approve": "1", "csrf_token": csrf_token(page.text)})
    assert approved.status_code == 302

    location, page = consent_page({"userinfo": {"phone_number": None}})

    assert location.startswith("/authorize/consent")  # the earlier consent does not cover it
    assert "手机号" in page.text
