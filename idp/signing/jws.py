"""Compact JWS assembly over ``KeyStore.sign``.

The token is built here and only the signature comes from the store, so file keys and PKCS#11
keys share one code path and no private key is needed outside the store. We do not register
anything in Authlib's process-global algorithm registry (STYLE.md §2.6).
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable
from typing import Any

from idp import jsoncodec
from idp.signing.interface import KeyRef, KeyStore

_HALF_HASHES: dict[str, Callable[[bytes], Any]] = {"ES256": hashlib.sha256, "RS256": hashlib.sha256}


def b64url(data: bytes) -> str:
    """Base64url without padding (RFC 7515 §2)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64_json(value: dict[str, Any]) -> str:
    """Compact UTF-8 JSON: non-ASCII names stay short instead of becoming ``\\uXXXX`` escapes."""
    return b64url(jsoncodec.dumpb(value))


def encode_jwt(
    key_store: KeyStore, key: KeyRef, claims: dict[str, Any], *, typ: str = "JWT"
) -> str:
    """The compact JWS ``header.payload.signature`` of ``claims`` signed by ``key`` (RFC 7515 §7.1).

    ``kid`` is always in the header so RPs pick the right key across rotations.
    """
    header = {"alg": key.alg, "kid": key.kid, "typ": typ}
    signing_input = f"{_b64_json(header)}.{_b64_json(claims)}"
    signature = key_store.sign(key, signing_input.encode("ascii"))
    return f"{signing_input}.{b64url(signature)}"


def hash_half(value: str, alg: str) -> str:
    """``at_hash``/``c_hash``: base64url of the left half of the hash of the ASCII ``value``,
    the hash being the one of the ID token's ``alg`` (OIDC Core §3.1.3.6, §3.3.2.11)."""
    if alg not in _HALF_HASHES:
        raise ValueError(f"no at_hash/c_hash hash defined for alg {alg!r}")
    digest: bytes = _HALF_HASHES[alg](value.encode("ascii")).digest()
    return b64url(digest[: len(digest) // 2])
