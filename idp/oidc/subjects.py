"""Subject identifiers (OIDC Core §8): the same ``sub`` for every client ("public"), or, for a
client registered with ``subject_type=pairwise``, one that differs per sector (§8.1), so that
relying parties of different sectors cannot join their records on ``sub``.

A pairwise ``sub`` is HMAC-SHA256 over the sector host and the account's public subject, keyed
by a key derived (HKDF) from ``IDP_DATA_KEY``: stable across restarts and instances, unlinkable
without the key. The sector is the host of the client's ``sector_identifier_uri``, or the one
host all its redirect URIs share.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
from urllib.parse import urlsplit

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from idp.config import settings
from idp.oidc.models import Client

SUBJECT_TYPES = ["public", "pairwise"]


@functools.lru_cache(maxsize=4)
def _pairwise_key(data_key: str) -> bytes:
    return HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"idp pairwise subject"
    ).derive(data_key.encode())


def sector_of(client: Client) -> str:
    """The sector identifier host (§8.1)."""
    uri = client.client_metadata.get("sector_identifier_uri")
    if uri:
        return urlsplit(str(uri)).hostname or ""
    hosts = {urlsplit(uri).hostname or "" for uri in client.redirect_uris}
    return hosts.pop() if len(hosts) == 1 else ""


def subject_for(client: Client | None, public_subject: str) -> str:
    """The ``sub`` that ``client`` sees for the account whose public subject is given."""
    if client is None or client.client_metadata.get("subject_type", "public") != "pairwise":
        return public_subject
    message = f"{sector_of(client)}|{public_subject}".encode()
    digest = hmac.new(_pairwise_key(settings().data_key), message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
