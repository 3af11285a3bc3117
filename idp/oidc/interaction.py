"""Pending authorization requests: /authorize hands off to login, role choice and consent, and
they hand back by redirecting to /authorize/resume (node-oidc-provider's interactions).

The record lives in the ephemeral store, so any provider instance can resume it.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import asdict, dataclass
from datetime import timedelta
from urllib.parse import parse_qsl, urlencode, urlsplit

from flask import Response, request
from werkzeug.exceptions import HTTPException

from idp.db import utcnow
from idp.identity.models import Identity
from idp.store import store

TTL = timedelta(minutes=15)


@dataclass
class Interaction:
    id: str
    client_id: str
    query: str  # the authorization request, re-played by /authorize/resume
    created_at: float
    identity: Identity | None = None  # chosen on the role choice page
    consented: bool = False
    denied: bool = False  # the user cancelled on the role choice or consent page


def _key(interaction_id: str) -> str:
    return f"interaction:{interaction_id}"


def new(*, client_id: str, params: dict[str, str]) -> Interaction:
    """A record for this request; stored (``save``) only when a page takes the request over."""
    query = urlencode([(k, v) for k, v in params.items() if k != "interaction"])
    return Interaction(
        id=secrets.token_urlsafe(18),
        client_id=client_id,
        query=query,
        created_at=utcnow().timestamp(),
    )


def save(record: Interaction) -> None:
    data = {**asdict(record), "identity": record.identity and record.identity.to_json()}
    store().put(_key(record.id), json.dumps(data).encode(), TTL)


def load(interaction_id: str) -> Interaction | None:
    if not interaction_id:
        return None
    raw = store().get(_key(interaction_id))
    if raw is None:
        return None
    data = json.loads(raw)
    return Interaction(**{**data, "identity": Identity.from_json(data.get("identity"))})


def finish(record: Interaction) -> None:
    store().delete(_key(record.id))


def redirect_origin(record: Interaction) -> str:
    """Origin of the (already validated) redirect URI of this request."""
    return origin_of(dict(parse_qsl(record.query)).get("redirect_uri", ""))


def origin_of(uri: str) -> str:
    parts = urlsplit(uri)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else ""


def allow_redirect_in_form_action(response: Response) -> Response:
    """CSP ``form-action`` also governs the redirects that follow a form POST (CSP3 §6.4.1):
    pages of a pending authorization request may end in a redirect to the client, so its
    origin joins ``form-action`` for them."""
    try:
        interaction_id = request.values.get("interaction", "")
    except HTTPException:  # an oversized or malformed body: the error response stands as is
        return response
    if interaction_id and "X-Form-Action" not in response.headers:
        record = load(interaction_id[:64])
        if record is not None and (origin := redirect_origin(record)):
            response.headers["X-Form-Action"] = origin
    return response
