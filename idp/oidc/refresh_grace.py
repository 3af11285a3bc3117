"""The refresh-token reuse interval (docs/protocol.md, "Refresh-token reuse interval").

Relying parties that refresh in parallel for one session (several browser requests at once),
or twice in one request, present a refresh token that was rotated a moment ago. Within the
client's interval, the same authenticated client gets the successor it was already given:
nothing new is minted, so the family still has one live chain. Outside it, or when the
successor itself has moved on, reuse revokes the family (``grants.RefreshTokenGrant``).

The successor's token response is kept in the ephemeral store for the interval only, encrypted
with a key derived from the rotated token, so only whoever holds that token can read it.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import time
from datetime import timedelta
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from idp import jsoncodec
from idp.store import StoreUnavailableError, store

logger = logging.getLogger(__name__)

# How long a parallel refresh waits for the rotation it lost to be written.
WAIT_SECONDS = 2.0
POLL_SECONDS = 0.05


def _key(refresh_token: str) -> str:
    return "refresh-grace:" + hashlib.sha256(b"grace:" + refresh_token.encode()).hexdigest()


def _cipher(refresh_token: str) -> AESGCM:
    secret = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"idp refresh-token reuse interval"
    ).derive(refresh_token.encode())
    return AESGCM(secret)


def remember(refresh_token: str, response: dict[str, Any], interval: int) -> None:
    """Keep the token response that replaced ``refresh_token`` for ``interval`` seconds."""
    nonce = os.urandom(12)
    sealed = _cipher(refresh_token).encrypt(nonce, jsoncodec.dumpb(response), None)
    store().put(_key(refresh_token), base64.b64encode(nonce + sealed), timedelta(seconds=interval))


def keep(refresh_token: str, response: dict[str, Any], interval: int) -> None:
    """``remember``, where the store can be reached. The successor is committed by now: an
    unreachable store must not turn its response into an error (the client would lose the only
    copy of a live token and, retrying, get its family revoked). Without the kept response a
    parallel refresh of this token is treated as reuse, the rule outside the interval."""
    try:
        remember(refresh_token, response, interval)
    except StoreUnavailableError as error:
        logger.warning("refresh reuse interval not kept: store unavailable (%s)", error.detail)


def recall(refresh_token: str, *, wait: bool) -> dict[str, Any] | None:
    """The response that replaced ``refresh_token``, if still kept; with ``wait``, give a
    rotation that is still being written a moment to finish."""
    deadline = time.monotonic() + (WAIT_SECONDS if wait else 0)
    while True:
        kept = store().get(_key(refresh_token))
        if kept is not None:
            raw = base64.b64decode(kept)
            plain = _cipher(refresh_token).decrypt(raw[:12], raw[12:], None)
            response: dict[str, Any] = jsoncodec.loads(plain)
            return response
        if time.monotonic() >= deadline:
            return None
        time.sleep(POLL_SECONDS)
