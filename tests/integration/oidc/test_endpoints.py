"""Discovery, JWKS, userinfo, revocation (RFC 7009), introspection (RFC 7662) and
RP-initiated logout."""

from __future__ import annotations

import pytest
from authlib.oidc.discovery import OpenIDProviderMetadata
from joserfc import jwt
from sqlalchemy import func, select

from idp import db
from idp.oidc.models import Token
from idp.signing import published_keys
from tests.conftest import make_operator, register
from tests.flows import (
    PASSWORD,
    REDIRECT_URI,
    Pkce,
    authorize_params,
    csrf_token,
    login,
    query_of,
    token_request,
)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_discovery_is_complete_and_valid(client, app):
    response = client.get("/.well-known/openid-configuration")
    assert response.status_code == 200
    metadata = response.json
    OpenIDProviderMetadata(metadata).validate()
    assert metadata["issuer"] == "http://localhost"
    assert metadata["token_endpoint"] == "http://localhost/oauth/token"
    assert metadata["registration_endpoint"] == "http://localhost/oauth/register"
    assert metadata["code_challenge_methods_supported"] == ["S256"]
    assert metadata["response_types_supported"] == ["code"]
    assert metadata["authorization_response_iss_parameter_supported"] is True
    assert set(metadata["response_modes_supported"]) == {"query", "form_post"}
    # Every advertised endpoint answers (not 404).
    for name in (
        "authorization_endpoint",
        "token_endpoint",
        "userinfo_endpoint",
        "jwks_uri",
        "revocation_endpoint",
        "introspection_endpoint",
        "end_session_endpoint",
        "registration_endpoint",
    ):
        path = metadata[name].removeprefix("http://localhost")
        assert client.get(path).status_code != 404, name


def test_discovery_grants_match_registered_grants(app):
    from idp.oidc.server import authorization_server

    with app.test_request_context():
        from idp.oidc.discovery import metadata

        advertised = set(metadata()["grant_types_supported"])
        registered = {grant.GRANT_TYPE for grant, _ in authorization_server()._token_grants}
    assert advertised == registered


def test_jwks_publishes_public_keys_with_kid(client):
    keys = client.get("/.well-known/jwks.json").json["keys"]
    assert {k["alg"] for k in keys} >= {"ES256", "RS256"}
    for key in keys:
        assert key["kid"]
        assert not {"d", "p", "q", "dp", "dq", "qi"} & set(key)


def test_jwks_is_cached_no_longer_than_a_new_key_waits(client, settings):
    """A next key signs only after IDP_JWKS_MAX_AGE, the lifetime RPs may cache the JWKS for."""
    response = client.get("/.well-known/jwks.json")
    assert response.headers["Cache-Control"] == f"public, max-age={settings.jwks_max_age}"


@pytest.mark.parametrize(
    ("path", "max_age"),
    [("/.well-known/openid-configuration", 300), ("/.well-known/jwks.json", None)],
)
def test_discovery_and_jwks_answer_if_none_match_with_304(client, settings, path, max_age):
    first = client.get(path)
    etag = first.headers["ETag"]
    assert etag.startswith('"') and etag.endswith('"')
    again = client.get(path, headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.data == b""
    assert again.headers["ETag"] == etag
    max_age = max_age or settings.jwks_max_age
    assert again.headers["Cache-Control"] == f"public, max-age={max_age}"
    other = client.get(path, headers={"If-None-Match": '"something-else"'})
    assert other.status_code == 200
    assert other.json == first.json


def test_jwks_etag_changes_with_a_rotation_and_shows_the_new_key(client, app):
    from idp.signing import key_store

    before = client.get("/.well-known/jwks.json")
    with app.test_request_context():
        key_store().rotate("ES256", immediately=True)
        active = key_store().signing_key("ES256").kid
    after = client.get("/.well-known/jwks.json", headers={"If-None-Match": before.headers["ETag"]})
    assert after.status_code == 200
    assert after.headers["ETag"] != before.headers["ETag"]
    assert active in {key["kid"] for key in after.json["keys"]}


def test_id_token_survives_key_rotation(client, issue_tokens, app):
    from idp.signing import key_store

    before = issue_tokens()["id_token"]
    with app.test_request_context():
        old_kid = key_store().signing_key("ES256").kid
        key_store().rotate("ES256", immediately=True)
        after_rotation = published_keys()
    jwt.decode(before, after_rotation)  # the old token still verifies
    after = issue_tokens()["id_token"]
    token = jwt.decode(after, after_rotation)
    assert token.header["kid"] != old_kid


def test_userinfo_accepts_header_and_form_post(client, issue_tokens):
    access = issue_tokens()["access_token"]
    assert client.get("/oauth/userinfo", headers=bearer(access)).json["name"] == "张三"
    assert client.post("/oauth/userinfo", headers=bearer(access)).status_code == 200
    assert client.post("/oauth/userinfo", data={"access_token": access}).json["org_type"] == "audit"


@pytest.mark.parametrize("header", [None, "Bearer nope", "Basic abc", "Bearer "])
def test_userinfo_rejects_missing_or_bad_tokens(client, header):
    response = client.get("/oauth/userinfo", headers={"Authorization": header} if header else {})
    assert response.status_code == 401
    assert "WWW-Authenticate" in response.headers


def test_userinfo_rejects_expired_token(client, issue_tokens):
    access = issue_tokens()["access_token"]
    expire_access_tokens()
    assert client.get("/oauth/userinfo", headers=bearer(access)).status_code == 401


def test_revocation_of_refresh_token_ends_the_family(client, rp, issue_tokens):
    tokens = issue_tokens()
    response = client.post("/oauth/revoke", data={"token": tokens["refresh_token"]}, auth=rp.auth)
    assert response.status_code == 200
    assert client.get("/oauth/userinfo", headers=bearer(tokens["access_token"])).status_code == 401
    refreshed = token_request(
        client,
        {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
        auth=rp.auth,
    )
    assert refreshed.json["error"] == "invalid_grant"


def test_revocation_of_unknown_token_is_ok(client, rp):
    response = client.post("/oauth/revoke", data={"token": "unknown"}, auth=rp.auth)
    assert response.status_code == 200


def test_revocation_needs_client_authentication(client, issue_tokens):
    tokens = issue_tokens()
    response = client.post("/oauth/revoke", data={"token": tokens["access_token"]})
    assert response.status_code == 401
    assert client.get("/oauth/userinfo", headers=bearer(tokens["access_token"])).status_code == 200


def test_another_client_cannot_revoke(client, app, issue_tokens):
    tokens = issue_tokens()
    other = register(app, {"redirect_uris": [REDIRECT_URI]})
    response = client.post("/oauth/revoke", data={"token": tokens["access_token"]}, auth=other.auth)
    assert response.status_code == 400
    assert client.get("/oauth/userinfo", headers=bearer(tokens["access_token"])).status_code == 200


def test_introspection_of_own_tokens(client, rp, issue_tokens):
    tokens = issue_tokens()
    body = client.post(
        "/oauth/introspect", data={"token": tokens["access_token"]}, auth=rp.auth
    ).json
    assert body["active"] is True
    assert body["client_id"] == rp.client_id
    assert body["role"] == "operator"
    assert body["token_type"] == "Bearer"
    refresh = client.post(
        "/oauth/introspect",
        data={"token": tokens["refresh_token"], "token_type_hint": "refresh_token"},
        auth=rp.auth,
    ).json
    assert refresh["active"] is True
    assert refresh["exp"] > body["exp"]
    unknown = client.post("/oauth/introspect", data={"token": "nope"}, auth=rp.auth)
    assert unknown.json == {"active": False}


def test_a_refresh_token_stays_active_after_its_access_token_expired(client, rp, issue_tokens):
    """RFC 7662 §2.2: a refresh token is active while it can be used, whatever the access token
    issued with it; and the expired access token itself is not."""
    tokens = issue_tokens()
    expire_access_tokens()

    def introspect(token: str) -> dict:
        return client.post("/oauth/introspect", data={"token": token}, auth=rp.auth).json

    refresh = introspect(tokens["refresh_token"])
    assert refresh["active"] is True and refresh["scope"] == "openid profile phone"
    assert introspect(tokens["access_token"]) == {"active": False}


def expire_access_tokens() -> None:
    from datetime import timedelta

    from idp import db
    from idp.db import utcnow
    from idp.oidc.models import Token

    db.session().execute(
        Token.__table__.update().values(access_expires_at=utcnow() - timedelta(seconds=1))
    )
    db.session().commit()


def test_introspection_by_other_clients_needs_permission(client, app, issue_tokens):
    tokens = issue_tokens()
    stranger = register(app, {"redirect_uris": [REDIRECT_URI]})
    refused = client.post(
        "/oauth/introspect", data={"token": tokens["access_token"]}, auth=stranger.auth
    )
    assert refused.status_code == 200
    assert refused.json == {"active": False}  # RFC 7662 §2.2: not allowed looks like inactive
    resource_server = register(
        app,
        {
            "grant_types": ["client_credentials"],
            "scope": "org.operators",
            "introspection_allowed": True,
        },
    )
    allowed = client.post(
        "/oauth/introspect", data={"token": tokens["access_token"]}, auth=resource_server.auth
    )
    assert allowed.json["active"] is True


def test_introspection_after_revocation_is_inactive(client, rp, issue_tokens):
    tokens = issue_tokens()
    client.post("/oauth/revoke", data={"token": tokens["access_token"]}, auth=rp.auth)
    body = client.post(
        "/oauth/introspect", data={"token": tokens["access_token"]}, auth=rp.auth
    ).json
    assert body == {"active": False}


def test_rp_initiated_logout_ends_session_and_redirects(client, rp, issue_tokens):
    id_token = issue_tokens()["id_token"]
    response = client.get(
        "/oauth/logout",
        query_string={
            "id_token_hint": id_token,
            "post_logout_redirect_uri": "https://rp.example/logged-out",
            "state": "s1",
        },
    )
    assert response.status_code == 302
    assert response.headers["Location"] == "https://rp.example/logged-out?state=s1"
    assert "idp_session=;" in response.headers.get("Set-Cookie", "")
    again = client.get(
        "/authorize", query_string=authorize_params(rp.client_id, Pkce.new(), prompt="none")
    )
    assert query_of(again.headers["Location"])["error"] == "login_required"


def test_logout_to_unregistered_uri_does_not_redirect(client, issue_tokens):
    id_token = issue_tokens()["id_token"]
    response = client.get(
        "/oauth/logout",
        query_string={
            "id_token_hint": id_token,
            "post_logout_redirect_uri": "https://evil.example/",
        },
    )
    assert response.status_code == 200
    assert "Location" not in response.headers
    assert "您已安全退出" in response.text


def test_logout_with_forged_hint_is_refused(client, issue_tokens):
    id_token = issue_tokens()["id_token"]
    forged = id_token[:-4] + ("AAAA" if not id_token.endswith("AAAA") else "BBBB")
    response = client.get(
        "/oauth/logout",
        query_string={
            "id_token_hint": forged,
            "post_logout_redirect_uri": "https://rp.example/logged-out",
        },
    )
    assert response.status_code == 400
    assert "Location" not in response.headers


def test_logout_without_hint_asks_for_confirmation(client, logged_in):
    response = client.get("/oauth/logout")
    assert response.status_code == 200
    assert "确定要退出统一认证登录平台吗" in response.text
    assert client.get("/portal").status_code == 200


def test_every_page_has_csp_and_anti_framing(client, rp):
    for path in ("/login", "/.well-known/openid-configuration", "/authorize"):
        response = client.get(path)
        assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"], path
        assert response.headers["X-Frame-Options"] == "DENY", path


def logout_params(id_token, **extra):
    return {
        "id_token_hint": id_token,
        "post_logout_redirect_uri": "https://rp.example/logged-out",
        "state": "s1",
        **extra,
    }


def test_logout_with_a_hint_of_another_session_asks_first(client, org, outbox, issue_tokens):
    """An ID token of this browser's earlier session (another sid) does not log out silently."""
    id_token = issue_tokens()["id_token"]
    client.post("/logout", data={"csrf_token": csrf_token(client.get("/logout").text)})
    other = make_operator(org, name="李四", phone="13900139000", first_login=False)
    assert login(client, outbox, phone=other.phone, password=PASSWORD).status_code == 302
    for method in (client.get, client.post):
        kwargs = {"query_string" if method == client.get else "data": logout_params(id_token)}
        page = method("/oauth/logout", **kwargs)
        assert page.status_code == 200
        assert "确定要退出统一认证登录平台吗" in page.text
        assert "Location" not in page.headers
        assert "idp_session=;" not in page.headers.get("Set-Cookie", "")
    assert client.get("/portal").status_code == 200
    # Without the page's CSRF token an answer does not count.
    forged = client.post("/oauth/logout", data={**logout_params(id_token), "confirm": "1"})
    assert forged.status_code == 400
    assert client.get("/portal").status_code == 200


def test_logout_confirmation_confirm_and_decline(client, org, outbox, issue_tokens):
    id_token = issue_tokens()["id_token"]
    client.post("/logout", data={"csrf_token": csrf_token(client.get("/logout").text)})
    other = make_operator(org, name="李四", phone="13900139000", first_login=False)
    assert login(client, outbox, phone=other.phone, password=PASSWORD).status_code == 302
    page = client.get("/oauth/logout", query_string=logout_params(id_token))
    # The form ends in a redirect to the relying party: form-action allows its origin.
    assert "form-action 'self' https://rp.example;" in page.headers["Content-Security-Policy"]
    declined = client.post(
        "/oauth/logout",
        data={**logout_params(id_token), "decline": "1", "csrf_token": csrf_token(page.text)},
    )
    assert declined.status_code == 302
    assert declined.headers["Location"] == "/portal"
    assert client.get("/portal").status_code == 200
    confirmed = client.post(
        "/oauth/logout",
        data={**logout_params(id_token), "confirm": "1", "csrf_token": csrf_token(page.text)},
    )
    assert confirmed.status_code == 302
    assert confirmed.headers["Location"] == "https://rp.example/logged-out?state=s1"
    assert "idp_session=;" in confirmed.headers.get("Set-Cookie", "")
    assert client.get("/portal").status_code == 302


PLAIN_HTTP = "http://idp.example.cn"  # neither HTTPS nor this machine


@pytest.mark.parametrize("base_url", ["https://idp.example.cn", "http://127.0.0.1", "http://[::1]"])
def test_a_client_is_served_over_https_or_on_this_machine(app, client, base_url):
    backend = register(app, {"grant_types": ["client_credentials"], "scope": "org.operators"})
    response = client.post(
        "/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=backend.auth,
        base_url=base_url,
    )
    assert response.status_code == 200, response.text
    assert response.json["access_token"]


@pytest.mark.parametrize(
    ("method", "path", "data"),
    [
        ("POST", "/oauth/token", {"grant_type": "client_credentials"}),
        ("POST", "/oauth/introspect", {"token": "any"}),
        ("POST", "/oauth/revoke", {"token": "any"}),
        ("GET", "/oauth/userinfo", None),
    ],
)
def test_a_protocol_request_over_plain_http_is_refused_and_changes_nothing(
    app, client, rp, issue_tokens, method, path, data
):
    issued = issue_tokens()
    backend = register(app, {"grant_types": ["client_credentials"], "scope": "org.operators"})
    sent = (
        {"data": data, "auth": backend.auth}
        if data
        else {"headers": bearer(issued["access_token"])}
    )
    tokens = db.session().scalar(select(func.count()).select_from(Token))

    response = client.open(path, method=method, base_url=PLAIN_HTTP, **sent)

    assert response.status_code == 400, response.text
    assert response.json == {
        "error": "insecure_transport",
        "error_description": "请通过 HTTPS 访问",
    }
    assert db.session().scalar(select(func.count()).select_from(Token)) == tokens


def test_a_userinfo_token_in_the_form_over_plain_http_is_refused(client, issue_tokens):
    issued = issue_tokens()

    response = client.post(
        "/oauth/userinfo", data={"access_token": issued["access_token"]}, base_url=PLAIN_HTTP
    )

    assert response.status_code == 400, response.text
    assert response.json["error"] == "insecure_transport"
    served = client.post("/oauth/userinfo", data={"access_token": issued["access_token"]})
    assert served.status_code == 200, served.text


def test_a_login_request_over_plain_http_is_refused_on_a_page(client, rp):
    pkce = Pkce.new()
    response = client.get(
        "/authorize", query_string=authorize_params(rp.client_id, pkce), base_url=PLAIN_HTTP
    )
    assert response.status_code == 400
    assert 'data-error-code="insecure_transport"' in response.text
    assert "Location" not in response.headers
