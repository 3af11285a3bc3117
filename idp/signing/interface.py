"""Signing-key store: publishes public keys and signs; private keys never cross this interface."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Protocol

KeyState = Literal["next", "active", "retired"]


@dataclass(frozen=True)
class KeyRef:
    """A handle on one signing key: its ``kid``, JOSE ``alg`` and lifecycle state."""

    kid: str
    alg: str  # "ES256" or "RS256"
    state: KeyState
    created_at: datetime
    retired_at: datetime | None = None


class NoSigningKeyError(RuntimeError):
    """No active key for the requested algorithm: run ``idp keys generate``."""


class KeyStore(Protocol):
    def keys(self) -> list[KeyRef]:
        """Every key the store holds, newest first."""

    def public_jwks(self) -> dict[str, Any]:
        """The JWKS to publish: next, active and recently retired public keys, each with kid."""

    def signing_key(self, alg: str) -> KeyRef:
        """The active key for ``alg`` or NoSigningKeyError."""

    def sign(self, key: KeyRef, data: bytes) -> bytes:
        """The JWS signature of ``data`` (raw r||s for ECDSA, per RFC 7518 §3.4)."""

    def generate(self, alg: str, *, state: KeyState = "active") -> KeyRef:
        """Create a key; a new active key demotes nothing by itself (see rotate)."""

    def rotate(self, alg: str) -> KeyRef:
        """Promote the next key (creating one if needed) to active, retire the old active one,
        and prepare a fresh next key so RPs can cache it before it signs."""

    def retire(self, kid: str) -> KeyRef:
        """Mark a key retired; it stays published for the retention period."""
