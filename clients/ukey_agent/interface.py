"""``TokenSigner``: what the HTTP layer needs from a UKey, whatever library drives it.

Two implementations: :class:`~clients.ukey_agent.pkcs11_signer.Pkcs11Signer` (PKCS#11 modules:
RSA and EC P-256, tested with SoftHSM2) and :class:`~clients.ukey_agent.skf_signer.SkfSigner`
(GM/T 0016 SKF libraries: SM2). The private key never leaves the token; the HTTP layer only ever
sees certificates, payload bytes and signatures.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

PayloadBuilder = Callable[[bytes], bytes]
"""Given the DER of the certificate that will sign, return the exact bytes to sign."""


@dataclass(frozen=True, kw_only=True)
class TokenInfo:
    """One present token, as ``GET /status`` lists it."""

    label: str
    serial: str
    manufacturer: str
    model: str


@dataclass(frozen=True, kw_only=True)
class SigningCertificate:
    """The token's signing certificate, the CA certificates found next to it, and the JWS-style
    algorithm its key signs with."""

    der: bytes
    chain: tuple[bytes, ...]
    alg: str


@dataclass(frozen=True, kw_only=True)
class SignedPayload:
    """The result of one signing: exactly what ``POST /sign`` returns, before encoding."""

    payload: bytes
    signature: bytes
    alg: str
    certificate: bytes
    chain: tuple[bytes, ...]


class TokenSigner(Protocol):
    """Access to the UKeys plugged into this PC.

    Methods raise :class:`~clients.ukey_agent.errors.AgentError` with the protocol's codes
    (``no_token``, ``several_tokens``, ``no_signing_certificate``, ``wrong_pin``, ``pin_locked``,
    ``token_error``). Implementations serialise token access themselves: the HTTP server is
    threaded, and PKCS#11 login state is shared by every session of the process.
    """

    def tokens(self) -> list[TokenInfo]:
        """The tokens present now (hot-plug aware where the library is)."""
        ...

    def signing_certificate(self, *, token: str | None) -> SigningCertificate:
        """The signing certificate of the token with serial ``token`` (or of the only token),
        readable without the PIN."""
        ...

    def sign(self, *, token: str | None, pin: str, build_payload: PayloadBuilder) -> SignedPayload:
        """Log in with ``pin``, sign ``build_payload(cert_der)`` with the key paired with the
        signing certificate, and log out again so the next request needs the PIN again.

        The PIN is used for the login call only: never logged, never kept.
        """
        ...

    def close(self) -> None:
        """Release the library (PKCS#11 ``C_Finalize``, SKF handles)."""
        ...
