"""``client_secret_jwt`` (RFC 7523 §2.2 with an HMAC, OIDC Core §9): a client registered with
it signs an assertion with its secret; the provider keeps that secret sealed for this client
only. Wrong audience, another secret, an asymmetric or ``none`` algorithm, a replayed ``jti``
and the secret sent in the clear are refused with ``invalid_client``; the two JWT methods never
answer for each other's clients."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, OctKey
from sqlalchemy import select

from idp import db
from idp.oidc.clients import (
    InvalidClientMetadataError,
    register_client,
    rotate_secret,
    update_client,
)
from idp.oidc.models import Client, digest
from tests.conftest import ISSUER
from tests.flows import token_request
from tests.integration.oidc.test_private_key_jwt import TOKEN_URL, grant

METADATA = {
    "client_name": "对账服务",
    "grant_types": ["client_credentials"],
    "scope": "org.operators",
    "token_endpoint_auth_method": "client_secret_jwt",
}


@pytest.fixture
def registered(app) -> tuple[str, str]:
    client, secret = register_client(db.session(), METADATA)
    db.session().commit()
    assert secret is not None
    return client.client_id, secret


def stored(client_id: str) -> Client:
    row = db.session().scalar(select(Client).where(Client.client_id == client_id))
    assert row is not None
    return row


def assertion(client_id: str, secret: str, *, alg: str = "HS256", **overrides: Any) -> str:
    now = int(time.time())
    claims = {
        "iss": client_id,
        "sub": client_id,
        "aud": TOKEN_URL,
        "iat": now,
        "exp": now + 60,
        "jti": secrets.token_urlsafe(12),
        **overrides,
    }
    return jwt.encode({"alg": alg}, claims, OctKey.import_key(secret), algorithms=[alg])


def test_an_assertion_under_the_secret_authenticates_the_client(client, registered):
    client_id, secret = registered
    for alg in ("HS256", "HS512"):
        response = grant(client, assertion(client_id, secret, alg=alg))

        assert response.status_code == 200, response.text
        assert response.json["scope"] == "org.operators"


def test_the_secret_is_kept_sealed_not_in_the_clear(registered):
    client_id, secret = registered
    row = stored(client_id)

    assert row.secret_hash == digest(secret)
    assert row.secret_sealed and secret not in row.secret_sealed


@pytest.mark.parametrize(
    "overrides",
    [{"aud": "https://other-provider.example/token"}, {"exp": int(time.time()) + 3600}],
    ids=["wrong-audience", "too-long-lived"],
)
def test_bad_assertions_are_invalid_client(client, registered, overrides):
    client_id, secret = registered
    response = grant(client, assertion(client_id, secret, **overrides))

    assert response.status_code == 400 and response.json["error"] == "invalid_client"
    assert "access_token" not in response.json


def test_another_secret_is_refused(client, registered):
    client_id, _secret = registered

    response = grant(client, assertion(client_id, secrets.token_urlsafe(32)))

    assert response.status_code == 400 and response.json["error"] == "invalid_client"


def test_a_replayed_assertion_is_refused(client, registered):
    token = assertion(*registered, aud=ISSUER)

    assert grant(client, token).status_code == 200
    replay = grant(client, token)
    assert replay.status_code == 400 and replay.json["error"] == "invalid_client"


def test_an_asymmetric_signature_does_not_authenticate_a_secret_client(client, registered):
    client_id, _secret = registered
    key = ECKey.generate_key("P-256")
    now = int(time.time())
    claims = {"iss": client_id, "sub": client_id, "aud": TOKEN_URL, "exp": now + 60, "jti": "x1"}

    response = grant(client, jwt.encode({"alg": "ES256"}, claims, key))

    assert response.status_code == 400 and response.json["error"] == "invalid_client"


def test_the_secret_in_the_clear_is_no_way_in(client, registered):
    response = token_request(
        client,
        {"grant_type": "client_credentials", "scope": "org.operators"},
        auth=registered,
    )

    assert response.status_code == 401 and response.json["error"] == "invalid_client"


def test_a_key_client_cannot_be_reached_with_an_hmac_of_its_public_key(client, app):
    """Algorithm confusion: an HMAC keyed with a private_key_jwt client's public key fails."""
    key = ECKey.generate_key("P-256", parameters={"kid": "k1"})
    client_row, _ = register_client(
        db.session(),
        {
            **METADATA,
            "token_endpoint_auth_method": "private_key_jwt",
            "jwks": {"keys": [key.as_dict(private=False)]},
        },
    )
    db.session().commit()
    client_id, now = client_row.client_id, int(time.time())
    claims = {"iss": client_id, "sub": client_id, "aud": TOKEN_URL, "exp": now + 60, "jti": "c1"}
    header = b64(json.dumps({"alg": "HS256"}).encode())
    signing_input = f"{header}.{b64(json.dumps(claims).encode())}"
    mac = hmac.new(key.as_pem(private=False), signing_input.encode(), hashlib.sha256).digest()

    response = grant(client, f"{signing_input}.{b64(mac)}")

    assert response.status_code == 400 and response.json["error"] == "invalid_client"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def test_a_rotated_secret_replaces_the_key(client, registered):
    client_id, old = registered
    _client, new = rotate_secret(db.session(), client_id)
    db.session().commit()

    assert grant(client, assertion(client_id, old)).status_code == 400
    assert grant(client, assertion(client_id, new)).status_code == 200


def test_switching_an_existing_client_to_it_is_refused_and_changes_nothing(app):
    client_row, _secret = register_client(
        db.session(), {**METADATA, "token_endpoint_auth_method": "client_secret_basic"}
    )
    db.session().commit()
    before = dict(client_row.client_metadata)

    with pytest.raises(InvalidClientMetadataError, match="chosen when a client is registered"):
        update_client(
            db.session(), client_row.client_id, {"token_endpoint_auth_method": "client_secret_jwt"}
        )
    db.session().rollback()
    assert stored(client_row.client_id).client_metadata == before


def test_leaving_it_drops_the_sealed_secret(registered):
    client_id, _secret = registered
    update_client(db.session(), client_id, {"token_endpoint_auth_method": "client_secret_post"})
    db.session().commit()

    assert stored(client_id).secret_sealed is None


def test_discovery_advertises_client_secret_jwt(client):
    metadata = client.get("/.well-known/openid-configuration").json

    assert "client_secret_jwt" in metadata["token_endpoint_auth_methods_supported"]
    assert "HS256" in metadata["token_endpoint_auth_signing_alg_values_supported"]
    assert "none" not in metadata["token_endpoint_auth_signing_alg_values_supported"]
