"""Refresh responses carry a fresh ID token (OIDC Core §12.2), and the refresh-token reuse
interval (docs/protocol.md, "Refresh-token reuse interval"): a relying party that refreshes twice with one token, or in
parallel, gets the same successor back; outside the interval, reuse revokes the family."""

from __future__ import annotations

from datetime import timedelta

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet
from sqlalchemy import update

from idp import db
from idp.db import utcnow
from idp.oidc.clients import update_client
from idp.oidc.models import Token
from tests.conftest import both_databases, register
from tests.flows import Pkce
from tests.integration.oidc.helpers import (
    audit_count,
    live_tokens,
    mint_code,
    redeem,
    refresh,
    run_in_parallel,
    userinfo_status,
)


@pytest.fixture
def first(client, rp, logged_in):
    pkce = Pkce.new()
    return redeem(client, rp, mint_code(client, rp, pkce), pkce.verifier).json


def id_token_claims(client, id_token: str) -> dict:
    keys = KeySet.import_key_set(client.get("/.well-known/jwks.json").json)
    return jwt.decode(id_token, keys).claims


def test_refresh_returns_a_fresh_id_token_for_the_same_login(client, rp, first):
    original = id_token_claims(client, first["id_token"])

    body = refresh(client, rp, first["refresh_token"]).json

    fresh = id_token_claims(client, body["id_token"])
    for claim in ("iss", "sub", "aud", "azp", "auth_time", "sid", "org", "role", "amr"):
        assert fresh[claim] == original[claim], claim
    assert "nonce" in original and "nonce" not in fresh  # §12.2: SHOULD NOT carry the nonce
    assert fresh["iat"] >= original["iat"]


def test_a_repeated_refresh_within_the_interval_gets_the_same_successor(client, rp, first):
    rotated = refresh(client, rp, first["refresh_token"])
    again = refresh(client, rp, first["refresh_token"])

    assert rotated.status_code == again.status_code == 200
    assert again.json == rotated.json  # nothing new minted
    assert again.headers["Cache-Control"] == "no-store"
    assert userinfo_status(client, rotated.json["access_token"]) == 200
    assert live_tokens() == 1  # one live chain
    assert refresh(client, rp, rotated.json["refresh_token"]).status_code == 200
    assert audit_count("oidc.refresh_token_reused_within_interval") == 1
    assert audit_count("oidc.refresh_token_reused") == 0


@both_databases
def test_parallel_refreshes_with_one_token_all_get_the_one_successor(app, client, rp, first):
    responses = run_in_parallel(
        app,
        6,
        lambda c: (lambda r: (r.status_code, r.json))(refresh(c, rp, first["refresh_token"])),
    )

    assert {status for status, _ in responses} == {200}
    assert len({body["refresh_token"] for _, body in responses}) == 1
    assert live_tokens() == 1
    successor = responses[0][1]
    assert userinfo_status(client, successor["access_token"]) == 200


def test_reuse_after_the_successor_moved_on_revokes_the_family(client, rp, first):
    rotated = refresh(client, rp, first["refresh_token"]).json
    newest = refresh(client, rp, rotated["refresh_token"]).json

    replay = refresh(client, rp, first["refresh_token"])

    assert replay.status_code == 400 and replay.json["error"] == "invalid_grant"
    assert userinfo_status(client, newest["access_token"]) == 401
    assert live_tokens() == 0
    assert audit_count("oidc.refresh_token_reused") == 1


def test_reuse_outside_the_interval_revokes_the_family(client, rp, first):
    rotated = refresh(client, rp, first["refresh_token"]).json
    db.session().execute(
        update(Token)
        .where(Token.rotated_at.is_not(None))
        .values(rotated_at=utcnow() - timedelta(seconds=6))
    )
    db.session().commit()

    replay = refresh(client, rp, first["refresh_token"])

    assert replay.status_code == 400 and replay.json["error"] == "invalid_grant"
    assert userinfo_status(client, rotated["access_token"]) == 401
    assert live_tokens() == 0


def test_another_client_presenting_the_rotated_token_gets_nothing(app, client, rp, first):
    other = register(
        app,
        {
            "client_name": "Other",
            "redirect_uris": ["https://other.example/cb"],
            "grant_types": ["authorization_code", "refresh_token"],
        },
    )
    rotated = refresh(client, rp, first["refresh_token"]).json

    stolen = refresh(client, other, first["refresh_token"])

    assert stolen.status_code == 400 and stolen.json["error"] == "invalid_grant"
    assert "access_token" not in stolen.json
    assert userinfo_status(client, rotated["access_token"]) == 200


def test_a_client_registered_without_an_interval_treats_every_reuse_as_a_replay(client, rp, first):
    update_client(db.session(), rp.client_id, {"refresh_token_reuse_interval": 0})
    db.session().commit()
    rotated = refresh(client, rp, first["refresh_token"]).json

    assert refresh(client, rp, first["refresh_token"]).json["error"] == "invalid_grant"
    assert userinfo_status(client, rotated["access_token"]) == 401


def test_public_clients_have_no_interval_by_default(app):
    from idp.oidc.clients import find_client

    public = register(
        app,
        {
            "client_name": "Public",
            "redirect_uris": ["https://rp.example/callback"],
            "grant_types": ["authorization_code", "refresh_token"],
            "token_endpoint_auth_method": "none",
        },
    )
    assert find_client(db.session(), public.client_id).refresh_token_reuse_interval == 0
