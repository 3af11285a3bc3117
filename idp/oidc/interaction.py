"""Pending authorization requests: /authorize hands off to login, role choice and consent, and
they hand back by redirecting to /authorize/resume (node-oidc-provider's interactions).

The record lives in the ephemeral store, so any provider instance can resume it.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import asdict, dataclass
from datetime import timedelta
from urllib.parse import urlencode

from idp.db import utcnow
from idp.store import store

TTL = timedelta(minutes=15)


@dataclass
class Interaction:
    id: str
    client_id: str
    query: str  # the authorization request, re-played by /authorize/resume
    created_at: float
    identity: dict[str, object] | None = None  # chosen on the role choice page
    consented: bool = False
    denied: bool = False  # the user cancelled on the role choice or consent page


def _key(interaction_id: str) -> str:
    return f"interaction:{interaction_id}"


def create(*, client_id: str, params: dict[str, str]) -> Interaction:
    query = urlencode([(k, v) for k, v in params.items() if k != "interaction"])
    record = Interaction(
        id=secrets.token_urlsafe(18),
        client_id=client_id,
        query=query,
        created_at=utcnow().timestamp(),
    )
    save(record)
    return record


def save(record: Interaction) -> None:
    store().put(_key(record.id), json.dumps(asdict(record)).encode(), TTL)


def load(interaction_id: str) -> Interaction | None:
    if not interaction_id:
        return None
    raw = store().get(_key(interaction_id))
    return None if raw is None else Interaction(**json.loads(raw))


def finish(record: Interaction) -> None:
    store().delete(_key(record.id))
