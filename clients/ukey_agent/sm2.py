"""SM2 signing input computed in software: ``e = SM3(Z_A || M)`` (GM/T 0003.2 §6.1,
GM/T 0009 §5.4.4), where ``Z_A`` hashes the signer's ID, the curve and the public key.

SKF's ``SKF_ECCSignData`` signs a 32-byte digest it is given, so the agent must compute ``e``
itself, with the user ID every Chinese CA and verifier uses: ``1234567812345678``.
"""

from __future__ import annotations

import gmalg

DEFAULT_ID = b"1234567812345678"
# Recommended curve parameters, GM/T 0003.5-2012.
P = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFF
A = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFC
B = 0x28E9FA9E9D9F5E344D5A9E4BCF6509A7F39789F515AB8F92DDBCBD414D940E93
N = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFF7203DF6B21C6052B53BBF40939D54123
GX = 0x32C4AE2C1F1981195F9904466A39C9948FE30BBFF2660BE1715A4589334C74C7
GY = 0xBC3736A2F4F6779C59BDCEE36B692153D0A9877CC62A474002DF32E52139F0A0
SIZE = 32


def sm3(data: bytes) -> bytes:
    """SM3 hash (GB/T 32905) of ``data``."""
    hasher = gmalg.SM3()
    hasher.update(data)
    return hasher.value()


def _point(public_key: bytes) -> tuple[bytes, bytes]:
    """X and Y of an uncompressed point ``04 || X || Y``."""
    if len(public_key) != 1 + 2 * SIZE or public_key[0] != 0x04:
        raise ValueError("an SM2 public key must be an uncompressed point of 65 bytes")
    return public_key[1 : 1 + SIZE], public_key[1 + SIZE :]


def z_a(public_key: bytes, *, uid: bytes = DEFAULT_ID) -> bytes:
    """``Z_A = SM3(ENTL_A || ID_A || a || b || x_G || y_G || x_A || y_A)``; ENTL is the ID's
    length in bits as two bytes."""
    x, y = _point(public_key)
    entl = (len(uid) * 8).to_bytes(2, "big")
    curve = b"".join(v.to_bytes(SIZE, "big") for v in (A, B, GX, GY))
    return sm3(entl + uid + curve + x + y)


def digest(message: bytes, public_key: bytes, *, uid: bytes = DEFAULT_ID) -> bytes:
    """``e = SM3(Z_A || M)``: the 32 bytes handed to the token."""
    return sm3(z_a(public_key, uid=uid) + message)


def verifies(
    message: bytes, signature: bytes, public_key: bytes, *, uid: bytes = DEFAULT_ID
) -> bool:
    """Check a raw ``r || s`` SM2 signature over ``message`` with gmalg (an implementation
    independent of :func:`digest`)."""
    if len(signature) != 2 * SIZE:
        return False
    r, s = signature[:SIZE], signature[SIZE:]
    try:
        return bool(gmalg.SM2(pk=public_key, uid=uid).verify(message, r, s))
    except (ValueError, ArithmeticError):
        return False
