"""The signed login payload and its signature (docs/ukey-protocol.md §2 and §3).

The agent signs canonical JSON (sorted keys, ``,``/``:`` separators, UTF-8, no whitespace) of
exactly ``cert_sha256``, ``nonce``, ``origin``, ``ts``, ``typ`` and ``v``. The provider accepts
only bytes that are already in that form, so one payload has one byte string and nothing can be
smuggled next to the signed fields.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from idp.auth.cert import sm2
from idp.auth.cert.errors import (
    AlgorithmMismatchError,
    BadSignatureError,
    CertificateMismatchError,
    MalformedResponseError,
    OriginMismatchError,
    StaleTimestampError,
)

PAYLOAD_TYPE = "ukey-login"
PAYLOAD_VERSION = 1
PAYLOAD_KEYS = frozenset({"cert_sha256", "nonce", "origin", "ts", "typ", "v"})
MAX_PAYLOAD_BYTES = 1024
NONCE = re.compile(r"^[A-Za-z0-9_-]{16,128}$")
SHA256_B64 = re.compile(r"^[A-Za-z0-9_-]{43}$")
MAX_ORIGIN = 255
MIN_RSA_BITS = 2048
# The key each algorithm needs (see key_kind).
ALGORITHM_KEYS = {"RS256": "RSA", "PS256": "RSA", "ES256": "EC-P256", "SM2": "SM2"}
ALGORITHMS = tuple(ALGORITHM_KEYS)
RSA_ENCRYPTION = "1.2.840.113549.1.1.1"
P256 = "1.2.840.10045.3.1.7"


@dataclass(frozen=True)
class LoginPayload:
    """The checked fields of a canonical payload (``typ`` and ``v`` are fixed)."""

    cert_sha256: str
    nonce: str
    origin: str
    ts: int


def canonical_json(value: Mapping[str, Any]) -> bytes:
    """The canonical encoding the agent signs: sorted keys, no whitespace, UTF-8."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def parse_payload(data: bytes) -> LoginPayload:
    """Parse the payload bytes; MalformedResponseError unless they are canonical JSON of exactly
    the six protocol fields with the right types, ``typ == "ukey-login"`` and ``v == 1``."""
    if len(data) > MAX_PAYLOAD_BYTES:
        raise MalformedResponseError(detail="payload too long")
    try:
        value = json.loads(
            data.decode("utf-8"), object_pairs_hook=_unique_keys, parse_constant=_no_constant
        )
    except (UnicodeDecodeError, ValueError) as error:
        raise MalformedResponseError(detail=f"payload is not JSON: {error}") from None
    if not isinstance(value, dict) or set(value) != PAYLOAD_KEYS:
        raise MalformedResponseError(detail="payload fields are not the protocol's")
    _check_field_types(value)
    if canonical_json(value) != data:
        raise MalformedResponseError(detail="payload is not in canonical form")
    return LoginPayload(
        cert_sha256=value["cert_sha256"],
        nonce=value["nonce"],
        origin=value["origin"],
        ts=value["ts"],
    )


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise ValueError("duplicate key")
    return result


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def _check_field_types(value: dict[str, Any]) -> None:
    # type() rather than isinstance(): JSON true must not pass as the integer 1.
    if type(value["v"]) is not int or value["v"] != PAYLOAD_VERSION:
        raise MalformedResponseError(detail="unsupported payload version")
    if value["typ"] != PAYLOAD_TYPE:
        raise MalformedResponseError(detail="payload typ is not ukey-login")
    if type(value["ts"]) is not int:
        raise MalformedResponseError(detail="ts is not an integer")
    if not isinstance(value["nonce"], str) or not NONCE.match(value["nonce"]):
        raise MalformedResponseError(detail="nonce is not a challenge")
    if not isinstance(value["origin"], str) or not 0 < len(value["origin"]) <= MAX_ORIGIN:
        raise MalformedResponseError(detail="origin is not a string")
    if not isinstance(value["cert_sha256"], str) or not SHA256_B64.match(value["cert_sha256"]):
        raise MalformedResponseError(detail="cert_sha256 is not a base64url SHA-256")


def origin_of(url: str) -> str:
    """The Origin a browser sends for pages under ``url`` (scheme://host[:port], default port
    omitted), e.g. to compare with the issuer's."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    port = parts.port
    default = {"http": 80, "https": 443}.get(scheme)
    return f"{scheme}://{host}" if port in (None, default) else f"{scheme}://{host}:{port}"


def check_origin(login: LoginPayload, expected_origin: str) -> None:
    """The payload was signed for this provider's origin (exact, as the browser sent it)."""
    if login.origin != expected_origin:
        raise OriginMismatchError(detail=f"payload origin {login.origin!r}")


def check_timestamp(login: LoginPayload, *, now: datetime, skew: int) -> None:
    """The signed time is within ``skew`` seconds of ``now``, in either direction."""
    if abs(now.timestamp() - login.ts) > skew:
        raise StaleTimestampError(detail=f"ts {login.ts} vs now {int(now.timestamp())}")


def certificate_sha256(cert_der: bytes) -> str:
    """base64url (no padding) of the SHA-256 of the certificate's DER, as in the payload."""
    digest = hashlib.sha256(cert_der).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def check_certificate_binding(login: LoginPayload, cert_der: bytes) -> None:
    """The payload names the submitted certificate (no swapping after signing)."""
    if not hmac.compare_digest(login.cert_sha256, certificate_sha256(cert_der)):
        raise CertificateMismatchError(detail="cert_sha256 does not match the certificate")


def subject_public_key_info(cert: x509.Certificate) -> Any:
    """The asn1crypto SubjectPublicKeyInfo (``cryptography`` cannot load SM2 keys)."""
    return asn1_x509.TbsCertificate.load(cert.tbs_certificate_bytes)["subject_public_key_info"]


def key_kind(cert: x509.Certificate) -> str:
    """``RSA``, ``EC-P256``, ``SM2``, or another label for keys no algorithm accepts."""
    spki = subject_public_key_info(cert)
    algorithm = spki["algorithm"]["algorithm"].dotted
    if algorithm == RSA_ENCRYPTION:
        return "RSA"
    if sm2.is_sm2_key(spki):
        return "SM2"
    if algorithm == sm2.EC_PUBLIC_KEY:
        parameters = spki["algorithm"]["parameters"]
        curve = parameters.chosen.dotted if parameters.name == "named" else "explicit"
        return "EC-P256" if curve == P256 else f"EC-{curve}"
    return algorithm


def key_description(cert: x509.Certificate) -> str:
    """``RSA-2048``, ``EC-P256``, ``SM2``: the key type shown to people and in audit records."""
    kind = key_kind(cert)
    if kind == "RSA":
        key = cert.public_key()
        if isinstance(key, rsa.RSAPublicKey):
            return f"RSA-{key.key_size}"
    return kind


def verify_signature(cert: x509.Certificate, alg: str, payload: bytes, signature: bytes) -> None:
    """Verify the login signature over the payload bytes with the certificate's key.

    RS256 (PKCS#1 v1.5, SHA-256), PS256 (PSS, SHA-256, MGF1-SHA-256, salt 32), ES256 (P-256,
    raw ``r || s``), SM2 (SM3, user ID 1234567812345678, raw ``r || s``). The algorithm must
    fit the key: AlgorithmMismatchError otherwise; BadSignatureError when it does not verify.
    """
    if alg not in ALGORITHM_KEYS:
        raise MalformedResponseError(detail=f"unknown alg {alg[:16]!r}")
    try:
        kind = key_kind(cert)
    except (ValueError, TypeError, KeyError):
        raise MalformedResponseError(detail="unreadable public key") from None
    if kind != ALGORITHM_KEYS[alg]:
        raise AlgorithmMismatchError(detail=f"{alg} with a {kind} key")
    try:
        if alg == "SM2":
            _verify_sm2(cert, payload, signature)
        else:
            _verify_pyca(cert, alg, payload, signature)
    except (InvalidSignature, UnsupportedAlgorithm, ValueError):
        raise BadSignatureError(detail=f"{alg} signature does not verify") from None


def _verify_pyca(cert: x509.Certificate, alg: str, payload: bytes, signature: bytes) -> None:
    key = cert.public_key()
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size < MIN_RSA_BITS:
            raise InvalidSignature("RSA key shorter than 2048 bits")
        scheme: padding.AsymmetricPadding = padding.PKCS1v15()
        if alg == "PS256":
            scheme = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
        key.verify(signature, payload, scheme, hashes.SHA256())
        return
    if isinstance(key, ec.EllipticCurvePublicKey):
        r_s = sm2.split_raw(signature)
        if r_s is None:
            raise InvalidSignature("ES256 signature is not 64 bytes")
        key.verify(encode_dss_signature(*r_s), payload, ec.ECDSA(hashes.SHA256()))
        return
    raise InvalidSignature("unsupported key")


def _verify_sm2(cert: x509.Certificate, payload: bytes, signature: bytes) -> None:
    r_s = sm2.split_raw(signature)
    if r_s is None or not sm2.sm2_verify(
        sm2.public_point(subject_public_key_info(cert)), payload, *r_s
    ):
        raise InvalidSignature("SM2 signature does not verify")


def b64decode(text: str, *, urlsafe: bool, limit: int) -> bytes:
    """Strict base64 (or base64url) with optional padding; MalformedResponseError otherwise."""
    if len(text) > limit * 4 // 3 + 4:
        raise MalformedResponseError(detail="field too long")
    padded = text + "=" * (-len(text) % 4)
    try:
        return base64.b64decode(padded, altchars=b"-_" if urlsafe else None, validate=True)
    except (binascii.Error, ValueError):
        raise MalformedResponseError(detail="bad base64") from None
