from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import register
from tests.flows import (
    PASSWORD,
    REDIRECT_URI,
    Pkce,
    authorize_params,
    follow_to_code,
    login,
    token_request,
)
from tests.loopback import Receiver


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A relying party's back-channel logout endpoint on loopback."""
    with Receiver() as running:
        yield running


@pytest.fixture
def listening_rp(app, receiver):
    """The platform's own relying party, registered for back-channel logout with ``sid``."""
    return register(
        app,
        {
            "client_name": "上海市房屋维修资金管理系统",
            "redirect_uris": [REDIRECT_URI],
            "grant_types": ["authorization_code", "refresh_token"],
            "backchannel_logout_uri": receiver.url,
            "backchannel_logout_session_required": True,
        },
    )


@pytest.fixture
def logged_in(client, outbox, operator):
    """The browser (``client``) holds a login session of ``operator``."""
    response = login(client, outbox, phone=operator.phone, password=PASSWORD)
    assert response.status_code == 302, response.text
    return operator


@pytest.fixture
def issue_tokens(client, rp, logged_in):
    """Run a code flow for ``rp`` and return the token response body."""

    def issue(**extra):
        pkce = Pkce.new()
        params = authorize_params(rp.client_id, pkce, **extra)
        result = follow_to_code(client, params)
        response = token_request(
            client,
            {
                "grant_type": "authorization_code",
                "code": result["code"],
                "redirect_uri": params["redirect_uri"],
                "code_verifier": pkce.verifier,
            },
            auth=rp.auth,
        )
        assert response.status_code == 200, response.text
        return response.json

    return issue
