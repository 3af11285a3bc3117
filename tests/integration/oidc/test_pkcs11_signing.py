"""The provider with ``IDP_KEY_STORE=pkcs11``: ID tokens are signed inside a SoftHSM2 token,
an RP verifies them with the published JWKS, and ``idp keys`` run as a separate process
changes what the running provider signs with.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet

from idp.signing.pkcs11 import Pkcs11KeyStore, Token
from tests.conftest import register
from tests.flows import REDIRECT_URI, Pkce, authorize_params, follow_to_code, token_request
from tests.hsm import private_key_labels

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def settings_overrides(hsm_token: Any) -> dict[str, object]:
    """The token holds an active ES256 and RS256 key, as after ``idp keys generate``."""
    store = Pkcs11KeyStore(Token.open(hsm_token.address()))
    store.generate("ES256")
    store.generate("RS256")
    store.close()
    return hsm_token.settings()


def published(client: Any) -> KeySet:
    return KeySet.import_key_set(client.get("/.well-known/jwks.json").json)


def id_token_for(client: Any, rp: Any) -> str:
    pkce = Pkce.new()
    params = authorize_params(rp.client_id, pkce)
    code = follow_to_code(client, params)["code"]
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT_URI,
        "code_verifier": pkce.verifier,
    }
    response = token_request(client, data, auth=rp.auth)
    assert response.status_code == 200, response.text
    token: str = response.json["id_token"]
    return token


def idp_keys(hsm_token: Any, settings: Any, *args: str) -> subprocess.CompletedProcess[str]:
    """``idp keys ...`` as an operator runs it: another process, configured by environment."""
    environment = os.environ | hsm_token.environment()
    environment |= {
        "PYTHONPATH": str(ROOT),
        "IDP_INSTANCE_DIR": str(settings.instance_dir),
        "IDP_DATABASE_URL": settings.database_url,
    }
    return subprocess.run(
        [sys.executable, "-m", "idp.cli", "keys", *args],
        env=environment,
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.mark.parametrize("alg", ["ES256", "RS256"])
def test_id_token_is_signed_in_the_token_and_verifies_with_the_published_jwks(
    client: Any, app: Any, logged_in: Any, hsm_token: Any, alg: str
) -> None:
    rp = register(app, {"redirect_uris": [REDIRECT_URI], "id_token_signed_response_alg": alg})

    token = jwt.decode(id_token_for(client, rp), published(client), algorithms=[alg])

    assert token.claims["sub"]
    kids = {key["kid"]: key for key in client.get("/.well-known/jwks.json").json["keys"]}
    assert kids[token.header["kid"]]["alg"] == alg
    assert sorted(label.split()[1:3] for label in private_key_labels(hsm_token)) == [
        ["ES256", "active"],
        ["RS256", "active"],
    ]


def test_a_rotation_by_idp_keys_in_another_process_reaches_the_running_provider(
    client: Any, rp: Any, logged_in: Any, hsm_token: Any, settings: Any
) -> None:
    before = id_token_for(client, rp)
    old_kid = jwt.decode(before, published(client)).header["kid"]

    rotated = idp_keys(hsm_token, settings, "rotate", "--alg", "ES256", "--immediately")

    assert rotated.returncode == 0, rotated.stderr
    new_kid = rotated.stdout.split()[1]
    after = id_token_for(client, rp)
    keys = published(client)
    assert jwt.decode(after, keys).header["kid"] == new_kid != old_kid
    assert jwt.decode(before, keys).header["kid"] == old_kid  # issued tokens still verify


def test_idp_keys_list_and_a_wrong_pin(hsm_token: Any, settings: Any) -> None:
    listed = idp_keys(hsm_token, settings, "list", "--json")
    wrong = idp_keys(dataclasses.replace(hsm_token, pin="999999"), settings, "list")

    assert listed.returncode == 0, listed.stderr
    assert sorted(row["alg"] for row in json.loads(listed.stdout)) == ["ES256", "RS256"]
    assert wrong.returncode == 2
    assert "IDP_PKCS11_PIN: the token refused the PIN (CKR_PIN_INCORRECT)" in wrong.stderr
    assert "999999" not in wrong.stderr + wrong.stdout
    assert "Traceback" not in wrong.stderr


def test_ready_when_the_token_signs(client: Any) -> None:
    response = client.get("/readyz")

    assert response.status_code == 200, response.text
    assert response.json["checks"]["signing_keys"] == "ok"
