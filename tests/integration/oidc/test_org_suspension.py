"""暂停使用 of an organisation, seen from the protocol: the suspension ends at once every login
session, unredeemed code, access and refresh token of the organisation's admin and operators,
tells the relying parties (back-channel logout), and refuses their logins until the
organisation is reactivated; what it ended stays ended."""

from __future__ import annotations

import pytest
from flask import current_app
from sqlalchemy import select, update

from idp import db
from idp.audit.models import AuditEvent
from idp.identity.models import Organisation
from idp.orgs.suspension import reactivate_org, suspend_org
from idp.store import store
from tests.conftest import (
    DEMO_USCC,
    OTHER_USCC,
    add_other_org,
    both_databases,
    drain_sms_queue,
    enrol,
    make_operator,
)
from tests.flows import PASSWORD, Pkce, authorize_params, follow_to_code, login
from tests.integration.auth.helpers import allow_resend
from tests.integration.oidc.helpers import live_tokens, redeem, refresh, userinfo_status
from tests.integration.oidc.test_backchannel_logout import decode
from tests.integration.orgs.helpers import cert_login

SUSPENDED_MESSAGE = "本机构已被平台暂停使用，请联系平台管理员"


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    return {"backchannel_logout_retries": 0, "backchannel_logout_retry_delay": 0}


def sign_in(client, rp) -> dict:
    """A code flow at ``rp`` in the browser's session; the token response."""
    pkce = Pkce.new()
    code = follow_to_code(client, authorize_params(rp.client_id, pkce))["code"]
    response = redeem(client, rp, code, pkce.verifier)
    assert response.status_code == 200, response.text
    return dict(response.json)


def unredeemed_code(client, rp) -> tuple[str, str]:
    pkce = Pkce.new()
    return follow_to_code(client, authorize_params(rp.client_id, pkce))["code"], pkce.verifier


def suspend(uscc: str = DEMO_USCC) -> None:
    suspend_org(db.session(), uscc, reason="违反平台使用规定", actor="test")
    db.session().commit()


def session_key(client) -> str:
    return f"session:{client.get_cookie('idp_session').value}"


def audit_results(action: str) -> list[str]:
    with current_app.extensions["idp.db"]() as session:
        rows = session.scalars(select(AuditEvent.result).where(AuditEvent.action == action))
        return list(rows)


@both_databases
def test_suspension_ends_the_operators_session_codes_and_tokens_and_tells_the_rp(
    app, client, outbox, operator, listening_rp, receiver
):
    assert login(client, outbox, phone=operator.phone, password=PASSWORD).status_code == 302
    tokens = sign_in(client, listening_rp)
    code, verifier = unredeemed_code(client, listening_rp)
    sid = decode(client, tokens["id_token"]).claims["sid"]
    key = session_key(client)
    assert live_tokens() == 1

    suspend()
    drain_sms_queue(app)

    assert [decode(client, t).claims["sid"] for t in receiver.tokens] == [sid]
    assert live_tokens() == 0
    assert userinfo_status(client, tokens["access_token"]) == 401
    assert refresh(client, listening_rp, tokens["refresh_token"]).json["error"] == "invalid_grant"
    assert redeem(client, listening_rp, code, verifier).json["error"] == "invalid_grant"
    assert client.get("/portal").headers["Location"] == "/login"
    assert store().get(key) is None


def test_suspension_ends_the_org_admins_session_and_tokens(
    app, client, org, listening_rp, receiver
):
    from tests.conftest import register_for

    register_for(org, listening_rp.client_id)
    cert_login(client, uscc=DEMO_USCC, org_id=org.id)
    tokens = sign_in(client, listening_rp)
    claims = decode(client, tokens["id_token"]).claims
    assert claims["org"]["uscc"] == DEMO_USCC

    suspend()
    drain_sms_queue(app)

    notice = decode(client, receiver.tokens[0]).claims
    assert (len(receiver.tokens), notice["sub"], notice["sid"]) == (1, claims["sub"], claims["sid"])
    assert refresh(client, listening_rp, tokens["refresh_token"]).json["error"] == "invalid_grant"
    assert client.get("/org/").headers["Location"] == "/login?method=cert"
    assert client.get("/portal").headers["Location"] == "/login"


def test_a_suspended_orgs_operator_cannot_log_in_until_it_is_reactivated(client, outbox, operator):
    suspend()

    refused = login(client, outbox, phone=operator.phone, password=PASSWORD)

    assert refused.status_code == 403 and SUSPENDED_MESSAGE in refused.text
    assert client.get_cookie("idp_session") is None
    assert audit_results("auth.login_failed") == ["org_suspended"]

    reactivate_org(db.session(), DEMO_USCC, actor="test")
    db.session().commit()
    allow_resend(operator.phone)
    assert login(client, outbox, phone=operator.phone, password=PASSWORD).status_code == 302
    assert client.get("/portal").status_code == 200


@both_databases
def test_a_session_ended_by_a_suspension_stays_ended_after_the_reactivation(
    client, outbox, operator
):
    assert login(client, outbox, phone=operator.phone, password=PASSWORD).status_code == 302
    key = session_key(client)

    suspend()
    reactivate_org(db.session(), DEMO_USCC, reason="整改完成", actor="test")
    db.session().commit()

    assert client.get("/portal").headers["Location"] == "/login"
    assert store().get(key) is None


def test_an_operator_of_another_org_logs_in_again_and_acts_only_for_that_one(
    client, outbox, operator, listening_rp
):
    other = add_other_org(listening_rp.client_id)
    enrol(db.session(), other, name=operator.name, phone=operator.phone)
    db.session().commit()
    assert login(client, outbox, phone=operator.phone, password=PASSWORD).status_code == 302

    suspend()

    assert client.get("/portal").headers["Location"] == "/login"  # the old session ended
    allow_resend(operator.phone)
    assert login(client, outbox, phone=operator.phone, password=PASSWORD).status_code == 302
    tokens = sign_in(client, listening_rp)  # one identity left: no role choice
    assert decode(client, tokens["id_token"]).claims["org"]["uscc"] == OTHER_USCC


def test_eligibility_refuses_the_tokens_of_a_suspended_org_by_itself(
    client, outbox, operator, listening_rp
):
    """Even a token the revocation did not reach (written concurrently) acts no more."""
    assert login(client, outbox, phone=operator.phone, password=PASSWORD).status_code == 302
    tokens = sign_in(client, listening_rp)
    assert userinfo_status(client, tokens["access_token"]) == 200

    db.session().execute(
        update(Organisation).where(Organisation.uscc == DEMO_USCC).values(suspended_at=db.utcnow())
    )
    db.session().commit()

    assert live_tokens() == 1  # not revoked: eligibility alone refuses it
    assert userinfo_status(client, tokens["access_token"]) == 401
    assert refresh(client, listening_rp, tokens["refresh_token"]).json["error"] == "invalid_grant"
    introspected = client.post(
        "/oauth/introspect",
        data={"token": tokens["access_token"]},
        auth=listening_rp.auth,
    )
    assert introspected.json == {"active": False}


def test_the_suspension_is_audited_with_its_reason_and_what_it_ended(
    client, outbox, operator, listening_rp
):
    assert login(client, outbox, phone=operator.phone, password=PASSWORD).status_code == 302
    sign_in(client, listening_rp)

    suspend()

    with current_app.extensions["idp.db"]() as session:
        event = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "orgs.org_suspended")
        ).one()
    assert event.details == {
        "reason": "违反平台使用规定",
        "tokens_revoked": "1",
        "logout_notices": "1",
    }
    assert event.target.endswith(DEMO_USCC) and event.actor == "test"


@both_databases
def test_another_organisations_operator_keeps_their_tokens(app, outbox, operator, listening_rp):
    """The suspension narrows its search to the org's members and admin logins: a person of
    another organisation, signed in at the same relying party, is not touched."""
    other = add_other_org(listening_rp.client_id)
    make_operator(other, name="赵六", phone="13600136000", first_login=False)
    browser = app.test_client()
    assert login(browser, outbox, phone="13600136000", password=PASSWORD).status_code == 302
    tokens = sign_in(browser, listening_rp)

    suspend()

    assert live_tokens() == 1
    assert userinfo_status(browser, tokens["access_token"]) == 200
    assert browser.get("/portal").status_code == 200
