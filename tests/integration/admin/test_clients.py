"""Relying parties in the platform console: list and search, register with the secret shown
once, edit, disable and enable, rotate the secret and remove (after step-up). Bad input is
refused with the reason as the command line gives it (one service) and changes nothing."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from flask import Flask, current_app
from flask.testing import FlaskClient
from sqlalchemy import select

from idp.oidc.models import Client, digest
from tests.flows import Pkce, authorize_params, csrf_token, token_request
from tests.integration.admin.helpers import audit_actions, post_form, totp

NEW_CLIENT = {
    "client_id": "repair-funds",
    "client_name": "维修资金系统",
    "redirect_uris": "https://funds.example/cb\n\nhttps://funds.example/cb2",
    "post_logout_redirect_uris": "https://funds.example/bye",
    "org_types": ["audit", "bookkeeping"],
    "scopes": ["openid", "profile"],
    "grant_types": ["authorization_code", "refresh_token"],
    "token_endpoint_auth_method": "client_secret_basic",
    "require_consent": "y",
    "refresh_token_reuse_interval": "30",
}


def stored(client_id: str) -> Any:
    with current_app.extensions["idp.db"]() as session:
        return session.scalars(select(Client).where(Client.client_id == client_id)).first()


def all_clients() -> list[tuple[str, object, str | None]]:
    with current_app.extensions["idp.db"]() as session:
        rows = session.scalars(select(Client).order_by(Client.id))
        return [(c.client_id, c.client_metadata, c.secret_hash) for c in rows]


def value_of(html: str, element_id: str) -> str:
    start = html.index(f'id="{element_id}">') + len(f'id="{element_id}">')
    return html[start : html.index("<", start)]


def step_up(browser: FlaskClient, secret: str, next_path: str, step: int = 1) -> None:
    response = post_form(browser, f"/admin/step-up?next={next_path}", code=totp(secret, step))
    assert response.headers["Location"] == next_path


def test_the_list_shows_and_searches_relying_parties(client: FlaskClient, enrolled: str, rp):
    page = client.get("/admin/clients")
    assert page.status_code == 200 and "上海市房屋维修资金管理系统" in page.text

    by_name = client.get("/admin/clients", query_string={"q": "维修资金"})
    by_id = client.get("/admin/clients", query_string={"q": rp.client_id[:8].upper()})
    nothing = client.get("/admin/clients", query_string={"q": "no such thing"})

    assert rp.client_id in by_name.text and rp.client_id in by_id.text
    assert "没有符合条件的应用" in nothing.text and rp.client_id not in nothing.text


def test_register_a_relying_party_shows_the_secret_once(client: FlaskClient, enrolled: str):
    response = post_form(client, "/admin/clients/new", **NEW_CLIENT)

    assert response.status_code == 200 and "密钥只显示这一次" in response.text
    secret = value_of(response.text, "client-secret")
    client_row = stored("repair-funds")
    assert client_row.secret_hash == digest(secret)
    metadata = client_row.client_metadata
    assert metadata["client_name"] == "维修资金系统"
    assert metadata["redirect_uris"] == ["https://funds.example/cb", "https://funds.example/cb2"]
    assert metadata["post_logout_redirect_uris"] == ["https://funds.example/bye"]
    assert metadata["org_types"] == ["audit", "bookkeeping"]
    assert metadata["scope"] == "openid profile"
    assert metadata["require_consent"] is True
    assert metadata["refresh_token_reuse_interval"] == 30
    assert secret not in client.get("/admin/clients/repair-funds").text
    assert audit_actions("oidc.") == ["oidc.client_registered"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"redirect_uris": "http://funds.example/cb"}, "must use https"),
        ({"redirect_uris": "https://funds.example/cb#top"}, "must not contain a fragment"),
        ({"redirect_uris": "javascript:alert(1)"}, "must be an absolute http(s) URI"),
        ({"redirect_uris": "data:text/html,hi"}, "must be an absolute http(s) URI"),
        ({"post_logout_redirect_uris": "https://u:p@funds.example/"}, "user info"),
        ({"redirect_uris": ""}, "redirect_uris: required"),
        ({"client_name": ""}, "请输入显示名称"),
        ({"client_id": "-bad"}, "client_id"),
        ({"refresh_token_reuse_interval": "61"}, "须为 0 到 60 之间的整数"),
        ({"scopes": ["openid", "admin"]}, "is not a valid choice"),  # only a tampered form
        (
            {"token_endpoint_auth_method": "none", "grant_types": ["client_credentials"]},
            "a public client cannot use client_credentials",
        ),
    ],
)
def test_registration_refuses_bad_metadata_and_registers_nothing(
    client: FlaskClient, enrolled: str, change, message
):
    response = post_form(client, "/admin/clients/new", **{**NEW_CLIENT, **change})

    assert response.status_code == 400 and message in response.text
    assert all_clients() == []
    assert audit_actions("oidc.") == []


EVERY_FIELD = {
    **NEW_CLIENT,
    "logo_uri": "https://funds.example/logo.png",
    "initiate_login_uri": "https://funds.example/login",
    "backchannel_logout_uri": "https://funds.example/bc-logout",
    "backchannel_logout_session_required": "y",
    "token_endpoint_auth_method": "private_key_jwt",
    "jwks_uri": "https://funds.example/jwks.json",
    "id_token_signed_response_alg": "RS256",
    "access_token_lifetime": "300",
    "id_token_lifetime": "120",
    "refresh_token_idle_lifetime": "3600",
    "refresh_token_absolute_lifetime": "86400",
}


def test_every_field_of_the_console_is_registered(client: FlaskClient, enrolled: str):
    response = post_form(client, "/admin/clients/new", **EVERY_FIELD)

    assert response.status_code == 200, response.text
    metadata = stored("repair-funds").client_metadata
    assert {k: metadata[k] for k in EVERY_FIELD if k in metadata and k != "client_id"} | {
        "scopes": metadata["scope"].split()
    } == {
        **{k: v for k, v in EVERY_FIELD.items() if k not in ("client_id", "scopes")},
        "redirect_uris": ["https://funds.example/cb", "https://funds.example/cb2"],
        "post_logout_redirect_uris": ["https://funds.example/bye"],
        "backchannel_logout_session_required": True,
        "require_consent": True,
        "refresh_token_reuse_interval": 30,
        "access_token_lifetime": 300,
        "id_token_lifetime": 120,
        "refresh_token_idle_lifetime": 3600,
        "refresh_token_absolute_lifetime": 86400,
        "scopes": ["openid", "profile"],
    }
    assert metadata["subject_type"] == "public"


def test_emptying_an_optional_field_removes_it(client: FlaskClient, enrolled: str):
    post_form(client, "/admin/clients/new", **EVERY_FIELD)
    url = "/admin/clients/repair-funds"
    form = {**EVERY_FIELD, "logo_uri": "", "access_token_lifetime": ""}
    form.pop("subject_type", None)  # shown disabled on an edit

    assert post_form(client, url, **form).status_code == 302
    metadata = stored("repair-funds").client_metadata
    assert "logo_uri" not in metadata and "access_token_lifetime" not in metadata
    assert metadata["id_token_lifetime"] == 120
    assert (
        'id="logo_uri" maxlength="2000" name="logo_uri" type="text" value=""'
        in client.get(url).text
        or "logo.png" not in client.get(url).text
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"logo_uri": "javascript:alert(1)"}, "logo_uri"),
        ({"backchannel_logout_uri": "http://funds.example/bc"}, "must use https"),
        ({"jwks_uri": "", "jwks": ""}, "private_key_jwt needs the client&#39;s jwks or jwks_uri"),
        ({"jwks": "{not json"}, "不是有效的 JSON"),
        ({"jwks": '{"keys": []}'}, "give one, not both"),
        ({"access_token_lifetime": "59"}, "access_token_lifetime: must be a whole number"),
        ({"refresh_token_absolute_lifetime": "99999999"}, "IDP_REFRESH_TOKEN_ABSOLUTE_TTL"),
        (
            {
                "subject_type": "pairwise",
                "redirect_uris": "https://a.example/cb\nhttps://b.example/cb",
            },
            "sector_identifier_uri",
        ),
    ],
)
def test_the_new_fields_refuse_bad_values_and_register_nothing(
    client: FlaskClient, enrolled: str, change, message
):
    response = post_form(client, "/admin/clients/new", **{**EVERY_FIELD, **change})

    assert response.status_code == 400 and message in response.text, response.text
    assert all_clients() == []


def test_loopback_http_is_allowed_in_development(client: FlaskClient, enrolled: str):
    change = {"redirect_uris": "http://127.0.0.1:8080/cb"}
    assert post_form(client, "/admin/clients/new", **{**NEW_CLIENT, **change}).status_code == 200


def test_a_taken_client_id_is_refused(client: FlaskClient, enrolled: str, rp):
    before = all_clients()
    response = post_form(client, "/admin/clients/new", **{**NEW_CLIENT, "client_id": rp.client_id})

    assert response.status_code == 400 and "already exists" in response.text
    assert all_clients() == before


def test_edit_a_relying_party(client: FlaskClient, enrolled: str, rp):
    url = f"/admin/clients/{rp.client_id}"
    change = {**NEW_CLIENT, "client_id": "ignored", "client_name": "新名称"}
    response = post_form(client, url, **change)

    assert response.headers["Location"] == url
    metadata = stored(rp.client_id).client_metadata
    assert metadata["client_name"] == "新名称" and metadata["scope"] == "openid profile"
    assert stored("ignored") is None
    assert "已保存" in client.get(url).text


def test_a_bad_edit_changes_nothing(client: FlaskClient, enrolled: str, rp):
    before = all_clients()
    url = f"/admin/clients/{rp.client_id}"
    response = post_form(client, url, **{**NEW_CLIENT, "redirect_uris": "https://x.example/#f"})

    assert response.status_code == 400 and "fragment" in response.text
    assert all_clients() == before


def test_a_public_client_cannot_become_confidential_here(
    client: FlaskClient, enrolled: str, public_rp
):
    before = all_clients()
    url = f"/admin/clients/{public_rp.client_id}"
    response = post_form(client, url, **NEW_CLIENT)

    assert response.status_code == 400 and "needs a new client" in response.text
    assert all_clients() == before


def test_an_unknown_client_is_not_found(client: FlaskClient, enrolled: str):
    assert client.get("/admin/clients/no-such-client").status_code == 404
    assert client.get("/admin/clients/no-such-client/remove").status_code in (302, 404)


def test_a_post_without_csrf_token_changes_nothing(client: FlaskClient, enrolled: str, rp):
    before = all_clients()
    response = client.post(f"/admin/clients/{rp.client_id}/disable")

    assert response.status_code == 400
    assert all_clients() == before


def test_disable_ends_tokens_and_hides_the_client_from_the_protocol(
    client: FlaskClient, enrolled: str, rp, app: Flask
):
    url = f"/admin/clients/{rp.client_id}"
    page = client.get(url)
    response = client.post(url + "/disable", data={"csrf_token": csrf_token(page.text)})

    assert response.headers["Location"] == url
    assert stored(rp.client_id).disabled
    browser = app.test_client()
    refused = browser.get("/authorize", query_string=authorize_params(rp.client_id, Pkce.new()))
    assert refused.status_code == 400 and "Location" not in refused.headers
    grant = token_request(browser, {"grant_type": "client_credentials"}, auth=rp.auth)
    assert grant.status_code == 401
    assert audit_actions("oidc.")[-1] == "oidc.client_disabled"

    page = client.get(url)
    assert "已停用" in page.text
    client.post(url + "/enable", data={"csrf_token": csrf_token(page.text)})
    assert not stored(rp.client_id).disabled
    accepted = browser.get("/authorize", query_string=authorize_params(rp.client_id, Pkce.new()))
    assert accepted.status_code in (200, 302)


def test_rotating_the_secret_needs_step_up_and_shows_the_new_secret_once(
    client: FlaskClient, enrolled: str, rp
):
    url = f"/admin/clients/{rp.client_id}/rotate-secret"
    old_hash = stored(rp.client_id).secret_hash
    asked = client.get(url)
    assert asked.headers["Location"] == f"/admin/step-up?next={url}"
    assert (
        client.post(url, data={"csrf_token": csrf_token(client.get("/admin/").text)}).status_code
        == 302
    )
    assert stored(rp.client_id).secret_hash == old_hash

    step_up(client, enrolled, url)
    response = post_form(client, url)

    secret = value_of(response.text, "client-secret")
    assert response.status_code == 200 and stored(rp.client_id).secret_hash == digest(secret)
    assert secret != rp.secret
    assert audit_actions("oidc.")[-1] == "oidc.client_secret_rotated"


def test_a_public_client_has_no_secret_to_rotate(client: FlaskClient, enrolled: str, public_rp):
    url = f"/admin/clients/{public_rp.client_id}/rotate-secret"
    step_up(client, enrolled, url)
    before = all_clients()

    response = post_form(client, url)

    assert response.status_code == 400 and "has no secret" in response.text
    assert all_clients() == before


def test_removing_needs_step_up(client: FlaskClient, enrolled: str, rp, app: Flask, settings):
    url = f"/admin/clients/{rp.client_id}/remove"
    wrong = post_form(client, f"/admin/step-up?next={url}", code="000000")
    assert wrong.status_code == 400 and stored(rp.client_id) is not None
    step_up(client, enrolled, url)

    response = post_form(client, url)

    assert response.headers["Location"] == "/admin/clients"
    assert stored(rp.client_id) is None
    assert audit_actions("oidc.")[-1] == "oidc.client_removed"


def test_step_up_expires(client: FlaskClient, enrolled: str, rp, app: Flask, settings, monkeypatch):
    url = f"/admin/clients/{rp.client_id}/remove"
    step_up(client, enrolled, url)
    monkeypatch.setitem(app.extensions, "idp", replace(settings, admin_step_up_seconds=0))

    response = client.post(url, data={"csrf_token": csrf_token(client.get("/admin/").text)})

    assert response.headers["Location"] == f"/admin/step-up?next={url}"
    assert stored(rp.client_id) is not None


def test_the_form_sets_and_clears_front_channel_logout(client: FlaskClient, enrolled: str, rp):
    url = f"/admin/clients/{rp.client_id}"
    front = {
        **NEW_CLIENT,
        "frontchannel_logout_uri": "https://funds.example/frontchannel-logout",
        "frontchannel_logout_session_required": "y",
    }
    assert post_form(client, url, **front).headers["Location"] == url
    metadata = stored(rp.client_id).client_metadata
    assert metadata["frontchannel_logout_uri"] == "https://funds.example/frontchannel-logout"
    assert metadata["frontchannel_logout_session_required"] is True
    page = client.get(url).text
    assert 'value="https://funds.example/frontchannel-logout"' in page

    before = all_clients()
    bad = {**front, "frontchannel_logout_uri": "https://other.example/fc"}
    response = post_form(client, url, **bad)
    assert response.status_code == 400 and "scheme, host and port" in response.text
    assert all_clients() == before

    cleared = {**NEW_CLIENT, "frontchannel_logout_uri": ""}
    assert post_form(client, url, **cleared).headers["Location"] == url
    metadata = stored(rp.client_id).client_metadata
    assert "frontchannel_logout_uri" not in metadata
    assert metadata["frontchannel_logout_session_required"] is False
