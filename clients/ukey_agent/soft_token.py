"""A development-only software token: a certificate and its private key in files, the key
encrypted with the PIN (PKCS#8). For ``make run`` on machines without SoftHSM2; it offers none
of a UKey's protection and refuses to look like one: ``/status`` names it "DEV SOFTWARE TOKEN".
"""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from .certs import jws_alg
from .errors import AgentError
from .interface import PayloadBuilder, SignedPayload, SigningCertificate, TokenInfo

CERT_FILE = "cert.pem"
KEY_FILE = "key.pem"  # PKCS#8, encrypted with the PIN


def write_soft_token(
    directory: Path,
    *,
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey,
    cert: x509.Certificate,
    pin: str,
) -> Path:
    """Create the token's two files (key readable by the owner only)."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    (directory / CERT_FILE).write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path = directory / KEY_FILE
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(pin.encode()),
        )
    )
    key_path.chmod(0o600)
    return directory


class SoftTokenSigner:
    """``TokenSigner`` over a software token directory (development only)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._lock = threading.Lock()

    def _certificate(self) -> x509.Certificate:
        try:
            return x509.load_pem_x509_certificate((self.directory / CERT_FILE).read_bytes())
        except (OSError, ValueError):
            raise AgentError("no_token", detail=f"no software token in {self.directory}") from None

    def tokens(self) -> list[TokenInfo]:
        try:
            cert = self._certificate()
        except AgentError:
            return []
        serial = (
            hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()[:16].upper()
        )
        return [
            TokenInfo(
                label="DEV SOFTWARE TOKEN", serial=serial, manufacturer="development", model="file"
            )
        ]

    def signing_certificate(self, *, token: str | None) -> SigningCertificate:
        cert = self._certificate()
        alg = jws_alg(cert, rsa_pss=False)
        if alg is None:
            raise AgentError("no_signing_certificate")
        return SigningCertificate(
            der=cert.public_bytes(serialization.Encoding.DER), chain=(), alg=alg
        )

    def sign(self, *, token: str | None, pin: str, build_payload: PayloadBuilder) -> SignedPayload:
        signing = self.signing_certificate(token=token)
        with self._lock:
            try:
                key = serialization.load_pem_private_key(
                    (self.directory / KEY_FILE).read_bytes(), pin.encode()
                )
            except (ValueError, TypeError):
                raise AgentError("wrong_pin") from None
        payload = build_payload(signing.der)
        return SignedPayload(
            payload=payload,
            signature=_sign(key, signing.alg, payload),
            alg=signing.alg,
            certificate=signing.der,
            chain=signing.chain,
        )

    def close(self) -> None:
        """Nothing to release."""


def _sign(key: object, alg: str, payload: bytes) -> bytes:
    if alg == "RS256" and isinstance(key, rsa.RSAPrivateKey):
        return key.sign(payload, padding.PKCS1v15(), hashes.SHA256())
    if alg == "ES256" and isinstance(key, ec.EllipticCurvePrivateKey):
        r, s = decode_dss_signature(key.sign(payload, ec.ECDSA(hashes.SHA256())))
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")
    raise AgentError("token_error", detail=f"software token cannot sign {alg}")
