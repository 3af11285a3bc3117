"""Front-Channel Logout 1.0: the logged-out page frames the front-channel logout URI of every
relying party the ended session was used at (``iss`` and ``sid`` where the client asked), its
CSP frame-src names exactly their origins, and RP-initiated logout continues to the relying
party afterwards. Registration checks the URI like the other URIs."""

from __future__ import annotations

import html
import re
from urllib.parse import urlencode

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet

from idp.oidc import clients
from tests.conftest import register
from tests.flows import Pkce, authorize_params, csrf_token, query_of, token_request

ISSUER = "http://localhost"


@pytest.fixture
def rps(app):
    """Three relying parties with front-channel logout, at three origins."""
    a = register(
        app,
        {
            "client_name": "甲系统",
            "redirect_uris": ["https://a.example/callback"],
            "post_logout_redirect_uris": ["https://a.example/bye"],
            "frontchannel_logout_uri": "https://a.example/fc",
            "frontchannel_logout_session_required": True,
        },
    )
    b = register(
        app,
        {
            "client_name": "乙系统",
            "redirect_uris": ["https://b.example:8443/cb"],
            "frontchannel_logout_uri": "https://b.example:8443/logout?from=idp",
        },
    )
    c = register(
        app,
        {
            "client_name": "丙系统",
            "redirect_uris": ["https://c.example/cb"],
            "frontchannel_logout_uri": "https://c.example/fc",
            "frontchannel_logout_session_required": True,
        },
    )
    return a, b, c


def sign_in_at(client, rp, redirect_uri: str) -> dict:
    """A code flow of the logged-in browser at ``rp``; the token response."""
    pkce = Pkce.new()
    params = authorize_params(rp.client_id, pkce, redirect_uri=redirect_uri)
    response = client.get("/authorize?" + urlencode(params))
    for _hop in range(8):
        location = response.headers["Location"]
        if location.startswith(redirect_uri):
            break
        response = client.get(location)
    code = query_of(location)["code"]
    body = token_request(
        client,
        {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "code_verifier": pkce.verifier,
        },
        auth=rp.auth,
    ).json
    keys = KeySet.import_key_set(client.get("/.well-known/jwks.json").json)
    body["claims"] = jwt.decode(body["id_token"], keys).claims
    return body


def frames(page: str) -> list[str]:
    return [html.unescape(src) for src in re.findall(r'<iframe[^>]*src="([^"]+)"', page)]


def frame_src(response) -> str | None:
    policy = response.headers["Content-Security-Policy"]
    found = [d.strip() for d in policy.split(";") if d.strip().startswith("frame-src")]
    return found[0] if found else None


def portal_logout(client):
    page = client.get("/logout")
    return client.post("/logout", data={"csrf_token": csrf_token(page.text)})


def test_portal_logout_frames_the_relying_parties_the_session_was_used_at(client, logged_in, rps):
    a, b, _c = rps
    sid = sign_in_at(client, a, "https://a.example/callback")["claims"]["sid"]
    sign_in_at(client, b, "https://b.example:8443/cb")

    response = portal_logout(client)

    assert response.status_code == 200
    assert "已通知本次登录使用过的应用退出登录" in response.text
    assert sorted(frames(response.text)) == sorted(
        [
            f"https://a.example/fc?{urlencode({'iss': ISSUER, 'sid': sid})}",
            "https://b.example:8443/logout?from=idp",  # no session required: as registered
        ]
    )
    assert frame_src(response) == "frame-src https://a.example https://b.example:8443"
    assert "c.example" not in response.text  # registered, but not used in this session
    assert client.get("/logout").text.count("<iframe") == 0  # the session is over


def test_rp_initiated_logout_frames_then_continues_to_the_relying_party(client, logged_in, rps):
    a, _b, c = rps
    body = sign_in_at(client, a, "https://a.example/callback")
    params = {
        "id_token_hint": body["id_token"],
        "post_logout_redirect_uri": "https://a.example/bye",
        "state": "s-1",
    }

    response = client.get("/oauth/logout?" + urlencode(params))

    assert response.status_code == 200, response.headers.get("Location")
    assert frames(response.text) == [
        f"https://a.example/fc?{urlencode({'iss': ISSUER, 'sid': body['claims']['sid']})}"
    ]
    assert 'href="https://a.example/bye?state=s-1"' in response.text
    assert "logout_continue.js" in response.text
    assert frame_src(response) == "frame-src https://a.example"
    assert c.client_id not in response.text


def test_rp_initiated_logout_without_frames_redirects_at_once(client, logged_in, rp):
    from tests.flows import follow_to_code

    pkce = Pkce.new()
    params = authorize_params(rp.client_id, pkce)
    code = follow_to_code(client, params)["code"]
    id_token = token_request(
        client,
        {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": params["redirect_uri"],
            "code_verifier": pkce.verifier,
        },
        auth=rp.auth,
    ).json["id_token"]
    response = client.get(
        "/oauth/logout?"
        + urlencode(
            {"id_token_hint": id_token, "post_logout_redirect_uri": "https://rp.example/logged-out"}
        )
    )
    assert response.status_code == 302
    assert response.headers["Location"].startswith("https://rp.example/logged-out")


def test_a_logout_of_a_session_used_nowhere_frames_nothing(client, logged_in, rps):
    response = portal_logout(client)

    assert response.status_code == 200
    assert frames(response.text) == []
    assert frame_src(response) is None
    assert "已通知" not in response.text


def test_a_disabled_relying_party_is_not_framed(client, logged_in, rps, app):
    a, _b, _c = rps
    sign_in_at(client, a, "https://a.example/callback")
    from idp import db

    clients.set_client_disabled(db.session(), a.client_id, True, actor="test")
    db.session().commit()

    response = portal_logout(client)

    assert frames(response.text) == []
    assert frame_src(response) is None


def test_discovery_says_front_channel_logout_is_supported(client):
    metadata = client.get("/.well-known/openid-configuration").json
    assert metadata["frontchannel_logout_supported"] is True
    assert metadata["frontchannel_logout_session_supported"] is True


@pytest.mark.parametrize(
    ("uri", "reason"),
    [
        ("https://other.example/fc", "scheme, host and port of a redirect URI"),
        ("https://a.example:444/fc", "scheme, host and port of a redirect URI"),
        ("http://a.example/fc", "must use https"),
        ("https://a.example/fc#x", "fragment"),
        ("javascript:alert(1)", "absolute http(s) URI"),
        (42, "not a URI"),
    ],
)
def test_registration_checks_the_front_channel_logout_uri(app, uri, reason):
    from idp import db

    metadata = {"redirect_uris": ["https://a.example/callback"], "frontchannel_logout_uri": uri}
    with pytest.raises(clients.InvalidClientMetadataError, match=re.escape(reason)):
        clients.register_client(db.session(), metadata)
    db.session().rollback()
    assert clients.list_clients(db.session()) == []


def test_the_session_required_flag_must_be_a_boolean(app):
    from idp import db

    metadata = {
        "redirect_uris": ["https://a.example/callback"],
        "frontchannel_logout_uri": "https://a.example/fc",
        "frontchannel_logout_session_required": "yes",
    }
    with pytest.raises(clients.InvalidClientMetadataError, match="must be true or false"):
        clients.register_client(db.session(), metadata)


def test_null_removes_the_front_channel_logout_uri(app, rps):
    from idp import db

    a, _b, _c = rps
    updated = clients.update_client(db.session(), a.client_id, {"frontchannel_logout_uri": None})
    assert updated.frontchannel_logout_uri is None
    assert "frontchannel_logout_uri" not in updated.client_metadata
