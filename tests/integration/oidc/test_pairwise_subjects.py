"""Pairwise subject identifiers (OIDC Core §8.1): a client registered with
``subject_type=pairwise`` gets a ``sub`` of its own sector, the same in the ID token, userinfo,
introspection and after a refresh; clients of other sectors see another one, public clients the
account's public one."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet

from idp import db
from idp.identity.models import Account
from idp.oidc.clients import InvalidClientMetadataError, register_client
from tests.conftest import register
from tests.flows import REDIRECT_URI, Pkce
from tests.integration.oidc.helpers import mint_code, redeem, refresh
from tests.loopback import JsonServer

PAIRWISE = {
    "redirect_uris": [REDIRECT_URI],
    "grant_types": ["authorization_code", "refresh_token"],
    "subject_type": "pairwise",
    "introspection_allowed": True,
}


def tokens(client, rp) -> dict:
    pkce = Pkce.new()
    return redeem(client, rp, mint_code(client, rp, pkce), pkce.verifier).json


def sub_of(client, id_token: str) -> str:
    keys = KeySet.import_key_set(client.get("/.well-known/jwks.json").json)
    return str(jwt.decode(id_token, keys).claims["sub"])


def test_a_pairwise_client_sees_its_own_sub_everywhere(client, app, rp, logged_in):
    pairwise = register(app, {**PAIRWISE, "client_name": "维修资金 (pairwise)"})
    public_sub = db.session().query(Account).one().subject

    body = tokens(client, pairwise)
    sub = sub_of(client, body["id_token"])
    userinfo = client.get(
        "/oauth/userinfo", headers={"Authorization": f"Bearer {body['access_token']}"}
    )
    introspected = client.post(
        "/oauth/introspect", data={"token": body["access_token"]}, auth=pairwise.auth
    )
    refreshed = refresh(client, pairwise, body["refresh_token"]).json

    assert sub != public_sub
    assert userinfo.json["sub"] == sub
    assert introspected.json["sub"] == sub
    assert sub_of(client, refreshed["id_token"]) == sub
    assert sub_of(client, tokens(client, rp)["id_token"]) == public_sub  # a public client


def test_sectors_do_not_share_subs_but_a_sector_does(client, app, logged_in):
    first = register(app, {**PAIRWISE, "client_name": "A"})
    same_sector = register(app, {**PAIRWISE, "client_name": "B"})
    other = register(
        app, {**PAIRWISE, "client_name": "C", "redirect_uris": ["https://other.example/cb"]}
    )
    from tests.flows import authorize_params, query_of

    def sub_for(rp) -> str:
        pkce = Pkce.new()
        params = authorize_params(rp.client_id, pkce, redirect_uri=rp_redirect(rp))
        code = follow_to_code_any(client, params)
        return sub_of(
            client,
            redeem(client, rp, code, pkce.verifier, redirect_uri=rp_redirect(rp)).json["id_token"],
        )

    def rp_redirect(rp) -> str:
        return "https://other.example/cb" if rp is other else REDIRECT_URI

    def follow_to_code_any(client, params) -> str:
        response = client.get("/authorize", query_string=params)
        while not response.headers["Location"].startswith(params["redirect_uri"]):
            response = client.get(response.headers["Location"])
        return query_of(response.headers["Location"])["code"]

    assert sub_for(first) == sub_for(same_sector)
    assert sub_for(first) != sub_for(other)


@pytest.fixture
def sector() -> Iterator[JsonServer]:
    with JsonServer([REDIRECT_URI, "https://app2.rp.example/cb"]) as server:
        yield server


def test_several_hosts_need_a_sector_identifier_listing_them(app, sector):
    two_hosts = {**PAIRWISE, "redirect_uris": [REDIRECT_URI, "https://app2.rp.example/cb"]}

    with pytest.raises(InvalidClientMetadataError, match="sector_identifier_uri: required"):
        register_client(db.session(), two_hosts)
    client, _secret = register_client(
        db.session(), {**two_hosts, "sector_identifier_uri": sector.url}
    )
    assert client.client_metadata["sector_identifier_uri"] == sector.url
    with pytest.raises(InvalidClientMetadataError, match="must list every redirect URI"):
        register_client(
            db.session(),
            {
                **two_hosts,
                "redirect_uris": [*two_hosts["redirect_uris"], "https://app3.rp.example/cb"],
                "sector_identifier_uri": sector.url,
            },
        )


def test_the_subject_type_of_a_client_cannot_change(app):
    from idp.oidc.clients import update_client

    pairwise = register(app, {**PAIRWISE, "client_name": "A"})

    with pytest.raises(InvalidClientMetadataError, match="subject_type cannot be changed"):
        update_client(db.session(), pairwise.client_id, {"subject_type": "public"})


def test_discovery_offers_pairwise(client):
    assert client.get("/.well-known/openid-configuration").json["subject_types_supported"] == [
        "public",
        "pairwise",
    ]
