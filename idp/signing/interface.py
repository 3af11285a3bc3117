"""Signing-key store: publishes public keys and signs; private keys never cross this interface."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal, Protocol

from idp.config import ConfigError
from idp.errors import ServiceUnavailableError

KeyState = Literal["next", "active", "retired"]
ALGORITHMS = ("ES256", "RS256")  # the JOSE algorithms of ID tokens, in discovery order


@dataclass(frozen=True)
class KeyRef:
    """A handle on one signing key: its ``kid``, JOSE ``alg`` and lifecycle state."""

    kid: str
    alg: str  # "ES256" or "RS256"
    state: KeyState
    created_at: datetime  # also when it was first published
    retired_at: datetime | None = None


class NoSigningKeyError(RuntimeError):
    """No active key for the requested algorithm: run ``idp keys generate``."""


class KeyMaterialError(ConfigError):
    """The store's keys cannot be read (an unreadable or foreign key file, a PKCS#11 module,
    token or PIN that does not work); the message names the setting to check."""


class KeyStoreUnavailableError(ServiceUnavailableError):
    """The key store stopped answering while running (an HSM restarted or unreachable)."""

    code = "key_store_unavailable"


class KeyStore(Protocol):
    activation_delay: timedelta
    """How long a next key is published before it may sign (the JWKS cache lifetime)."""

    def keys(self) -> list[KeyRef]:
        """Every key the store holds, newest first."""

    def public_jwks(self) -> dict[str, Any]:
        """The JWKS to publish: next, active and recently retired public keys, each with kid."""

    def signing_key(self, alg: str) -> KeyRef:
        """The active key for ``alg`` or NoSigningKeyError."""

    def sign(self, key: KeyRef, data: bytes) -> bytes:
        """The JWS signature of ``data`` (raw r||s for ECDSA, per RFC 7518 §3.4)."""

    def signs_from(self, ref: KeyRef) -> datetime:
        """When the next key ``ref`` may become active (published + ``activation_delay``)."""

    def generate(self, alg: str, *, state: KeyState = "active") -> KeyRef:
        """Create a key; a new active key demotes nothing by itself (see rotate)."""

    def rotate(self, alg: str, *, immediately: bool = False) -> KeyRef:
        """Promote the next key to active once it has been published for ``activation_delay``
        (at once with ``immediately``), retire the old active one and publish a fresh next
        key; without a next key, only publish one. Returns the active key."""

    def retire(self, kid: str, *, immediately: bool = False) -> KeyRef:
        """Mark a key retired; it stays published for the retention period."""

    def close(self) -> None:
        """Release what the store holds open (a PKCS#11 session and module)."""
