from __future__ import annotations

import pytest

from tests.flows import PASSWORD, Pkce, authorize_params, follow_to_code, login, token_request


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
