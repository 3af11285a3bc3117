"""SM2 with SM3 (GB/T 32918, GM/T 0009) through gmalg, for what ``cryptography`` cannot do.

``cryptography`` parses SM2 certificates but cannot load their keys, so the login signature
(:func:`sm2_verify`) and the signatures inside SM2 chains and CRLs
(:class:`idp.auth.cert.validate.Sm2SignatureValidator`, a pyhanko-certvalidator plug-in) are
checked with gmalg, always with the user ID ``1234567812345678`` of GM/T 0009 that real
certificates use (OpenSSL's default is an empty ID).
"""

from __future__ import annotations

import gmalg
from asn1crypto import keys
from gmalg.errors import GMError

SM2_CURVE = "1.2.156.10197.1.301"
SM2_WITH_SM3 = "1.2.156.10197.1.501"
EC_PUBLIC_KEY = "1.2.840.10045.2.1"
SM2_USER_ID = b"1234567812345678"
SCALAR_SIZE = 32


def is_sm2_key(spki: keys.PublicKeyInfo) -> bool:
    """True for an SM2 public key: id-ecPublicKey with the SM2 curve as its named curve."""
    if spki["algorithm"]["algorithm"].dotted != EC_PUBLIC_KEY:
        return False
    parameters = spki["algorithm"]["parameters"]
    return parameters.name == "named" and parameters.chosen.dotted == SM2_CURVE


def public_point(spki: keys.PublicKeyInfo) -> bytes:
    """The uncompressed point ``04 || X || Y`` of an SM2 key."""
    point: bytes = spki["public_key"].native
    return point


def sm2_verify(point: bytes, message: bytes, r: int, s: int) -> bool:
    """Verify an SM2 signature ``(r, s)`` over ``message`` (SM3 with the GM/T 0009 user ID)."""
    if not (0 < r < 1 << 256 and 0 < s < 1 << 256):
        return False
    try:
        verifier = gmalg.SM2(pk=point, uid=SM2_USER_ID)
        if not verifier.verify_pk(point):
            return False
        return bool(
            verifier.verify(message, r.to_bytes(SCALAR_SIZE, "big"), s.to_bytes(SCALAR_SIZE, "big"))
        )
    except (GMError, ValueError, IndexError, TypeError):
        return False


def split_raw(signature: bytes) -> tuple[int, int] | None:
    """``r || s`` (32 + 32 bytes, as JWS and SKF tokens give them) as integers."""
    if len(signature) != 2 * SCALAR_SIZE:
        return None
    return (
        int.from_bytes(signature[:SCALAR_SIZE], "big"),
        int.from_bytes(signature[SCALAR_SIZE:], "big"),
    )
