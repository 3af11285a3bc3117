"""/authorize: what redirects with an error, what never redirects (RFC 6749 §4.1.2.1)."""

from __future__ import annotations

import pytest

from idp import db
from idp.oidc.models import AuthorizationCode
from tests.flows import REDIRECT_URI, Pkce, authorize_params, query_of


def codes_stored() -> int:
    return db.session().query(AuthorizationCode).count()


@pytest.mark.parametrize(
    "change",
    [
        {"redirect_uri": "https://evil.example/callback"},
        {"redirect_uri": REDIRECT_URI + "/"},
        {"redirect_uri": REDIRECT_URI + "?x=1"},
        {"client_id": "no-such-client"},
        {"client_id": ""},
    ],
)
def test_unregistered_client_or_redirect_uri_shows_page_and_never_redirects(
    client, rp, logged_in, change
):
    params = {**authorize_params(rp.client_id, Pkce.new()), **change}
    response = client.get("/authorize", query_string=params)
    assert response.status_code == 400
    assert "Location" not in response.headers
    assert "无法完成登录请求" in response.text
    assert codes_stored() == 0


def test_missing_redirect_uri_never_redirects(client, rp, logged_in):
    params = authorize_params(rp.client_id, Pkce.new())
    del params["redirect_uri"]
    response = client.get("/authorize", query_string=params)
    assert response.status_code == 400
    assert "Location" not in response.headers


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"response_type": "token"}, "unsupported_response_type"),
        ({"response_type": "code id_token"}, "unsupported_response_type"),
        ({"scope": "openid admin"}, "invalid_scope"),
        ({"scope": "profile"}, "invalid_scope"),
        ({"code_challenge_method": "plain"}, "invalid_request"),
        ({"code_challenge": "too-short"}, "invalid_request"),
        ({"response_mode": "fragment"}, "invalid_request"),
        ({"prompt": "none login"}, "invalid_request"),
        ({"prompt": "sometimes"}, "invalid_request"),
        ({"max_age": "-1"}, "invalid_request"),
        ({"max_age": "１"}, "invalid_request"),
        ({"id_token_hint": "not-a-jwt"}, "invalid_request"),
    ],
)
def test_invalid_request_redirects_with_error_state_and_iss(client, rp, logged_in, change, error):
    params = {**authorize_params(rp.client_id, Pkce.new()), **change}
    response = client.get("/authorize", query_string=params)
    assert response.status_code == 302
    location = response.headers["Location"]
    assert location.startswith(REDIRECT_URI + "?")
    result = query_of(location)
    assert result["error"] == error
    assert result["state"] == params["state"]
    assert result["iss"] == "http://localhost"
    assert "code" not in result
    assert codes_stored() == 0


def test_pkce_required_for_public_client(client, public_rp, logged_in):
    params = authorize_params(public_rp.client_id)
    result = query_of(client.get("/authorize", query_string=params).headers["Location"])
    assert result["error"] == "invalid_request"
    assert "code_challenge" in result["error_description"]


def test_pkce_optional_for_confidential_client_unless_required(client, rp, logged_in):
    response = client.get("/authorize", query_string=authorize_params(rp.client_id))
    assert "code" in query_of(response.headers["Location"])


def test_prompt_none_without_session_is_login_required(client, rp):
    params = authorize_params(rp.client_id, Pkce.new(), prompt="none")
    result = query_of(client.get("/authorize", query_string=params).headers["Location"])
    assert result["error"] == "login_required"
    assert result["state"] == params["state"]


def test_prompt_none_with_session_issues_code_without_interaction(client, rp, logged_in):
    params = authorize_params(rp.client_id, Pkce.new(), prompt="none")
    result = query_of(client.get("/authorize", query_string=params).headers["Location"])
    assert "code" in result


def test_prompt_none_when_consent_needed_is_consent_required(client, app, logged_in):
    from tests.conftest import register

    rp = register(app, {"redirect_uris": [REDIRECT_URI], "require_consent": True})
    params = authorize_params(rp.client_id, Pkce.new(), prompt="none")
    result = query_of(client.get("/authorize", query_string=params).headers["Location"])
    assert result["error"] == "consent_required"


def test_unauthenticated_request_goes_to_login_with_login_hint(client, rp):
    params = authorize_params(rp.client_id, Pkce.new(), login_hint="13800138000")
    response = client.get("/authorize", query_string=params)
    assert response.status_code == 302
    target = query_of(response.headers["Location"])
    assert response.headers["Location"].startswith("/login?")
    assert target["phone"] == "13800138000"
    page = client.get(response.headers["Location"])
    assert 'value="13800138000"' in page.text


def test_login_hint_that_is_not_a_phone_is_ignored(client, rp):
    params = authorize_params(rp.client_id, Pkce.new(), login_hint="<script>")
    target = query_of(client.get("/authorize", query_string=params).headers["Location"])
    assert "phone" not in target


def test_prompt_login_forces_a_new_login(client, rp, logged_in):
    params = authorize_params(rp.client_id, Pkce.new(), prompt="login")
    response = client.get("/authorize", query_string=params)
    assert response.headers["Location"].startswith("/login?interaction=")


def test_max_age_zero_forces_a_new_login(client, rp, logged_in):
    params = authorize_params(rp.client_id, Pkce.new(), max_age="0")
    response = client.get("/authorize", query_string=params)
    assert response.headers["Location"].startswith("/login?interaction=")


def test_generous_max_age_keeps_the_session(client, rp, logged_in):
    params = authorize_params(rp.client_id, Pkce.new(), max_age="3600")
    assert "code" in query_of(client.get("/authorize", query_string=params).headers["Location"])


def test_form_post_response_mode_posts_code_and_iss(client, rp, logged_in):
    params = authorize_params(rp.client_id, Pkce.new(), response_mode="form_post")
    response = client.get("/authorize", query_string=params)
    assert response.status_code == 200
    assert f'action="{REDIRECT_URI}"' in response.text
    assert 'name="code"' in response.text
    assert f'name="state" value="{params["state"]}"' in response.text
    assert 'name="iss" value="http://localhost"' in response.text
    assert "form-action 'self' https://rp.example" in response.headers["Content-Security-Policy"]


def test_form_post_errors_are_posted_too(client, rp, logged_in):
    params = authorize_params(
        rp.client_id, Pkce.new(), response_mode="form_post", scope="openid admin"
    )
    response = client.get("/authorize", query_string=params)
    assert response.status_code == 200
    assert 'name="error" value="invalid_scope"' in response.text


def test_authorize_accepts_post(client, rp, logged_in):
    response = client.post("/authorize", data=authorize_params(rp.client_id, Pkce.new()))
    assert "code" in query_of(response.headers["Location"])


def test_oversized_parameters_are_refused(client, rp, logged_in):
    params = authorize_params(rp.client_id, Pkce.new(), state="x" * 100_000)
    response = client.post("/authorize", data=params)
    assert response.status_code == 413
    assert codes_stored() == 0


def test_id_token_hint_for_another_user_requires_login(client, rp, issue_tokens, app, outbox):
    body = issue_tokens()
    from tests.conftest import DEMO_USCC  # noqa: F401  (same org)

    params = authorize_params(
        rp.client_id, Pkce.new(), id_token_hint=body["id_token"], prompt="none"
    )
    assert "code" in query_of(client.get("/authorize", query_string=params).headers["Location"])
    from idp.identity.models import Account

    db.session().get(Account, 1).subject = "someone-else"
    db.session().commit()
    result = query_of(client.get("/authorize", query_string=params).headers["Location"])
    assert result["error"] == "login_required"
