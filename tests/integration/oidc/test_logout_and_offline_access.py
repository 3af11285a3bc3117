"""A logout ends the tokens its login session was issued, at every relying party; tokens
granted ``offline_access`` (OIDC Core §11, with the person's consent) outlive it."""

from __future__ import annotations

from urllib.parse import urlencode

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
from tests.integration.oidc.helpers import (
    audit_count,
    live_tokens,
    redeem,
    refresh,
    userinfo_status,
)

OFFLINE = {
    "client_name": "维修资金移动端",
    "redirect_uris": [REDIRECT_URI],
    "grant_types": ["authorization_code", "refresh_token"],
    "scope": "openid profile offline_access",
}


def log_out(client) -> None:
    page = client.get("/logout")
    response = client.post("/logout", data={"csrf_token": csrf_token(page.text)})
    assert response.status_code == 200


def redeemed(client, rp, pkce, result) -> dict:
    response = redeem(client, rp, result["code"], pkce.verifier)
    assert response.status_code == 200, response.text
    return response.json


def through_consent(client, params, *, approve: bool = True) -> dict[str, str]:
    """Run /authorize, answering the consent page; returns the RP's callback parameters."""
    response = client.get("/authorize?" + urlencode(params))
    location = response.headers["Location"]
    assert location.startswith("/authorize/consent"), location
    page = client.get(location)
    assert "在您退出登录后继续访问以上信息" in page.text
    answer = {"approve": "1"} if approve else {"deny": "1"}
    decided = client.post(location, data={**answer, "csrf_token": csrf_token(page.text)})
    response = client.get(decided.headers["Location"])
    while not response.headers["Location"].startswith(REDIRECT_URI):
        response = client.get(response.headers["Location"])
    return query_of(response.headers["Location"])


def test_logout_ends_the_sessions_tokens_at_every_relying_party(client, app, rp, issue_tokens):
    other = register(app, {**OFFLINE, "scope": "openid profile phone", "client_name": "另一系统"})
    mine = issue_tokens()
    pkce = Pkce.new()
    params = authorize_params(other.client_id, pkce)
    theirs = redeemed(client, other, pkce, follow_to_code(client, params))
    assert live_tokens() == 2

    log_out(client)

    assert live_tokens() == 0
    assert userinfo_status(client, mine["access_token"]) == 401
    assert refresh(client, rp, mine["refresh_token"]).json["error"] == "invalid_grant"
    assert refresh(client, other, theirs["refresh_token"]).json["error"] == "invalid_grant"
    assert audit_count("oidc.tokens_ended_at_logout") == 1


def test_a_code_issued_before_logout_redeems_to_nothing(client, rp, logged_in):
    pkce = Pkce.new()
    params = authorize_params(rp.client_id, pkce)
    result = follow_to_code(client, params)

    log_out(client)

    response = redeem(client, rp, result["code"], pkce.verifier)
    assert response.status_code == 400 and response.json["error"] == "invalid_grant"
    assert live_tokens() == 0


def test_logging_in_again_elsewhere_leaves_other_sessions_tokens_alone(
    client, app, rp, issue_tokens, outbox, operator
):
    mine = issue_tokens()
    other_browser = app.test_client()
    other_browser.environ_base["REMOTE_ADDR"] = "127.0.0.2"  # its own SMS resend interval
    assert login(other_browser, outbox, phone=operator.phone, password=PASSWORD).status_code == 302

    log_out(other_browser)

    assert userinfo_status(client, mine["access_token"]) == 200
    assert refresh(client, rp, mine["refresh_token"]).status_code == 200


def test_offline_access_asks_consent_and_outlives_the_logout(client, app, logged_in):
    rp = register(app, OFFLINE)
    pkce = Pkce.new()
    params = authorize_params(rp.client_id, pkce, scope="openid offline_access")

    tokens = redeemed(client, rp, pkce, through_consent(client, params))
    assert "offline_access" in tokens["scope"].split()

    log_out(client)

    refreshed = refresh(client, rp, tokens["refresh_token"])
    assert refreshed.status_code == 200, refreshed.text
    assert userinfo_status(client, refreshed.json["access_token"]) == 200


def test_offline_access_refused_at_consent_gives_nothing(client, app, logged_in):
    rp = register(app, OFFLINE)
    params = authorize_params(rp.client_id, Pkce.new(), scope="openid offline_access")

    result = through_consent(client, params, approve=False)

    assert result["error"] == "access_denied"
    assert live_tokens() == 0


def test_offline_access_with_prompt_none_and_no_consent_is_consent_required(client, app, logged_in):
    rp = register(app, OFFLINE)
    params = authorize_params(
        rp.client_id, Pkce.new(), scope="openid offline_access", prompt="none"
    )

    response = client.get("/authorize?" + urlencode(params))

    assert query_of(response.headers["Location"])["error"] == "consent_required"


def test_offline_access_needs_the_client_to_be_registered_for_it(client, rp, logged_in):
    params = authorize_params(rp.client_id, Pkce.new(), scope="openid offline_access")

    response = client.get("/authorize?" + urlencode(params))

    assert query_of(response.headers["Location"])["error"] == "invalid_scope"


def test_discovery_advertises_offline_access(client):
    scopes = client.get("/.well-known/openid-configuration").json["scopes_supported"]

    assert "offline_access" in scopes
