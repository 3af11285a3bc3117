"""``encode_jwt`` (compact JWS over ``KeyStore.sign``) and ``hash_half`` (at_hash/c_hash)."""

from __future__ import annotations

import base64
import json
from typing import cast

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from joserfc import jwt
from joserfc.errors import BadSignatureError
from joserfc.jwk import ECKey, KeySet, KeySetSerialization

from idp.signing.files import FileKeyStore
from idp.signing.interface import KeyRef
from idp.signing.jws import b64url, encode_jwt, hash_half

CLAIMS = {
    "iss": "http://localhost",
    "sub": "u-1",
    "aud": ["rp"],
    "name": "张三",
    "exp": 1_900_000_000,
}


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> FileKeyStore:
    store = FileKeyStore(tmp_path_factory.mktemp("keys"))
    store.generate("ES256")
    store.generate("RS256")
    return store


def public_keys(store: FileKeyStore) -> KeySet:
    return KeySet.import_key_set(cast(KeySetSerialization, store.public_jwks()))


def unb64(segment: str) -> bytes:
    assert "=" not in segment
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


@pytest.mark.parametrize("alg", ["ES256", "RS256"])
def test_token_verifies_with_joserfc(store: FileKeyStore, alg: str) -> None:
    key = store.signing_key(alg)

    token = encode_jwt(store, key, CLAIMS)

    decoded = jwt.decode(token, public_keys(store), algorithms=[alg])
    assert decoded.header == {"alg": alg, "kid": key.kid, "typ": "JWT"}
    assert decoded.claims == CLAIMS


def test_segments_are_compact_json_in_unpadded_base64url(store: FileKeyStore) -> None:
    key = store.signing_key("ES256")

    header, payload, signature = encode_jwt(store, key, {"sub": "u-1", "name": "张三"}).split(".")

    assert unb64(header) == f'{{"alg":"ES256","kid":"{key.kid}","typ":"JWT"}}'.encode()
    assert unb64(payload) == '{"sub":"u-1","name":"张三"}'.encode()
    assert len(unb64(signature)) == 64


def test_es256_signature_is_raw_r_and_s_over_the_signing_input(store: FileKeyStore) -> None:
    """Re-encode r||s as DER and check it with the bare public key (RFC 7518 §3.4)."""
    key = store.signing_key("ES256")
    token = encode_jwt(store, key, CLAIMS)
    signing_input, _, signature = token.rpartition(".")
    raw = unb64(signature)
    jwk = next(k for k in store.public_jwks()["keys"] if k["kid"] == key.kid)
    public = ECKey.import_key(jwk).public_key
    assert isinstance(public, ec.EllipticCurvePublicKey)

    der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    public.verify(der, signing_input.encode(), ec.ECDSA(hashes.SHA256()))


def test_typ_is_configurable(store: FileKeyStore) -> None:
    token = encode_jwt(store, store.signing_key("RS256"), CLAIMS, typ="logout+jwt")

    assert json.loads(unb64(token.split(".")[0]))["typ"] == "logout+jwt"


def test_tampered_payload_fails_verification(store: FileKeyStore) -> None:
    header, _, signature = encode_jwt(store, store.signing_key("ES256"), CLAIMS).split(".")
    forged = b64url(json.dumps(CLAIMS | {"sub": "admin"}).encode())

    with pytest.raises(BadSignatureError):
        jwt.decode(f"{header}.{forged}.{signature}", public_keys(store))


def test_unknown_key_is_refused(store: FileKeyStore) -> None:
    known = store.signing_key("ES256")
    stranger = KeyRef(kid="not-a-key", alg="ES256", state="active", created_at=known.created_at)

    with pytest.raises(RuntimeError, match="not-a-key"):
        encode_jwt(store, stranger, CLAIMS)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        # OpenID Connect Core 1.0, Appendix A.3 (at_hash) and A.4 (c_hash)
        ("jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y", "77QmUPtjPfzWtF2AnpK9RQ"),
        ("Qcb0Orv1zh30vL1MPRsbm-diHiMwcLyZvn1arpZv-Jxf_11jnpEX3Tgfvk", "LDktKdoQak3Pk0cnXxCltA"),
    ],
)
@pytest.mark.parametrize("alg", ["ES256", "RS256"])
def test_hash_half_matches_the_spec_examples(value: str, expected: str, alg: str) -> None:
    assert hash_half(value, alg) == expected


def test_hash_half_refuses_an_unknown_alg() -> None:
    with pytest.raises(ValueError, match="HS512"):
        hash_half("code", "HS512")


def test_b64url_has_no_padding() -> None:
    assert b64url(b"\xff\xfe") == "__4"
