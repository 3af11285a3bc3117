"""``private_key_jwt`` (RFC 7523 §2.2, OIDC Core §9): a client signs an assertion with its own
key instead of sending a secret; wrong audience, foreign key, expiry, long lifetime and a
replayed ``jti`` are refused with ``invalid_client``."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import ECKey

from idp import db
from idp.oidc.clients import InvalidClientMetadataError, register_client
from tests.conftest import ISSUER
from tests.flows import token_request
from tests.loopback import JsonServer

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
TOKEN_URL = ISSUER + "/oauth/token"


def new_key() -> ECKey:
    return ECKey.generate_key("P-256", parameters={"kid": secrets.token_hex(4), "alg": "ES256"})


def register_with(metadata: dict[str, Any]) -> str:
    client, secret = register_client(
        db.session(),
        {
            "client_name": "对账服务",
            "grant_types": ["client_credentials"],
            "scope": "org.operators",
            "token_endpoint_auth_method": "private_key_jwt",
            **metadata,
        },
    )
    db.session().commit()
    assert secret is None  # nothing shared to show
    return client.client_id


@pytest.fixture
def key() -> ECKey:
    return new_key()


@pytest.fixture
def client_id(app, key) -> str:
    return register_with({"jwks": {"keys": [key.as_dict(private=False)]}})


def assertion(client_id: str, key: ECKey, **overrides: Any) -> str:
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
    return jwt.encode({"alg": "ES256", "kid": key.kid}, claims, key)


def grant(client, token: str) -> Any:
    return token_request(
        client,
        {
            "grant_type": "client_credentials",
            "scope": "org.operators",
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": token,
        },
    )


def test_a_signed_assertion_authenticates_the_client(client, client_id, key):
    response = grant(client, assertion(client_id, key))

    assert response.status_code == 200, response.text
    assert response.json["scope"] == "org.operators"


def test_the_issuer_is_an_accepted_audience_too(client, client_id, key):
    assert grant(client, assertion(client_id, key, aud=ISSUER)).status_code == 200


@pytest.mark.parametrize(
    "overrides",
    [
        {"aud": "https://other-provider.example/token"},
        {"exp": int(time.time()) - 120},
        {"exp": int(time.time()) + 3600},
        {"iss": "someone-else"},
        {"jti": None},
    ],
    ids=["wrong-audience", "expired", "too-long-lived", "iss-not-sub", "no-jti"],
)
def test_bad_assertions_are_invalid_client(client, client_id, key, overrides):
    claims = {k: v for k, v in overrides.items() if v is not None}
    token = assertion(client_id, key, **claims)
    if overrides.get("jti", "") is None:
        token = jwt.encode(
            {"alg": "ES256", "kid": key.kid},
            {"iss": client_id, "sub": client_id, "aud": TOKEN_URL, "exp": int(time.time()) + 60},
            key,
        )

    response = grant(client, token)

    # 400, not 401: no Authorization header was used (RFC 6749 §5.2)
    assert response.status_code == 400
    assert response.json["error"] == "invalid_client"
    assert "access_token" not in response.json


def test_an_assertion_signed_by_another_key_is_refused(client, client_id):
    response = grant(client, assertion(client_id, new_key()))

    assert response.status_code == 400 and response.json["error"] == "invalid_client"


def test_a_replayed_assertion_is_refused(client, client_id, key):
    token = assertion(client_id, key)

    assert grant(client, token).status_code == 200
    replay = grant(client, token)

    assert replay.status_code == 400 and replay.json["error"] == "invalid_client"


def test_a_secret_is_no_way_in_for_a_key_client(client, client_id):
    response = token_request(
        client,
        {"grant_type": "client_credentials", "scope": "org.operators"},
        auth=(client_id, "guessed-secret"),
    )

    assert response.status_code == 401 and response.json["error"] == "invalid_client"


@pytest.fixture
def jwks_server(key) -> Iterator[JsonServer]:
    with JsonServer({"keys": [key.as_dict(private=False)]}) as server:
        yield server


def test_keys_can_come_from_the_clients_jwks_uri(client, app, key, jwks_server):
    client_id = register_with({"jwks_uri": jwks_server.url})

    assert grant(client, assertion(client_id, key)).status_code == 200


def test_registration_needs_keys_and_gives_no_secret(app):
    with pytest.raises(InvalidClientMetadataError, match="private_key_jwt needs"):
        register_with({})


def test_discovery_advertises_private_key_jwt(client):
    metadata = client.get("/.well-known/openid-configuration").json

    assert "private_key_jwt" in metadata["token_endpoint_auth_methods_supported"]
    assert "ES256" in metadata["token_endpoint_auth_signing_alg_values_supported"]
    assert "none" not in metadata["token_endpoint_auth_signing_alg_values_supported"]
