"""Signature encodings and a software check of every signature before it leaves the agent: a
key paired with the wrong certificate (a badly provisioned token) fails here, not at login."""

from __future__ import annotations

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

P256_SIZE = 32
PSS_SALT_LENGTH = 32


def raw_ecdsa(signature: bytes, *, size: int = P256_SIZE) -> bytes:
    """``r || s`` (JWS, RFC 7518 §3.4). PKCS#11 ``CKM_ECDSA`` already returns that; a few vendor
    modules return DER instead, which is converted."""
    if len(signature) == 2 * size:
        return signature
    try:
        r, s = decode_dss_signature(signature)
    except ValueError as error:
        raise ValueError(
            f"ECDSA signature of {len(signature)} bytes is neither r||s nor DER"
        ) from error
    return r.to_bytes(size, "big") + s.to_bytes(size, "big")


def verifies(cert: x509.Certificate, *, alg: str, data: bytes, signature: bytes) -> bool:
    """True if ``signature`` over ``data`` verifies with the certificate's key as ``alg``."""
    try:
        key = cert.public_key()
        if alg == "RS256" and isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, data, padding.PKCS1v15(), hashes.SHA256())
        elif alg == "PS256" and isinstance(key, rsa.RSAPublicKey):
            pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=PSS_SALT_LENGTH)
            key.verify(signature, data, pss, hashes.SHA256())
        elif alg == "ES256" and isinstance(key, ec.EllipticCurvePublicKey):
            if len(signature) != 2 * P256_SIZE:
                return False
            r, s = signature[:P256_SIZE], signature[P256_SIZE:]
            der = encode_dss_signature(int.from_bytes(r, "big"), int.from_bytes(s, "big"))
            key.verify(der, data, ec.ECDSA(hashes.SHA256()))
        else:
            return False
    except (InvalidSignature, UnsupportedAlgorithm, ValueError):
        return False
    return True
