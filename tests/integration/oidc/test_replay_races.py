"""Replays and revocations that land while the first redemption is still issuing its tokens
(docs/protocol.md P2), each interleaving forced: the first request is held right after it claimed
the code or refresh token and before it stores what it issues, the other side runs to its end,
then the first request goes on. Whatever the order, nothing issued from a replayed code, a
replayed refresh token or a revoked family stays usable."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from idp import db
from idp.oidc import grants
from idp.oidc.clients import remove_client
from idp.oidc.models import Token
from tests.conftest import both_databases
from tests.flows import Pkce
from tests.integration.oidc.helpers import (
    PausePoint,
    audit_count,
    live_tokens,
    mint_code,
    redeem,
    refresh,
    userinfo_status,
)

pytestmark = both_databases


@pytest.fixture
def pkce():
    return Pkce.new()


@pytest.fixture
def code(client, rp, logged_in, pkce):
    return mint_code(client, rp, pkce)


@pytest.fixture
def first_tokens(client, rp, code, pkce):
    response = redeem(client, rp, code, pkce.verifier)
    assert response.status_code == 200
    return response.json


def held_after_claim(monkeypatch, grant: type) -> PausePoint:
    """Hold the first request of ``grant`` after its claim, before it issues (Authlib calls
    ``authenticate_user`` between the two)."""
    pause = PausePoint()
    monkeypatch.setattr(grant, "authenticate_user", pause.wrap(grant.authenticate_user))
    return pause


def assert_invalid_grant(response) -> None:
    assert response.status_code == 400
    assert response.json["error"] == "invalid_grant"


def test_a_code_replayed_while_its_first_redemption_issues_leaves_no_token(
    app, client, rp, code, pkce, monkeypatch
):
    pause = held_after_claim(monkeypatch, grants.AuthorizationCodeGrant)

    first, replay = pause.race(
        lambda: redeem(app.test_client(), rp, code, pkce.verifier),
        lambda: redeem(client, rp, code, pkce.verifier),
    )

    assert_invalid_grant(replay)
    assert_invalid_grant(first)
    assert db.session().scalar(select(func.count()).select_from(Token)) == 0
    assert audit_count("oidc.code_reused") == 1
    assert audit_count("oidc.issuance_refused") == 1


def test_a_refresh_token_replayed_while_it_rotates_leaves_no_live_token(
    app, client, rp, first_tokens, monkeypatch
):
    pause = held_after_claim(monkeypatch, grants.RefreshTokenGrant)
    old = first_tokens["refresh_token"]

    rotation, replay = pause.race(
        lambda: refresh(app.test_client(), rp, old), lambda: refresh(client, rp, old)
    )

    assert_invalid_grant(replay)
    assert_invalid_grant(rotation)
    assert live_tokens() == 0
    assert userinfo_status(client, first_tokens["access_token"]) == 401
    assert audit_count("oidc.refresh_token_reused") == 1
    assert audit_count("oidc.issuance_refused") == 1


def test_a_refresh_token_revoked_while_it_rotates_leaves_no_live_token(
    app, client, rp, first_tokens, monkeypatch
):
    pause = held_after_claim(monkeypatch, grants.RefreshTokenGrant)
    old = first_tokens["refresh_token"]

    rotation, revocation = pause.race(
        lambda: refresh(app.test_client(), rp, old),
        lambda: client.post(
            "/oauth/revoke",
            data={"token": old, "token_type_hint": "refresh_token"},
            auth=rp.auth,
        ),
    )

    assert revocation.status_code == 200
    assert_invalid_grant(rotation)
    assert live_tokens() == 0
    assert userinfo_status(client, first_tokens["access_token"]) == 401


def test_a_client_removed_while_its_refresh_token_rotates_is_left_no_token(
    app, rp, first_tokens, monkeypatch
):
    pause = held_after_claim(monkeypatch, grants.RefreshTokenGrant)

    def remove() -> None:
        remove_client(db.session(), rp.client_id)
        db.session().commit()

    rotation, _ = pause.race(
        lambda: refresh(app.test_client(), rp, first_tokens["refresh_token"]), remove
    )

    assert_invalid_grant(rotation)
    assert db.session().scalar(select(func.count()).select_from(Token)) == 0
