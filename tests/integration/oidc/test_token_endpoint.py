"""/oauth/token: code redemption, refresh rotation and reuse, client credentials (RFC 6749,
RFC 7636, RFC 9700)."""

from __future__ import annotations

import base64
from datetime import timedelta

import pytest
from sqlalchemy import delete, func, select, update

from idp import db
from idp.db import utcnow
from idp.oidc.models import AuthorizationCode, Token, TokenFamily
from tests.conftest import both_databases, register
from tests.flows import REDIRECT_URI, Pkce, token_request
from tests.integration.oidc.helpers import (
    audit_count,
    live_tokens,
    mint_code,
    redeem,
    refresh,
    run_in_parallel,
    userinfo_status,
)


def tokens_stored() -> int:
    return db.session().query(Token).count()


@pytest.fixture
def pkce():
    return Pkce.new()


@pytest.fixture
def code(client, rp, logged_in, pkce):
    return mint_code(client, rp, pkce)


@pytest.fixture
def no_reuse_interval(rp):
    """Any reuse of a rotated refresh token counts as a replay (the public-client default;
    the interval itself is tested in test_refresh_reuse_interval.py)."""
    from idp.oidc.clients import update_client

    update_client(db.session(), rp.client_id, {"refresh_token_reuse_interval": 0})
    db.session().commit()


@both_databases
def test_code_redeems_once_with_no_store_headers(client, rp, code, pkce):
    response = redeem(client, rp, code, pkce.verifier)
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Pragma"] == "no-cache"
    assert set(response.json) >= {
        "access_token",
        "refresh_token",
        "id_token",
        "expires_in",
        "scope",
        "token_type",
    }
    row = db.session().scalar(select(Token))
    assert row.access_token_hash != response.json["access_token"]
    assert len(row.access_token_hash) == 64


def test_reused_code_fails_and_revokes_what_it_issued(client, rp, code, pkce):
    first = redeem(client, rp, code, pkce.verifier).json
    second = redeem(client, rp, code, pkce.verifier)
    assert second.status_code == 400
    assert second.json["error"] == "invalid_grant"
    info = client.get(
        "/oauth/userinfo", headers={"Authorization": f"Bearer {first['access_token']}"}
    )
    assert info.status_code == 401
    refreshed = token_request(
        client,
        {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]},
        auth=rp.auth,
    )
    assert refreshed.json["error"] == "invalid_grant"


@pytest.mark.parametrize(
    ("change", "status", "error"),
    [
        ({"code_verifier": "wrong-verifier-" + "x" * 40}, 400, "invalid_grant"),
        ({"code_verifier": None}, 400, "invalid_request"),
        ({"redirect_uri": "https://rp.example/other"}, 400, "invalid_grant"),
        ({"code": "not-a-code"}, 400, "invalid_grant"),
        ({"code": "x" * 5000}, 400, "invalid_grant"),
        ({"grant_type": "password"}, 400, "unsupported_grant_type"),
        ({"grant_type": "implicit"}, 400, "unsupported_grant_type"),
    ],
)
def test_bad_code_redemption_gives_exact_error_and_no_token(
    client, rp, code, pkce, change, status, error
):
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT_URI,
        "code_verifier": pkce.verifier,
    }
    data.update(change)
    response = token_request(client, {k: v for k, v in data.items() if v is not None}, auth=rp.auth)
    assert response.status_code == status
    assert response.json["error"] == error
    assert tokens_stored() == 0


def test_code_is_bound_to_its_client(client, app, rp, code, pkce):
    other = register(app, {"redirect_uris": [REDIRECT_URI], "grant_types": ["authorization_code"]})
    response = token_request(
        client,
        {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT_URI,
            "code_verifier": pkce.verifier,
        },
        auth=other.auth,
    )
    assert response.json["error"] == "invalid_grant"
    assert redeem(client, rp, code, pkce.verifier).status_code == 200


def test_expired_code_is_refused(client, rp, code, pkce):
    db.session().execute(
        AuthorizationCode.__table__.update().values(expires_at=utcnow() - timedelta(seconds=1))
    )
    db.session().commit()
    response = redeem(client, rp, code, pkce.verifier)
    assert response.json["error"] == "invalid_grant"


def test_code_lifetime_is_sixty_seconds(client, rp, code):
    row = db.session().scalar(select(AuthorizationCode))
    assert (row.expires_at - row.issued_at) == timedelta(seconds=60)


@pytest.mark.parametrize(
    "auth",
    [
        ("wrong-client", "x"),
        None,
    ],
)
def test_client_authentication_failures(client, rp, code, pkce, auth):
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT_URI,
        "code_verifier": pkce.verifier,
    }
    response = token_request(client, data, auth=auth)
    assert response.status_code == 401
    assert response.json["error"] == "invalid_client"


def test_wrong_secret_is_invalid_client(client, rp, code, pkce):
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT_URI,
        "code_verifier": pkce.verifier,
    }
    response = token_request(client, data, auth=(rp.client_id, rp.secret + "x"))
    assert response.status_code == 401
    assert response.json["error"] == "invalid_client"
    assert "WWW-Authenticate" in response.headers


def test_client_secret_post_is_refused_for_a_basic_client(client, rp, code, pkce):
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT_URI,
        "code_verifier": pkce.verifier,
        "client_id": rp.client_id,
        "client_secret": rp.secret,
    }
    response = token_request(client, data)
    assert response.json["error"] == "invalid_client"


def test_public_client_redeems_with_pkce_only(client, public_rp, logged_in):
    pkce = Pkce.new()
    code = mint_code(client, public_rp, pkce)
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT_URI,
        "code_verifier": pkce.verifier,
        "client_id": public_rp.client_id,
    }
    response = token_request(client, data)
    assert response.status_code == 200, response.text


def test_confidential_client_cannot_authenticate_with_none(client, rp, code, pkce):
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT_URI,
        "code_verifier": pkce.verifier,
        "client_id": rp.client_id,
    }
    assert token_request(client, data).json["error"] == "invalid_client"


def test_rs256_client_gets_rs256_id_token(client, app, logged_in):
    rp = register(app, {"redirect_uris": [REDIRECT_URI], "id_token_signed_response_alg": "RS256"})
    pkce = Pkce.new()
    body = redeem(client, rp, mint_code(client, rp, pkce), pkce.verifier).json
    header = body["id_token"].split(".")[0]
    assert b'"RS256"' in base64.urlsafe_b64decode(header + "==")


def assert_only_refused_or_revoked(client, rp, responses) -> None:
    """At most one of the concurrent requests got tokens, and those are dead: what the replay
    revoked, or was never issued."""
    granted = [body for status, body in responses if status == 200]
    assert len(granted) <= 1
    assert [body["error"] for status, body in responses if status != 200] == ["invalid_grant"] * (
        len(responses) - len(granted)
    )
    assert {status for status, _body in responses} <= {200, 400}
    assert live_tokens() == 0
    for body in granted:
        assert userinfo_status(client, body["access_token"]) == 401
        assert refresh(client, rp, body["refresh_token"]).status_code == 400


@both_databases
def test_concurrent_redemptions_of_one_code_leave_no_live_token(app, client, rp, logged_in):
    """Eight redemptions of one code at once: one claims it, seven are replays, and whichever
    way the threads interleave, nothing issued from the code stays usable."""
    for round_number in range(1, 4):
        pkce = Pkce.new()
        code = mint_code(client, rp, pkce)
        responses = run_in_parallel(
            app, 8, lambda c, code=code, v=pkce.verifier: _answer(redeem(c, rp, code, v))
        )
        assert_only_refused_or_revoked(client, rp, responses)
        assert audit_count("oidc.code_reused") == 7 * round_number


@both_databases
def test_concurrent_refreshes_with_one_token_leave_no_live_token(
    app, client, rp, no_reuse_interval, code, pkce
):
    first = redeem(client, rp, code, pkce.verifier).json
    responses = run_in_parallel(app, 8, lambda c: _answer(refresh(c, rp, first["refresh_token"])))

    assert_only_refused_or_revoked(client, rp, responses)
    assert userinfo_status(client, first["access_token"]) == 401
    assert audit_count("oidc.refresh_token_reused") == 7


def _answer(response) -> tuple[int, dict]:
    return response.status_code, response.json


def test_refresh_rotates_and_reuse_revokes_the_family(client, rp, no_reuse_interval, code, pkce):
    first = redeem(client, rp, code, pkce.verifier).json
    second = token_request(
        client,
        {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]},
        auth=rp.auth,
    )
    assert second.status_code == 200
    rotated = second.json
    assert rotated["refresh_token"] != first["refresh_token"]
    assert (
        client.get(
            "/oauth/userinfo", headers={"Authorization": f"Bearer {first['access_token']}"}
        ).status_code
        == 401
    )
    assert (
        client.get(
            "/oauth/userinfo", headers={"Authorization": f"Bearer {rotated['access_token']}"}
        ).status_code
        == 200
    )

    replay = token_request(
        client,
        {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]},
        auth=rp.auth,
    )
    assert replay.status_code == 400
    assert replay.json["error"] == "invalid_grant"
    # The whole family is gone: the newest tokens too.
    newest = token_request(
        client,
        {"grant_type": "refresh_token", "refresh_token": rotated["refresh_token"]},
        auth=rp.auth,
    )
    assert newest.json["error"] == "invalid_grant"
    assert (
        client.get(
            "/oauth/userinfo", headers={"Authorization": f"Bearer {rotated['access_token']}"}
        ).status_code
        == 401
    )


def test_refresh_cannot_widen_scope(client, rp, code, pkce):
    refresh = redeem(client, rp, code, pkce.verifier).json["refresh_token"]
    response = token_request(
        client,
        {
            "grant_type": "refresh_token",
            "refresh_token": refresh,
            "scope": "openid profile phone admin",
        },
        auth=rp.auth,
    )
    assert response.json["error"] == "invalid_scope"


def test_refresh_token_of_another_client_is_refused_and_not_burnt(client, app, rp, code, pkce):
    refresh = redeem(client, rp, code, pkce.verifier).json["refresh_token"]
    other = register(
        app,
        {"redirect_uris": [REDIRECT_URI], "grant_types": ["authorization_code", "refresh_token"]},
    )
    stolen = token_request(
        client, {"grant_type": "refresh_token", "refresh_token": refresh}, auth=other.auth
    )
    assert stolen.json["error"] == "invalid_grant"
    mine = token_request(
        client, {"grant_type": "refresh_token", "refresh_token": refresh}, auth=rp.auth
    )
    assert mine.status_code == 200


def test_refresh_token_idle_expiry(client, rp, code, pkce):
    refresh = redeem(client, rp, code, pkce.verifier).json["refresh_token"]
    db.session().execute(
        Token.__table__.update().values(refresh_expires_at=utcnow() - timedelta(seconds=1))
    )
    db.session().commit()
    response = token_request(
        client, {"grant_type": "refresh_token", "refresh_token": refresh}, auth=rp.auth
    )
    assert response.json["error"] == "invalid_grant"


def test_refresh_token_absolute_expiry_survives_rotation(client, rp, code, pkce):
    first = redeem(client, rp, code, pkce.verifier).json
    family_expiry = db.session().scalar(select(Token.family_expires_at))
    second = token_request(
        client,
        {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]},
        auth=rp.auth,
    ).json
    rows = db.session().scalars(select(Token).order_by(Token.id)).all()
    assert {row.family_expires_at for row in rows} == {family_expiry}
    db.session().execute(
        Token.__table__.update().values(family_expires_at=utcnow() - timedelta(seconds=1))
    )
    db.session().commit()
    response = token_request(
        client,
        {"grant_type": "refresh_token", "refresh_token": second["refresh_token"]},
        auth=rp.auth,
    )
    assert response.json["error"] == "invalid_grant"


# What ends an operator's standing in their organisation, each written straight to the
# database (not through the consoles, which would also revoke the tokens): the token endpoint
# must refuse on its own, whether it read the standing with the claim (PostgreSQL) or after it.
STANDING_ENDS = {
    "membership disabled": lambda m: update(m.Membership).values(
        status=m.MembershipStatus.DISABLED
    ),
    "membership deleted": lambda m: delete(m.Membership),
    "password changed": lambda m: update(m.Account).values(
        credential_version=m.Account.credential_version + 1
    ),
    "password change pending": lambda m: update(m.Account).values(must_change_password=True),
    "organisation suspended": lambda m: update(m.Organisation).values(suspended_at=utcnow()),
}


def end_standing(how: str) -> None:
    from idp.identity import models

    db.session().execute(STANDING_ENDS[how](models))
    db.session().commit()


@both_databases
@pytest.mark.parametrize("how", STANDING_ENDS)
def test_a_code_is_refused_once_its_operator_can_no_longer_act(client, rp, code, pkce, how):
    end_standing(how)
    response = redeem(client, rp, code, pkce.verifier)
    assert (response.status_code, response.json["error"]) == (400, "invalid_grant")
    assert tokens_stored() == 0


@both_databases
@pytest.mark.parametrize("how", STANDING_ENDS)
def test_refresh_fails_once_the_operator_can_no_longer_act(client, rp, code, pkce, how):
    first = redeem(client, rp, code, pkce.verifier).json
    end_standing(how)
    response = token_request(
        client,
        {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]},
        auth=rp.auth,
    )
    assert (response.status_code, response.json["error"]) == (400, "invalid_grant")
    assert tokens_stored() == 1  # the first redemption's only


def test_client_credentials_for_a_backend(client, app):
    backend = register(app, {"grant_types": ["client_credentials"], "scope": "org.operators"})
    response = token_request(
        client, {"grant_type": "client_credentials", "scope": "org.operators"}, auth=backend.auth
    )
    assert response.status_code == 200, response.text
    assert response.json["scope"] == "org.operators"
    assert "refresh_token" not in response.json
    assert "id_token" not in response.json


@both_databases
def test_a_client_credentials_token_is_revoked_like_any_other(client, app):
    """A client's own token joins no family (nothing is ever issued into it), and revoking it
    ends it all the same."""
    backend = register(app, {"grant_types": ["client_credentials"], "scope": "org.operators"})
    token = token_request(client, {"grant_type": "client_credentials"}, auth=backend.auth).json[
        "access_token"
    ]
    assert db.session().scalar(select(func.count()).select_from(TokenFamily)) == 0

    def introspect() -> dict:
        return client.post("/oauth/introspect", data={"token": token}, auth=backend.auth).json

    assert introspect()["active"] is True
    revoked = client.post("/oauth/revoke", data={"token": token}, auth=backend.auth)
    assert revoked.status_code == 200
    assert introspect() == {"active": False}
    assert db.session().scalar(select(Token.revoked_at)) is not None


@pytest.mark.parametrize("scope", ["openid", "org.reviews", "admin"])
def test_client_credentials_refuses_unregistered_scope(client, app, scope):
    backend = register(app, {"grant_types": ["client_credentials"], "scope": "org.operators"})
    response = token_request(
        client, {"grant_type": "client_credentials", "scope": scope}, auth=backend.auth
    )
    assert response.json["error"] == "invalid_scope"
    assert tokens_stored() == 0


def test_client_not_registered_for_a_grant_is_refused(client, rp):
    response = token_request(client, {"grant_type": "client_credentials"}, auth=rp.auth)
    assert response.json["error"] == "unauthorized_client"
