"""The signed login payload (docs/ukey-protocol.md §2): built by the agent, never by the page,
so the origin inside is the one the browser vouched for in the ``Origin`` header."""

from __future__ import annotations

import json
import re
import time

from .certs import cert_sha256

PAYLOAD_TYPE = "ukey-login"
PAYLOAD_VERSION = 1
CHALLENGE_PATTERN = re.compile(r"[A-Za-z0-9_-]{16,128}")


def canonical_json(value: dict[str, object]) -> bytes:
    """Keys sorted, separators ``,`` and ``:``, no whitespace, UTF-8: one byte string per value,
    so the provider can insist on exactly these bytes."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def build_payload(*, cert_der: bytes, challenge: str, origin: str, ts: int | None = None) -> bytes:
    """The payload for ``challenge`` from the page at ``origin``, to be signed by ``cert_der``'s
    key; ``ts`` is the current Unix time unless given (tests)."""
    return canonical_json(
        {
            "cert_sha256": cert_sha256(cert_der),
            "nonce": challenge,
            "origin": origin,
            "ts": int(time.time()) if ts is None else ts,
            "typ": PAYLOAD_TYPE,
            "v": PAYLOAD_VERSION,
        }
    )


def is_challenge(value: object) -> bool:
    """A base64url challenge of 16 to 128 characters (the provider issues 43)."""
    return isinstance(value, str) and CHALLENGE_PATTERN.fullmatch(value) is not None
