"""Malformed input at every public endpoint gets a clear 4xx, never a server error: control
characters, backslashes, NUL, overlong and invalid UTF-8 values, repeated parameters; and the
protocol rules on where parameters may come from (one client authentication method, one place
for the access token, no request objects)."""

from __future__ import annotations

import base64
from urllib.parse import urlencode

import pytest

from tests.flows import REDIRECT_URI, Pkce, authorize_params, csrf_token, query_of

# Raw query-string fragments (already percent-encoded where needed), one bad value each.
BAD_VALUES = {
    "crlf": "%0d%0aSet-Cookie:%20x=1",
    "nul": "%00",
    "control": "a%01b%1fc%7f",
    "backslash": "https://rp.example\\callback",
    "encoded_backslash": "https://rp.example%5ccallback",
    "invalid_utf8": "%ff%fe%c3",
    "overlong_utf8": "%c0%af",
    "long": "a" * 20000,
}


def query(params: dict[str, str], name: str, raw: str) -> str:
    rest = {k: v for k, v in params.items() if k != name}
    return urlencode(rest) + f"&{name}={raw}"


def assert_clear_4xx(response, *, json: bool) -> None:
    assert 400 <= response.status_code < 500, (response.status_code, response.text[:300])
    if json:
        assert response.json["error"]
    else:
        assert "<html" in response.text


# --- /authorize ------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", sorted(BAD_VALUES))
def test_authorize_malformed_redirect_uri_is_a_400_page(client, rp, kind):
    params = authorize_params(rp.client_id, Pkce.new())
    response = client.get("/authorize?" + query(params, "redirect_uri", BAD_VALUES[kind]))
    assert response.status_code == 400
    assert "Location" not in response.headers
    assert "invalid_request" in response.text or "redirect" in response.text


@pytest.mark.parametrize("name", ["state", "nonce", "scope", "client_id", "code_challenge"])
@pytest.mark.parametrize("kind", ["crlf", "nul", "invalid_utf8"])
def test_authorize_malformed_parameter_is_a_400_page(client, rp, name, kind):
    params = authorize_params(rp.client_id, Pkce.new())
    response = client.get("/authorize?" + query(params, name, BAD_VALUES[kind]))
    assert response.status_code == 400
    assert "Location" not in response.headers


@pytest.mark.parametrize("name", ["redirect_uri", "state", "client_id", "response_type"])
def test_authorize_repeated_parameter_is_a_400_page(client, rp, name):
    params = authorize_params(rp.client_id, Pkce.new())
    response = client.get("/authorize?" + urlencode(params) + f"&{name}={params[name]}")
    assert response.status_code == 400
    assert "Location" not in response.headers


def test_authorize_post_with_a_parameter_in_query_and_body_is_a_400_page(client, rp):
    params = authorize_params(rp.client_id, Pkce.new())
    response = client.post(f"/authorize?state={params['state']}", data=params)
    assert response.status_code == 400


@pytest.mark.parametrize(
    ("name", "error"),
    [
        ("request", "request_not_supported"),
        ("request_uri", "request_uri_not_supported"),
        ("registration", "registration_not_supported"),
    ],
)
def test_request_objects_and_registration_are_refused_at_the_client(client, rp, name, error):
    """OIDC Core §6.1, §6.2, §7.2.1: the error goes to the (valid) redirect URI with state."""
    params = authorize_params(rp.client_id, Pkce.new(), **{name: "eyJhbGciOiJub25lIn0.e30."})
    response = client.get("/authorize", query_string=params)
    assert response.status_code == 302
    assert response.headers["Location"].startswith(REDIRECT_URI)
    result = query_of(response.headers["Location"])
    assert result["error"] == error
    assert result["state"] == params["state"]


# --- token, revocation, introspection -------------------------------------------------------


def basic(client_id: str, secret: str) -> dict[str, str]:
    raw = f"{client_id}:{secret}".encode()
    return {"Authorization": "Basic " + base64.b64encode(raw).decode()}


CLIENT_ENDPOINTS = ["/oauth/token", "/oauth/revoke", "/oauth/introspect"]


@pytest.mark.parametrize("path", CLIENT_ENDPOINTS)
def test_two_client_authentication_methods_are_invalid_request(client, rp, path):
    """RFC 6749 §2.3: Basic and client_secret in the body together."""
    data = {
        "grant_type": "client_credentials",
        "token": "x",
        "client_id": rp.client_id,
        "client_secret": rp.secret,
    }
    response = client.post(path, data=data, headers=basic(*rp.auth))
    assert response.status_code == 400
    assert response.json["error"] == "invalid_request"
    assert "authentication" in response.json["error_description"]


@pytest.mark.parametrize("path", CLIENT_ENDPOINTS)
def test_repeated_parameter_is_invalid_request(client, rp, path):
    """RFC 6749 §3.2: parameters sent without a value or more than once are refused."""
    body = "grant_type=client_credentials&grant_type=client_credentials&token=a&token=b"
    response = client.post(
        path,
        data=body,
        content_type="application/x-www-form-urlencoded",
        headers=basic(*rp.auth),
    )
    assert response.status_code == 400
    assert response.json["error"] == "invalid_request"


@pytest.mark.parametrize("path", CLIENT_ENDPOINTS)
@pytest.mark.parametrize("kind", sorted(BAD_VALUES))
def test_client_endpoints_refuse_malformed_values(client, rp, path, kind):
    body = f"grant_type=authorization_code&code={BAD_VALUES[kind]}&token={BAD_VALUES[kind]}"
    body += f"&redirect_uri={BAD_VALUES[kind]}"
    response = client.post(
        path,
        data=body,
        content_type="application/x-www-form-urlencoded",
        headers=basic(*rp.auth),
    )
    assert_clear_4xx(response, json=True)


@pytest.mark.parametrize("path", CLIENT_ENDPOINTS)
def test_client_endpoints_refuse_malformed_basic_credentials(client, path):
    for header in ("Basic %%%", "Basic " + base64.b64encode(b"\xff\xfe:\x00").decode(), "Basic"):
        response = client.post(
            path, data={"grant_type": "client_credentials"}, headers={"Authorization": header}
        )
        assert_clear_4xx(response, json=True)


# --- userinfo ---------------------------------------------------------------------------------


def test_userinfo_token_in_two_places_is_invalid_request(client, issue_tokens):
    """RFC 6750 §2: a client uses one method to send the token."""
    token = issue_tokens()["access_token"]
    bearer = {"Authorization": f"Bearer {token}"}
    both = client.post("/oauth/userinfo", data={"access_token": token}, headers=bearer)
    assert both.status_code == 400
    assert both.json["error"] == "invalid_request"
    in_query = client.get(f"/oauth/userinfo?access_token={token}", headers=bearer)
    assert in_query.status_code == 400
    assert client.get("/oauth/userinfo", headers=bearer).status_code == 200


@pytest.mark.parametrize("kind", sorted(BAD_VALUES))
def test_userinfo_refuses_malformed_values(client, kind):
    response = client.post(
        "/oauth/userinfo",
        data=f"access_token={BAD_VALUES[kind]}",
        content_type="application/x-www-form-urlencoded",
    )
    assert_clear_4xx(response, json=True)
    header = client.get("/oauth/userinfo", headers={"Authorization": "Bearer a\\b"})
    assert_clear_4xx(header, json=True)


# --- end_session --------------------------------------------------------------------------


@pytest.mark.parametrize("kind", sorted(BAD_VALUES))
@pytest.mark.parametrize("name", ["post_logout_redirect_uri", "id_token_hint", "state"])
def test_end_session_refuses_malformed_values(client, rp, kind, name):
    if name != "post_logout_redirect_uri" and "backslash" in kind:
        return  # a backslash is a legitimate character of an opaque value
    params = {"client_id": rp.client_id, "post_logout_redirect_uri": REDIRECT_URI}
    response = client.get("/oauth/logout?" + query(params, name, BAD_VALUES[kind]))
    assert_clear_4xx(response, json=False)
    assert "Location" not in response.headers


def test_end_session_repeated_parameter_is_refused(client, rp):
    response = client.get(f"/oauth/logout?client_id={rp.client_id}&state=a&state=b")
    assert response.status_code == 400


# --- login forms, SMS, UKey challenge ---------------------------------------------------------


@pytest.mark.parametrize("kind", sorted(BAD_VALUES))
def test_login_forms_refuse_malformed_values(client, kind):
    page = client.get("/login")
    token = csrf_token(page.text)
    bad = BAD_VALUES[kind]
    for path in ("/login", "/login/sms-code"):
        body = f"csrf_token={token}&phone={bad}&password={bad}&sms_code={bad}&interaction={bad}"
        response = client.post(path, data=body, content_type="application/x-www-form-urlencoded")
        assert 400 <= response.status_code < 500, (path, response.status_code)
    assert client.get(f"/login?interaction={bad}&phone={bad}").status_code == 200


def test_login_forms_refuse_repeated_fields(client):
    token = csrf_token(client.get("/login").text)
    body = f"csrf_token={token}&phone=13800138000&phone=13900139000"
    response = client.post(
        "/login/sms-code", data=body, content_type="application/x-www-form-urlencoded"
    )
    assert 400 <= response.status_code < 500


@pytest.mark.parametrize("kind", sorted(BAD_VALUES))
def test_ukey_endpoints_refuse_malformed_values(client, kind):
    token = csrf_token(client.get("/login").text)
    bad = BAD_VALUES[kind]
    challenge = client.post(
        "/login/cert/challenge",
        data=f"csrf_token={token}&x={bad}",
        content_type="application/x-www-form-urlencoded",
    )
    assert challenge.status_code < 500
    answer = client.post(
        "/login/cert",
        data=f"csrf_token={token}&payload={bad}&signature={bad}&alg={bad}&certificate={bad}",
        content_type="application/x-www-form-urlencoded",
    )
    assert 400 <= answer.status_code < 500, answer.status_code


@pytest.mark.parametrize(
    "path", ["/authorize/resume", "/authorize/consent", "/authorize/choose", "/password/change"]
)
@pytest.mark.parametrize("kind", ["crlf", "nul", "invalid_utf8", "long"])
def test_interaction_pages_refuse_malformed_ids(client, path, kind):
    response = client.get(f"{path}?interaction={BAD_VALUES[kind]}")
    assert response.status_code < 500
    assert response.status_code in (302, 400, 403, 404)
