"""A relying party's own token lifetimes (registered ``access_token_lifetime``,
``id_token_lifetime``, ``refresh_token_idle_lifetime``, ``refresh_token_absolute_lifetime``)
shorten the platform's; without them the platform's settings hold."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from sqlalchemy import select

from idp import db
from idp.oidc.clients import InvalidClientMetadataError, update_client
from idp.oidc.models import Client, Token
from tests.flows import Pkce, authorize_params, follow_to_code
from tests.integration.oidc.helpers import redeem

SHORT = {
    "access_token_lifetime": 120,
    "id_token_lifetime": 90,
    "refresh_token_idle_lifetime": 600,
    "refresh_token_absolute_lifetime": 3600,
}


def claims_of(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))))


def tokens(client, rp) -> dict[str, Any]:
    pkce = Pkce.new()
    code = follow_to_code(client, authorize_params(rp.client_id, pkce))["code"]
    response = redeem(client, rp, code, pkce.verifier)
    assert response.status_code == 200, response.text
    return dict(response.json)


def lifetimes(body: dict[str, Any]) -> tuple[int, int, float, float]:
    claims = claims_of(body["id_token"])
    row = db.session().scalars(select(Token).order_by(Token.id.desc())).first()
    assert row is not None and row.refresh_expires_at and row.family_expires_at
    return (
        body["expires_in"],
        claims["exp"] - claims["iat"],
        (row.refresh_expires_at - row.issued_at).total_seconds(),
        (row.family_expires_at - row.issued_at).total_seconds(),
    )


def test_a_client_without_lifetimes_gets_the_platforms(client, rp, logged_in, settings):
    assert lifetimes(tokens(client, rp)) == (
        settings.access_token_ttl,
        settings.id_token_ttl,
        settings.refresh_token_idle_ttl,
        settings.refresh_token_absolute_ttl,
    )


def test_a_clients_own_lifetimes_shorten_its_tokens(client, rp, logged_in):
    update_client(db.session(), rp.client_id, SHORT)
    db.session().commit()

    assert lifetimes(tokens(client, rp)) == (120, 90, 600, 3600)


@pytest.mark.parametrize("value", [59, 10**9, "300", True])
def test_a_lifetime_outside_the_platforms_is_refused_and_nothing_changes(rp, value):
    stored = select(Client.client_metadata).where(Client.client_id == rp.client_id)
    before = db.session().scalar(stored)

    with pytest.raises(InvalidClientMetadataError, match="access_token_lifetime"):
        update_client(db.session(), rp.client_id, {"access_token_lifetime": value})
    db.session().rollback()
    assert db.session().scalar(stored) == before
