"""Back-Channel Logout 1.0: a relying party that registered a ``backchannel_logout_uri`` is
sent a signed logout token when a session it was used in ends: logout, password change,
operator deleted, the client disabled; delivered by the worker, retried until the receiver answers."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet

from idp import db
from idp.oidc.backchannel import EVENT
from tests.conftest import drain_sms_queue, register
from tests.flows import REDIRECT_URI, Pkce, authorize_params, csrf_token, follow_to_code
from tests.integration.oidc.helpers import audit_count, redeem


class Receiver:
    """A relying party's back-channel endpoint on loopback: answers ``failures`` times with
    503, then 200; keeps every logout token it was sent."""

    def __init__(self) -> None:
        self.tokens: list[str] = []
        self.failures = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if receiver.failures:
                    receiver.failures -= 1
                    self.send_response(503)
                else:
                    receiver.tokens.extend(parse_qs(body.decode())["logout_token"])
                    self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/backchannel-logout"

    def __enter__(self) -> Receiver:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    return {"backchannel_logout_retries": 3, "backchannel_logout_retry_delay": 0}


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as running:
        yield running


@pytest.fixture
def listening_rp(app, receiver):
    return register(
        app,
        {
            "client_name": "上海市房屋维修资金管理系统",
            "redirect_uris": [REDIRECT_URI],
            "grant_types": ["authorization_code", "refresh_token"],
            "backchannel_logout_uri": receiver.url,
            "backchannel_logout_session_required": True,
        },
    )


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
