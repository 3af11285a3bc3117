"""Back-Channel Logout 1.0: a relying party that registered a ``backchannel_logout_uri`` is
sent a signed logout token when a session it was used in ends: logout, password change,
operator deleted, the client disabled; delivered by the worker, retried until the receiver answers."""

from __future__ import annotations

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet

from idp import db
from idp.oidc.backchannel import EVENT
from tests.conftest import drain_sms_queue
from tests.flows import Pkce, authorize_params, csrf_token, follow_to_code
from tests.integration.oidc.helpers import audit_count, redeem


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    return {"backchannel_logout_retries": 3, "backchannel_logout_retry_delay": 0}


@pytest.fixture
def signed_in(client, listening_rp, logged_in):
    """The operator used the relying party; returns the ID token's claims."""
    pkce = Pkce.new()
    params = authorize_params(listening_rp.client_id, pkce)
    body = redeem(client, listening_rp, follow_to_code(client, params)["code"], pkce.verifier).json
    return decode(client, body["id_token"])


def decode(client, token: str) -> jwt.Token:
    return jwt.decode(token, KeySet.import_key_set(client.get("/.well-known/jwks.json").json))


def log_out(client) -> None:
    page = client.get("/logout")
    assert client.post("/logout", data={"csrf_token": csrf_token(page.text)}).status_code == 200


def test_logout_sends_a_logout_token_for_the_session(app, client, receiver, signed_in, rp):
    log_out(client)
    drain_sms_queue(app)

    assert len(receiver.tokens) == 1
    token = decode(client, receiver.tokens[0])
    claims = token.claims
    assert token.header["typ"] == "logout+jwt"
    assert claims["iss"] == signed_in.claims["iss"]
    assert claims["aud"] == signed_in.claims["aud"]
    assert claims["sub"] == signed_in.claims["sub"]
    assert claims["sid"] == signed_in.claims["sid"]
    assert claims["events"] == {EVENT: {}}
    assert "nonce" not in claims
    assert claims["jti"] and claims["exp"] - claims["iat"] <= 120
    assert audit_count("oidc.backchannel_logout_delivered") == 1


def test_a_receiver_that_is_down_at_first_gets_the_notice_on_a_retry(
    app, client, receiver, signed_in
):
    receiver.failures = 2

    log_out(client)
    drain_sms_queue(app)

    assert len(receiver.tokens) == 1
    assert audit_count("oidc.backchannel_logout_retrying") == 2
    assert audit_count("oidc.backchannel_logout_delivered") == 1


def test_a_receiver_that_never_answers_is_given_up_after_the_retries(
    app, client, receiver, signed_in
):
    receiver.failures = 100

    log_out(client)
    drain_sms_queue(app)

    assert receiver.tokens == []
    assert audit_count("oidc.backchannel_logout_retrying") == 3
    assert audit_count("oidc.backchannel_logout_failed") == 1


def test_a_password_change_tells_the_relying_party(app, client, receiver, signed_in):
    from tests.flows import PASSWORD, change_password

    response = change_password(client, current=PASSWORD, new="An0ther-Passw0rd!")
    assert response.status_code in (200, 302), response.text
    drain_sms_queue(app)

    assert [decode(client, t).claims["sid"] for t in receiver.tokens] == [signed_in.claims["sid"]]


def test_deleting_the_operator_tells_the_relying_party(app, client, receiver, signed_in, org):
    from idp.identity.models import Membership
    from idp.orgs.operators import delete_operator

    membership = db.session().query(Membership).filter_by(org_id=org.id).one()
    delete_operator(db.session(), org, membership.id, actor="test")
    db.session().commit()
    drain_sms_queue(app)

    assert [decode(client, t).claims["sub"] for t in receiver.tokens] == [signed_in.claims["sub"]]


def test_disabling_the_client_tells_it_its_sessions_ended(
    app, client, receiver, signed_in, listening_rp
):
    from idp.oidc.clients import set_client_disabled

    set_client_disabled(db.session(), listening_rp.client_id, True, actor="test")
    db.session().commit()
    drain_sms_queue(app)

    assert [decode(client, t).claims["sid"] for t in receiver.tokens] == [signed_in.claims["sid"]]


def test_enabling_a_client_again_sends_nothing(app, client, receiver, signed_in, listening_rp):
    from idp.oidc.clients import set_client_disabled

    set_client_disabled(db.session(), listening_rp.client_id, False, actor="test")
    db.session().commit()
    drain_sms_queue(app)

    assert receiver.tokens == []


def test_nothing_is_sent_when_the_change_is_rolled_back(app, client, receiver, signed_in, org):
    from idp.identity.models import Membership
    from idp.orgs.operators import delete_operator

    membership = db.session().query(Membership).filter_by(org_id=org.id).one()
    delete_operator(db.session(), org, membership.id, actor="test")
    db.session().rollback()
    drain_sms_queue(app)

    assert receiver.tokens == []


def test_relying_parties_without_a_backchannel_uri_are_not_called(
    app, client, receiver, rp, logged_in
):
    pkce = Pkce.new()
    redeem(
        client,
        rp,
        follow_to_code(client, authorize_params(rp.client_id, pkce))["code"],
        pkce.verifier,
    )

    log_out(client)
    drain_sms_queue(app)

    assert receiver.tokens == []
    assert audit_count("oidc.backchannel_logout_failed") == 0


def test_discovery_advertises_backchannel_logout(client):
    metadata = client.get("/.well-known/openid-configuration").json

    assert metadata["backchannel_logout_supported"] is True
    assert metadata["backchannel_logout_session_supported"] is True
