"""What the agent reads from certificates: which one signs, with which algorithm, the
organisation's unified social credit code (USCC), and the description ``GET /status`` shows."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
from collections.abc import Iterable
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from .der import DerError, decode_text, subject_public_key_info

# USCC locations, in the provider's default order (docs/ukey.md §2): the organisation-certificate
# extensions only. A code in the subject (a CN such as "张三(9131…)") is what personal and
# employee certificates carry too, so the agent does not show it as the organisation's.
USCC_EXTENSIONS = (
    x509.ObjectIdentifier("1.2.156.10260.4.1.4"),
    x509.ObjectIdentifier("1.2.156.1.8888.148"),
)
USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
SM2_CURVE_OID_DER = bytes.fromhex("06082a811ccf5501822d")  # 1.2.156.10197.1.301
MAX_CHAIN = 5


def load(der: bytes) -> x509.Certificate | None:
    """Parse a certificate; ``None`` for objects a token holds that are not valid X.509."""
    try:
        return x509.load_der_x509_certificate(der)
    except ValueError:
        return None


def is_valid_uscc(value: str) -> bool:
    """GB 32100-2015: 18 characters of the alphabet, the last one the check character."""
    if len(value) != 18 or any(c not in USCC_ALPHABET for c in value):
        return False
    total = sum(USCC_ALPHABET.index(c) * w for c, w in zip(value[:17], USCC_WEIGHTS, strict=True))
    return USCC_ALPHABET[(31 - total % 31) % 31] == value[17]


def _uscc_candidates(cert: x509.Certificate) -> Iterable[str]:
    """The values of the USCC extensions, in the provider's default order."""
    for oid in USCC_EXTENSIONS:
        try:
            extension = cert.extensions.get_extension_for_oid(oid)
        except (x509.ExtensionNotFound, ValueError):
            continue
        raw = getattr(extension.value, "value", b"")
        text = decode_text(raw) if isinstance(raw, bytes) else None
        if text:
            yield text


def extract_uscc(cert: x509.Certificate) -> str | None:
    """The first candidate that is a valid USCC; values failing the check character are skipped,
    and the subject is never read, so a CN that merely holds a code shows no organisation."""
    for candidate in _uscc_candidates(cert):
        value = candidate.strip()
        if is_valid_uscc(value):
            return value
    return None


def is_signing_certificate(cert: x509.Certificate) -> bool:
    """An end-entity certificate whose keyUsage includes digitalSignature. A missing keyUsage is
    not accepted: the provider requires the bit, and tokens hold encryption certificates too."""
    try:
        usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except (x509.ExtensionNotFound, ValueError):
        return False
    try:
        constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
        if constraints.ca:
            return False
    except (x509.ExtensionNotFound, ValueError):
        pass
    return usage.digital_signature


def is_sm2(cert: x509.Certificate) -> bool:
    """True for an EC key on the SM2 curve (``cryptography`` cannot load those keys)."""
    try:
        algorithm, _ = subject_public_key_info(cert.public_bytes(Encoding.DER))
    except (DerError, ValueError, IndexError):
        return False
    return SM2_CURVE_OID_DER in algorithm.raw


def key_alg(cert: x509.Certificate) -> str:
    """A short name of the key: ``RSA-2048``, ``EC-P256``, ``SM2``, ``EC-secp384r1`` …"""
    try:
        key = cert.public_key()
    except (UnsupportedAlgorithm, ValueError):
        return "SM2" if is_sm2(cert) else "unknown"
    if isinstance(key, rsa.RSAPublicKey):
        return f"RSA-{key.key_size}"
    if isinstance(key, ec.EllipticCurvePublicKey):
        return "EC-P256" if isinstance(key.curve, ec.SECP256R1) else f"EC-{key.curve.name}"
    return type(key).__name__


def jws_alg(cert: x509.Certificate, *, rsa_pss: bool) -> str | None:
    """The protocol's algorithm for this certificate's key over PKCS#11, or ``None`` if the
    agent cannot sign with it that way (SM2 keys go through SKF)."""
    name = key_alg(cert)
    if name.startswith("RSA-"):
        return "PS256" if rsa_pss else "RS256"
    if name == "EC-P256":
        return "ES256"
    return None


def preference(cert: x509.Certificate) -> tuple[bool, float]:
    """Sort key: certificates valid now first, then the most recently issued (a renewed signing
    certificate next to the expired one)."""
    now = dt.datetime.now(dt.UTC)
    valid = cert.not_valid_before_utc <= now <= cert.not_valid_after_utc
    return (not valid, -cert.not_valid_before_utc.timestamp())


def _issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    """Name match, confirmed by the signature where ``cryptography`` can check it (not SM2)."""
    if cert.issuer != issuer.subject:
        return False
    try:
        cert.verify_directly_issued_by(issuer)
    except (InvalidSignature, ValueError, TypeError):
        return False
    except UnsupportedAlgorithm:
        return True
    return True


def issuer_chain(leaf: x509.Certificate, others: Iterable[x509.Certificate]) -> tuple[bytes, ...]:
    """The CA certificates on the token above ``leaf``, nearest first, without the self-signed
    root (the provider trusts only its own anchors, never one sent by the client)."""
    pool = [c for c in others if c.subject != c.issuer]
    chain: list[bytes] = []
    current = leaf
    while len(chain) < MAX_CHAIN:
        parent = next((c for c in pool if _issued_by(current, c)), None)
        if parent is None:
            break
        chain.append(parent.public_bytes(Encoding.DER))
        pool.remove(parent)
        current = parent
    return tuple(chain)


def b64url(data: bytes) -> str:
    """Unpadded base64url (RFC 7515 §2), used for every binary value in the protocol."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def cert_sha256(der: bytes) -> str:
    """``cert_sha256`` of the payload: base64url of SHA-256 over the certificate's DER."""
    return b64url(hashlib.sha256(der).digest())


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _organisation(cert: x509.Certificate) -> str | None:
    names = cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
    return str(names[0].value) if names else None


def describe(der: bytes) -> dict[str, Any]:
    """The ``certificate`` object of ``GET /status`` (what 协卡助手 shows about a UKey)."""
    cert = x509.load_der_x509_certificate(der)
    return {
        "subject": cert.subject.rfc4514_string(),
        "issuer": cert.issuer.rfc4514_string(),
        "org_name": _organisation(cert),
        "uscc": extract_uscc(cert),
        "serial": format(cert.serial_number, "X"),
        "not_before": _iso(cert.not_valid_before_utc),
        "not_after": _iso(cert.not_valid_after_utc),
        "key_alg": key_alg(cert),
        "sha256": hashlib.sha256(der).hexdigest(),
    }
