"""JWT client authentication (RFC 7523 §2.2, OIDC Core §9; docs/protocol.md P14):
``private_key_jwt`` and ``client_secret_jwt``.

A confidential client signs a short JWT assertion for each request: ``iss`` = ``sub`` = its
client id, ``aud`` this provider (the token endpoint URL or the issuer), ``exp`` within
``MAX_LIFETIME``, a unique ``jti``. With ``private_key_jwt`` the signature is checked against
the client's registered ``jwks`` or the set at its ``jwks_uri`` (fetched with a timeout, kept for
``JWKS_CACHE_SECONDS``), asymmetric algorithms only; with ``client_secret_jwt`` it is an HMAC
under the client's secret, kept sealed for that purpose only. Each method answers only for
clients registered with it, so no key of one kind is ever tried with the other's algorithms.
Each ``jti`` is taken atomically in the shared ephemeral store, so a replayed assertion fails
on every instance.
"""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from typing import Any

import requests
from authlib.oauth2.rfc6749 import InvalidClientError
from authlib.oauth2.rfc7523 import JWTBearerClientAssertion
from flask import url_for
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet, OctKey

from idp.config import settings
from idp.oidc.grants import SECRET_JWT
from idp.oidc.models import Client
from idp.sealing import unseal
from idp.store import store

METHOD = "private_key_jwt"
ALGORITHMS = ["ES256", "ES384", "RS256", "PS256", "EdDSA"]
HMAC_ALGORITHMS = ["HS256", "HS384", "HS512"]
MAX_LIFETIME = 300  # seconds an assertion may be valid for: bounds the jti memory too
JWKS_CACHE_SECONDS = 300
JWKS_TIMEOUT_SECONDS = 5

_jwks_cache: dict[str, tuple[float, dict[str, Any]]] = {}
_jwks_lock = threading.Lock()


class _OtherMethodError(Exception):
    """The client is registered with the other JWT method: this one does not answer for it."""


class _ClientAssertion(JWTBearerClientAssertion):
    """Authlib's assertion check under a standard name, with our audience and jti rules."""

    CLIENT_AUTH_METHOD: str
    ALGORITHMS: list[str]

    def __init__(self) -> None:
        super().__init__(validate_jti=True, leeway=30)

    def __call__(self, query_client: Any, request: Any) -> Client | None:
        try:
            client: Client | None = super().__call__(query_client, request)
        except _OtherMethodError:
            return None
        return client

    def get_audiences(self) -> list[str]:
        issuer = settings().issuer
        return [issuer, issuer + url_for("oidc.token")]

    def process_assertion_claims(self, assertion: str, resolve_key: Any) -> dict[str, Any]:
        try:
            token = jwt.decode(assertion, resolve_key, algorithms=self.ALGORITHMS)
        except (JoseError, ValueError) as error:
            raise InvalidClientError(description="client assertion signature is invalid") from error
        self.verify_claims(token.claims)
        lifetime = int(token.claims["exp"]) - int(time.time())
        if lifetime > MAX_LIFETIME:
            raise InvalidClientError(
                description=f"client assertion lives longer than {MAX_LIFETIME} s"
            )
        claims: dict[str, Any] = token.claims
        return claims

    def validate_jti(self, claims: dict[str, Any], jti: str) -> bool:
        """Taken once, atomically, for as long as the assertion could be presented."""
        ttl = max(int(claims["exp"]) - int(time.time()) + self.leeway, 1)
        key = f"client-assertion:{claims['sub']}:{jti}"
        return store().add(key, b"1", timedelta(seconds=ttl))

    def check_method(self, client: Client) -> None:
        """Answer only for clients registered with this method (see _OtherMethodError)."""
        if client.auth_method != self.CLIENT_AUTH_METHOD:
            raise _OtherMethodError


class PrivateKeyJwt(_ClientAssertion):
    CLIENT_AUTH_METHOD = METHOD
    ALGORITHMS = ALGORITHMS

    def resolve_client_public_key(self, client: Client) -> KeySet:
        self.check_method(client)
        metadata = client.client_metadata
        if "jwks" in metadata:
            return KeySet.import_key_set(metadata["jwks"])
        if "jwks_uri" in metadata:
            return KeySet.import_key_set(fetch_jwks(str(metadata["jwks_uri"])))  # type: ignore[arg-type]
        raise InvalidClientError(description="the client has no registered keys")


class ClientSecretJwt(_ClientAssertion):
    CLIENT_AUTH_METHOD = SECRET_JWT
    ALGORITHMS = HMAC_ALGORITHMS

    def resolve_client_public_key(self, client: Client) -> OctKey:
        self.check_method(client)
        if client.secret_sealed is None:
            raise InvalidClientError(description="the client has no secret for client_secret_jwt")
        return OctKey.import_key(unseal(client.secret_sealed))


def fetch_jwks(uri: str) -> dict[str, Any]:
    """The key set at ``uri``, kept for a few minutes so a burst of requests fetches it once."""
    now = time.monotonic()
    with _jwks_lock:
        cached = _jwks_cache.get(uri)
        if cached is not None and now - cached[0] < JWKS_CACHE_SECONDS:
            return cached[1]
    try:
        response = requests.get(uri, timeout=JWKS_TIMEOUT_SECONDS, allow_redirects=False)
        response.raise_for_status()
        keys: dict[str, Any] = response.json()
    except (requests.RequestException, ValueError) as error:
        raise InvalidClientError(description="the client's jwks_uri could not be read") from error
    with _jwks_lock:
        _jwks_cache[uri] = (now, keys)
    return keys
