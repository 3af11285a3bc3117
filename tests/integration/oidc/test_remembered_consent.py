"""Consent remembered per person and relying party (docs/protocol.md, "Consent"): asked once,
remembered across logins, asked again for more scopes, forced by ``prompt=consent``, answered
``consent_required`` under ``prompt=none``, always asked for ``offline_access``; revoking it
(/account, 撤销授权) asks again and ends what the relying party holds."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest
from sqlalchemy import select

from idp import db
from idp.oidc.models import ConsentGrant
from tests.conftest import both_databases, drain_sms_queue, register
from tests.flows import (
    PASSWORD,
    REDIRECT_URI,
    Pkce,
    authorize_params,
    csrf_token,
    login,
    query_of,
)
from tests.integration.auth.helpers import allow_resend
from tests.integration.oidc.helpers import audit_count, redeem, refresh, userinfo_status

SCOPES = "openid profile phone"


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    return {"backchannel_logout_retries": 0, "backchannel_logout_retry_delay": 0}


@pytest.fixture
def consent_rp(app, receiver):
    """A relying party that is not the platform's own: it asks for the person's consent."""
    return register(
        app,
        {
            "client_name": "第三方评估系统",
            "redirect_uris": [REDIRECT_URI],
            "grant_types": ["authorization_code", "refresh_token"],
            "scope": "openid profile phone offline_access",
            "require_consent": True,
            "backchannel_logout_uri": receiver.url,
        },
    )


def start(client, rp, **extra: str) -> tuple[dict[str, str], str]:
    """Begin a request; returns its parameters and where the provider sends the browser."""
    params = authorize_params(rp.client_id, Pkce.new(), **extra)
    response = client.get("/authorize?" + urlencode(params))
    assert response.status_code == 302, response.text
    return params, response.headers["Location"]


def answer_consent(client, location: str, *, approve: bool = True) -> dict[str, str]:
    """Answer the consent page at ``location``; returns the relying party's callback."""
    page = client.get(location)
    assert page.status_code == 200
    answer = {"approve": "1"} if approve else {"deny": "1"}
    response = client.post(location, data={**answer, "csrf_token": csrf_token(page.text)})
    while not response.headers["Location"].startswith(REDIRECT_URI):
        response = client.get(response.headers["Location"])
    return query_of(response.headers["Location"])


def consent_page(client, location: str) -> str:
    assert location.startswith("/authorize/consent"), location
    return client.get(location).text


def grants(operator) -> list[tuple[str, str]]:
    db.session().expire_all()
    rows = db.session().scalars(select(ConsentGrant).where(ConsentGrant.account_id == operator.id))
    return [(row.client_id, row.scope) for row in rows]


def log_in_again(client, outbox, operator) -> None:
    """A new login of the same person (a new login session: nothing of the old one is kept)."""
    page = client.get("/logout")
    client.post("/logout", data={"csrf_token": csrf_token(page.text)})
    allow_resend(operator.phone)
    assert login(client, outbox, phone=operator.phone, password=PASSWORD).status_code == 302


def test_first_request_asks_and_the_consent_is_remembered_across_logins(
    client, outbox, consent_rp, logged_in
):
    _params, location = start(client, consent_rp, scope="openid profile")
    page = consent_page(client, location)
    assert "第三方评估系统" in page and "姓名" in page
    result = answer_consent(client, location)
    assert "code" in result
    assert grants(logged_in) == [(consent_rp.client_id, "openid profile")]

    log_in_again(client, outbox, logged_in)

    params, location = start(client, consent_rp, scope="openid profile")
    assert location.startswith(REDIRECT_URI), location
    assert query_of(location)["state"] == params["state"] and "code" in query_of(location)
    # Fewer scopes than consented to are covered too.
    _params, location = start(client, consent_rp, scope="openid")
    assert "code" in query_of(location)


@both_databases
def test_more_scopes_ask_again_for_the_whole_set(client, consent_rp, logged_in):
    _params, location = start(client, consent_rp, scope="openid profile")
    answer_consent(client, location)

    _params, location = start(client, consent_rp, scope=SCOPES)

    page = consent_page(client, location)
    for words in ("您的账户标识和所属机构、角色", "姓名", "手机号"):
        assert words in page
    answer_consent(client, location)
    assert grants(logged_in) == [(consent_rp.client_id, "openid phone profile")]
    _params, location = start(client, consent_rp, scope=SCOPES)
    assert "code" in query_of(location)


def test_refused_consent_is_not_remembered(client, consent_rp, logged_in):
    _params, location = start(client, consent_rp, scope=SCOPES)

    result = answer_consent(client, location, approve=False)

    assert result["error"] == "access_denied"
    assert grants(logged_in) == []
    assert audit_count("oidc.consent") == 1
    _params, location = start(client, consent_rp, scope=SCOPES)
    assert location.startswith("/authorize/consent")


def test_prompt_consent_shows_the_page_although_remembered(client, consent_rp, logged_in):
    _params, location = start(client, consent_rp, scope=SCOPES)
    answer_consent(client, location)

    _params, location = start(client, consent_rp, scope=SCOPES, prompt="consent")

    assert location.startswith("/authorize/consent")
    assert "code" in answer_consent(client, location)


def test_prompt_none_needing_consent_is_consent_required_at_the_redirect_uri(
    client, consent_rp, logged_in
):
    params, location = start(client, consent_rp, scope=SCOPES, prompt="none")

    assert location.startswith(REDIRECT_URI + "?")
    result = query_of(location)
    assert result["error"] == "consent_required"
    assert result["state"] == params["state"]
    assert "code" not in result
    assert grants(logged_in) == []


def test_prompt_none_with_remembered_consent_issues_a_code(client, consent_rp, logged_in):
    _params, location = start(client, consent_rp, scope=SCOPES)
    answer_consent(client, location)

    _params, location = start(client, consent_rp, scope=SCOPES, prompt="none")
    assert "code" in query_of(location)
    # Asking for a scope not consented to is consent_required again.
    _params, location = start(client, consent_rp, scope=SCOPES + " offline_access", prompt="none")
    assert query_of(location)["error"] == "consent_required"


def test_offline_access_is_asked_every_time(client, consent_rp, logged_in):
    scope = "openid offline_access"
    _params, location = start(client, consent_rp, scope=scope)
    answer_consent(client, location)
    assert grants(logged_in) == [(consent_rp.client_id, "offline_access openid")]

    _params, location = start(client, consent_rp, scope=scope)

    page = consent_page(client, location)
    assert "在您退出登录后继续访问以上信息" in page


def test_a_client_that_needs_no_consent_remembers_nothing(client, rp, logged_in):
    _params, location = start(client, rp)

    assert "code" in query_of(location)
    assert grants(logged_in) == []


def revoke_on_account_page(client, client_id: str):
    page = client.get("/account")
    assert page.status_code == 200
    return client.post(
        "/account/consents/revoke",
        data={"client_id": client_id, "csrf_token": csrf_token(page.text)},
    )


@both_databases
def test_revoked_consent_asks_again_and_ends_the_refresh_token(
    app, client, consent_rp, logged_in, receiver
):
    pkce = Pkce.new()
    params = authorize_params(consent_rp.client_id, pkce, scope=SCOPES)
    location = client.get("/authorize?" + urlencode(params)).headers["Location"]
    code = answer_consent(client, location)["code"]
    tokens = redeem(client, consent_rp, code, pkce.verifier).json
    assert "refresh_token" in tokens

    revoked = revoke_on_account_page(client, consent_rp.client_id)

    assert revoked.status_code == 302
    assert grants(logged_in) == []
    answer = refresh(client, consent_rp, tokens["refresh_token"])
    assert answer.status_code == 400
    assert answer.json["error"] == "invalid_grant"
    assert userinfo_status(client, tokens["access_token"]) == 401
    assert audit_count("oidc.consent_revoked") == 1
    _params, location = start(client, consent_rp, scope=SCOPES)
    assert location.startswith("/authorize/consent")
    drain_sms_queue(app)
    assert len(receiver.tokens) == 1  # the relying party's session there was told


def test_revoking_ends_only_that_clients_tokens(app, client, consent_rp, rp, issue_tokens):
    mine = issue_tokens()  # the platform's own relying party
    _params, location = start(client, consent_rp, scope=SCOPES)
    answer_consent(client, location)

    revoke_on_account_page(client, consent_rp.client_id)

    assert refresh(client, rp, mine["refresh_token"]).status_code == 200


def test_revoking_a_consent_never_given_is_refused_and_changes_nothing(
    app, client, consent_rp, logged_in, other_consent
):
    _params, location = start(client, consent_rp, scope=SCOPES)
    answer_consent(client, location)

    refused = revoke_on_account_page(client, "no-such-client")
    assert refused.status_code == 404
    assert "没有找到对该应用的授权" in refused.text
    # Another person's consent to the same client is not this person's to revoke.
    assert grants(logged_in) == [(consent_rp.client_id, "openid phone profile")]
    assert other_consent() == [(consent_rp.client_id, "openid")]


@pytest.fixture
def other_consent(app, org, consent_rp):
    """Another operator who consented to ``consent_rp``; returns a reader of their grants."""
    from tests.conftest import make_operator

    other = make_operator(org, name="王五", phone="13700137000", first_login=False)
    db.session().add(
        ConsentGrant(account_id=other.id, client_id=consent_rp.client_id, scope="openid")
    )
    db.session().commit()
    return lambda: grants(other)


def test_revoking_needs_the_csrf_token(client, consent_rp, logged_in):
    _params, location = start(client, consent_rp, scope=SCOPES)
    answer_consent(client, location)

    refused = client.post("/account/consents/revoke", data={"client_id": consent_rp.client_id})

    assert refused.status_code == 400
    assert grants(logged_in) == [(consent_rp.client_id, "openid phone profile")]


def org_grants(org) -> list[tuple[str, str]]:
    db.session().expire_all()
    rows = db.session().scalars(select(ConsentGrant).where(ConsentGrant.org_id == org.id))
    return [(row.client_id, row.scope) for row in rows]


@both_databases
def test_an_org_admins_consent_is_the_organisations(app, client, org, consent_rp):
    from tests.conftest import DEMO_USCC, register_for
    from tests.integration.orgs.helpers import cert_login

    register_for(org, consent_rp.client_id)
    cert_login(client, uscc=DEMO_USCC, org_id=org.id)
    _params, location = start(client, consent_rp, scope=SCOPES)
    assert "code" in answer_consent(client, location)
    assert org_grants(org) == [(consent_rp.client_id, "openid phone profile")]

    # Another UKey login of the same organisation (another browser) needs no page.
    other = app.test_client()
    cert_login(other, uscc=DEMO_USCC, org_id=org.id)
    _params, location = start(other, consent_rp, scope=SCOPES)
    assert "code" in query_of(location)

    assert revoke_on_account_page(other, consent_rp.client_id).status_code == 302
    assert org_grants(org) == []
    _params, location = start(client, consent_rp, scope=SCOPES)
    assert location.startswith("/authorize/consent")
